"""``config/value/write`` and ``config/batchWrite`` against real files in a temp CODEX_HOME."""

from __future__ import annotations

import difflib
import json
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_core.kernel import Kernel
from codex_core.testing.pytest_plugin import StdioServer

MESSY = """\
# My Codex settings -- hand written, keep the comments!

model   =   "gpt-x"     # the model I like
approval_policy="on-request"


   # an indented comment
[features]
# feature flags
memories = true        # aligned
  tool_suggest=false

[mcp_servers.docs]
command = "npx"
args = [
    "-y",   # npm
    "docs-server",
]

[profiles.fast]  # profile comment
model = 'gpt-fast'
"""


def write(
    server: StdioServer, key: str, value: Any, strategy: str = "replace", **extra: Any
) -> Any:
    params = {"keyPath": key, "value": value, "mergeStrategy": strategy, **extra}
    return server.result("config/value/write", params)


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"
    ]


def test_write_changes_only_the_written_key(codex_home: Path, start_server: Any) -> None:
    config = codex_home / "config.toml"
    config.write_text(MESSY)
    server: StdioServer = start_server()
    server.initialize()
    result = write(server, "model", "gpt-y")
    assert result == {
        "status": "ok",
        "version": result["version"],
        "filePath": str(config),
        "overriddenMetadata": None,
    }
    after = config.read_text()
    assert changed_lines(MESSY, after) == [
        '- model   =   "gpt-x"     # the model I like',
        '+ model   =   "gpt-y"     # the model I like',
    ]
    # A new key in an existing table lands in that table; nothing else moves.
    write(server, "features.memories", False)
    write(server, "mcp_servers.docs.enabled", True)
    final = config.read_text()
    assert changed_lines(after, final) == [
        "- memories = true        # aligned",
        "+ memories = false        # aligned",
        "+ enabled = true",
    ]
    assert tomllib.loads(final)["mcp_servers"]["docs"]["args"] == ["-y", "docs-server"]
    # The kernel reloaded: config/read sees the write, and its version is the write's.
    read = server.result("config/read", {"includeLayers": True})
    assert read["config"]["model"] == "gpt-y"
    assert read["config"]["features"]["memories"] is False
    user = next(layer for layer in read["layers"] if layer["name"]["type"] == "user")
    assert user["version"] == server.result("config/read", {})["origins"]["model"]["version"]


def test_missing_file_is_created(codex_home: Path, server: StdioServer) -> None:
    result = write(server, "model", "fresh")
    assert (codex_home / "config.toml").read_text() == 'model = "fresh"\n'
    assert result["version"].startswith("sha256:")


def test_replace_versus_upsert(codex_home: Path, server: StdioServer) -> None:
    write(server, "model_providers.local", {"name": "Local", "base_url": "http://a"})
    write(server, "model_providers.local", {"wire_api": "responses"}, "upsert")
    providers = tomllib.loads((codex_home / "config.toml").read_text())["model_providers"]
    assert providers == {
        "local": {"name": "Local", "base_url": "http://a", "wire_api": "responses"}
    }
    write(server, "model_providers.local", {"env_key": "K"}, "replace")
    providers = tomllib.loads((codex_home / "config.toml").read_text())["model_providers"]
    assert providers == {"local": {"env_key": "K"}}
    # null removes the key; removing something absent is fine.
    write(server, "model_providers.local.env_key", None)
    write(server, "nothing.here", None)
    assert tomllib.loads((codex_home / "config.toml").read_text())["model_providers"] == {
        "local": {}
    }


def test_batch_write_is_all_or_nothing(codex_home: Path, server: StdioServer) -> None:
    result = server.result(
        "config/batchWrite",
        {
            "edits": [
                {"keyPath": "model", "value": "m", "mergeStrategy": "replace"},
                {"keyPath": "features.memories", "value": True, "mergeStrategy": "upsert"},
            ],
            "reloadUserConfig": True,
        },
    )
    assert result["status"] == "ok"
    assert tomllib.loads((codex_home / "config.toml").read_text()) == {
        "model": "m",
        "features": {"memories": True},
    }
    before = (codex_home / "config.toml").read_text()
    error = server.error(
        "config/batchWrite",
        {
            "edits": [
                {"keyPath": "model", "value": "other", "mergeStrategy": "replace"},
                {"keyPath": "approval_policy", "value": 3, "mergeStrategy": "replace"},
            ]
        },
    )
    assert error == {
        "code": -32600,
        "message": "Invalid configuration: invalid type: integer `3`, expected a string\n"
        "in `approval_policy`\n",
        "data": {"config_write_error_code": "configValidationError"},
    }
    assert (codex_home / "config.toml").read_text() == before


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"keyPath": ""}, "configValidationError", "keyPath must not be empty"),
        ({"keyPath": "a..b"}, "configValidationError", "keyPath segments must not be empty"),
        (
            {"keyPath": "model", "filePath": "/elsewhere/config.toml"},
            "configLayerReadonly",
            "Only writes to the user config are allowed",
        ),
        (
            {"keyPath": "model", "filePath": "config.toml"},
            "configLayerReadonly",
            "Only writes to the user config are allowed",
        ),
        (
            {"keyPath": "model", "expectedVersion": "sha256:stale"},
            "configVersionConflict",
            "Configuration was modified since last read. Fetch latest version and retry.",
        ),
    ],
)
def test_refused_writes(
    server: StdioServer, params: dict[str, Any], code: str, message: str
) -> None:
    error = server.error("config/value/write", {"value": "x", "mergeStrategy": "replace", **params})
    assert error == {
        "code": -32600,
        "message": message,
        "data": {"config_write_error_code": code},
    }


def test_version_conflict_after_someone_else_wrote(codex_home: Path, server: StdioServer) -> None:
    first = write(server, "model", "a")
    # The version ignores comments and formatting, as the reference's does.
    config = codex_home / "config.toml"
    config.write_text("# a comment\n" + config.read_text())
    second = write(server, "model", "b", expectedVersion=first["version"])
    config.write_text('model = "changed by hand"\n')
    error = server.error(
        "config/value/write",
        {
            "keyPath": "model",
            "value": "c",
            "mergeStrategy": "replace",
            "expectedVersion": second["version"],
        },
    )
    assert error["data"] == {"config_write_error_code": "configVersionConflict"}
    assert config.read_text() == 'model = "changed by hand"\n'


def test_overridden_by_session_flags(codex_home: Path, start_server: Any) -> None:
    server: StdioServer = start_server("-c", 'model="from-flag"')
    server.initialize()
    result = write(server, "model", "from-user")
    flags = server.result("config/read", {"includeLayers": True})["layers"][0]
    assert result["status"] == "okOverridden"
    assert result["overriddenMetadata"] == {
        "message": "Overridden by session flags",
        "overridingLayer": {"name": {"type": "sessionFlags"}, "version": flags["version"]},
        "effectiveValue": "from-flag",
    }
    assert write(server, "review_model", "r")["overriddenMetadata"] is None


def test_concurrent_writers_in_two_processes_all_land(codex_home: Path, start_server: Any) -> None:
    servers: list[StdioServer] = [start_server(), start_server()]
    for server in servers:
        server.initialize()
    ids: list[tuple[StdioServer, int]] = []
    for n in range(25):
        for index, server in enumerate(servers):
            request_id = 5000 + n * 2 + index
            server.send(
                {
                    "id": request_id,
                    "method": "config/value/write",
                    "params": {
                        "keyPath": f"concurrency.s{index}_{n}",
                        "value": n,
                        "mergeStrategy": "replace",
                    },
                }
            )
            ids.append((server, request_id))
    for server, request_id in ids:
        assert "result" in server.wait_response(request_id, timeout=30)
    written = tomllib.loads((codex_home / "config.toml").read_text())["concurrency"]
    assert len(written) == 50


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_concurrent_writers_on_two_connections_all_land(
    codex_home: Path, anyio_backend: str
) -> None:
    kernel = Kernel(codex_home=codex_home)
    async with kernel, kernel.connect() as one, kernel.connect() as two:
        await one.initialize("one", "1")
        await two.initialize("two", "1")

        async def writes(client: Any, name: str) -> None:
            for n in range(20):
                await client.request(
                    "config/value/write",
                    {"keyPath": f"many.{name}{n}", "value": n, "mergeStrategy": "replace"},
                )

        async with anyio.create_task_group() as group:
            for client, name in ((one, "a"), (two, "b")):
                for part in range(3):
                    group.start_soon(writes, client, f"{name}{part}_")
        many = kernel.config.effective["many"]
    assert len(many) == 2 * 3 * 20
    assert tomllib.loads((codex_home / "config.toml").read_text())["many"] == many


def test_pipelined_writes_are_queued_and_each_answered_in_order(
    codex_home: Path, server: StdioServer
) -> None:
    """A burst of writes is committed together, but each is checked as if alone, in order:
    a stale ``expectedVersion`` or an invalid value refuses only that write."""
    stale_version = write(server, "model", "first")["version"]
    ids = range(20_000, 20_200)
    for n, request_id in enumerate(ids):
        params: dict[str, Any] = {"keyPath": f"burst.k{n}", "value": n, "mergeStrategy": "replace"}
        if n == 50:
            params["expectedVersion"] = stale_version
        if n == 120:
            params = {
                "keyPath": "approval_policy",
                "value": "sometimes",
                "mergeStrategy": "replace",
            }
        server.send({"id": request_id, "method": "config/value/write", "params": params})
    replies = [server.wait_response(request_id, timeout=30) for request_id in ids]
    errors = {n: reply["error"] for n, reply in enumerate(replies) if "error" in reply}
    assert set(errors) == {50, 120}
    assert errors[50]["data"] == {"config_write_error_code": "configVersionConflict"}
    assert errors[120]["data"] == {"config_write_error_code": "configValidationError"}
    versions = [reply["result"]["version"] for reply in replies if "result" in reply]
    assert len(set(versions)) == len(versions), "each write reports the version it produced"
    data = tomllib.loads((codex_home / "config.toml").read_text())
    assert data["burst"] == {f"k{n}": n for n in range(200) if n not in (50, 120)}
    assert "approval_policy" not in data
    read = server.result("config/read", {"includeLayers": True})
    user = next(layer for layer in read["layers"] if layer["name"]["type"] == "user")
    assert versions[-1] == user["version"]


def test_sigkill_mid_stream_keeps_every_acknowledged_write(
    codex_home: Path, start_server: Any
) -> None:
    (codex_home / "config.toml").write_text(MESSY)
    server: StdioServer = start_server()
    server.initialize()
    # Fewer than the 256 requests a connection may have in flight, so none is refused.
    for n in range(200):
        server.send(
            {
                "id": 10_000 + n,
                "method": "config/value/write",
                "params": {"keyPath": f"stream.k{n}", "value": n, "mergeStrategy": "replace"},
            }
        )

    def acknowledged() -> list[int]:
        answered = server.unanswered()
        return [rid for rid in range(10_000, 10_200) if "result" in answered.get(rid, {})]

    server.wait_until(lambda: len(acknowledged()) >= 40, timeout=30, what="40 acknowledged")
    acked = acknowledged()
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    text = (codex_home / "config.toml").read_text()
    data = tomllib.loads(text)  # never half a file
    assert text.startswith("# My Codex settings")
    for rid in acked:
        assert data["stream"][f"k{rid - 10_000}"] == rid - 10_000
    leftovers = [p.name for p in codex_home.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 1  # at most the one write the kill interrupted
    # The next write, by a new server, removes what the killed one left.
    after: StdioServer = start_server()
    after.initialize()
    write(after, "stream.after", 1)
    assert [p.name for p in codex_home.iterdir() if p.name.endswith(".tmp")] == []


def test_a_write_removes_temp_files_of_dead_writers(codex_home: Path, server: StdioServer) -> None:
    """Temporary files exist only while a writer holds the folder lock: any found under the
    lock belong to a writer that died (named as ``tempfile.mkstemp`` names them)."""
    stale = [codex_home / ".config.toml.k3_x9zq1.tmp", codex_home / ".config.toml.abcdefgh.tmp"]
    kept = [
        codex_home / ".config.toml.bak",
        codex_home / ".config.toml.mine.tmp",  # not a temp file name of ours
        codex_home / ".other.toml.abcdefgh.tmp",
    ]
    for path in stale + kept:
        path.write_text("leftover")
    write(server, "model", "gpt-5")
    assert [path.exists() for path in stale] == [False, False]
    assert [path.exists() for path in kept] == [True, True, True]
    assert tomllib.loads((codex_home / "config.toml").read_text())["model"] == "gpt-5"


def test_written_config_reaches_plugins(codex_home: Path, server: StdioServer) -> None:
    write(server, "plugins.someone.enabled", False)
    read = server.result("config/read", {})
    assert read["config"]["plugins"] == {"someone": {"enabled": False}}
    assert json.loads(json.dumps(read["origins"]["plugins.someone.enabled"]))["name"] == {
        "type": "user",
        "file": str(codex_home / "config.toml"),
        "profile": None,
    }


# --------------------------------------------------------------------------- refusals


def test_non_table_parents_and_removals_that_lead_nowhere(
    codex_home: Path, server: StdioServer
) -> None:
    """Observed on the reference: only the immediate parent must be a table; a plain value
    higher up is replaced by tables; removing below a plain value changes nothing."""
    config = codex_home / "config.toml"
    config.write_text("foo = 1\n[tools]\nweb_search = true\n")
    refused = {
        "code": -32600,
        "message": "cannot set value on non-table parent",
        "data": {"config_write_error_code": "configValidationError"},
    }
    for key in ("foo.a", "tools.web_search.x"):
        params = {"keyPath": key, "value": 1, "mergeStrategy": "upsert"}
        assert server.error("config/value/write", params) == refused
        batch = [{"keyPath": "tools.ok", "value": 1, "mergeStrategy": "replace"}, params]
        assert server.error("config/batchWrite", {"edits": batch}) == refused
    assert config.read_text() == "foo = 1\n[tools]\nweb_search = true\n"
    for key in ("foo.a.b", "tools.web_search.x", "nowhere.at.all"):
        assert write(server, key, None)["status"] == "ok"
    assert config.read_text() == "foo = 1\n[tools]\nweb_search = true\n"
    write(server, "foo.a.b", 1)
    write(server, "tools.web_search.x.y", 2)
    assert tomllib.loads(config.read_text()) == {
        "foo": {"a": {"b": 1}},
        "tools": {"web_search": {"x": {"y": 2}}},
    }
    # null is a removal only as the whole value
    for value in ({"a": None}, ["a", None]):
        error = server.error(
            "config/value/write", {"keyPath": "notify", "value": value, "mergeStrategy": "upsert"}
        )
        assert (
            error["message"] == "invalid value: invalid type: null, expected any valid TOML value"
        )


def test_no_write_over_a_file_that_does_not_load(codex_home: Path, server: StdioServer) -> None:
    """The reference's words; the file is left as it is."""
    config = codex_home / "config.toml"
    broken = {
        "model = [1, 2\n": f"{config}:1:14: unclosed array, expected `]`",
        'model = "x"\nmodel = "y"\n': f"{config}:2:1: duplicate key",
    }
    for text, where in broken.items():
        config.write_text(text)
        assert server.error(
            "config/value/write", {"keyPath": "model", "value": "z", "mergeStrategy": "replace"}
        ) == {"code": -32603, "message": f"failed to load configuration: {where}"}
        assert config.read_text() == text
    config.unlink()
    config.mkdir()
    assert server.error(
        "config/value/write", {"keyPath": "model", "value": "z", "mergeStrategy": "replace"}
    ) == {
        "code": -32603,
        "message": f"failed to load configuration: Failed to read config file {config}: "
        f"path `{config}` is not a file",
    }


#: Starts the server with a 64 KiB cap on the size of any file it writes (RLIMIT_FSIZE): a
#: bigger write fails with EFBIG, even for root (Python ignores SIGXFSZ).
CAPPED = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)); "
    "os.execv(sys.executable, [sys.executable, '-m', 'codex_core'])"
)


def test_a_failed_atomic_write_changes_nothing(
    codex_home: Path, codex_env: dict[str, str], tmp_path: Path
) -> None:
    config = codex_home / "config.toml"
    config.write_text(MESSY)
    server = StdioServer([sys.executable, "-c", CAPPED], codex_env, tmp_path)
    try:
        server.initialize()
        huge = {"keyPath": "model", "value": "x" * 100_000, "mergeStrategy": "replace"}
        assert server.error("config/value/write", huge) == {
            "code": -32603,
            "message": f"failed to persist config.toml: failed to persist config at {config}",
        }
        assert config.read_text() == MESSY
        assert [path.name for path in codex_home.iterdir() if path.name.endswith(".tmp")] == []
        assert server.result("config/read", {})["config"]["model"] == "gpt-x"
        # a write that fits goes through on the same connection
        assert write(server, "model", "small")["status"] == "ok"
        assert tomllib.loads(config.read_text())["model"] == "small"
    finally:
        server.close()
