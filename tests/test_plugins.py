"""Plugin discovery, isolation and switching off, with real installed distributions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from codex_core.testing.pytest_plugin import write_distribution

RAISES_AT_IMPORT = 'raise ImportError("this plugin is broken on purpose")\n'

RAISES_IN_HOOK = """
from codex_core.hookspecs import hookimpl

@hookimpl
def codex_rpc_methods():
    raise RuntimeError("no methods today")
"""

HALF_BROKEN = """
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod

async def hello(ctx, params):
    return {"hello": True}

@hookimpl
def codex_rpc_methods():
    return [RpcMethod("half/hello", hello)]

@hookimpl
def codex_transports():
    raise RuntimeError("transport setup failed")
"""

WRONG_RETURN = """
from codex_core.hookspecs import hookimpl

@hookimpl
def codex_rpc_methods():
    return ["not an RpcMethod"]
"""

HELLO = """
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod

async def hello(ctx, params):
    return {"greeting": f"hello {ctx.connection.client_name}"}

@hookimpl
def codex_rpc_methods():
    return [RpcMethod("hello/say", hello)]
"""


def plugins_list(env: dict[str, str], *args: str) -> dict[str, dict[str, Any]]:
    output = subprocess.run(
        [sys.executable, "-m", "codex_core", *args, "plugins", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {record["name"]: record for record in json.loads(output)}


def test_builtins_are_plugins_from_entry_points(server_env: dict[str, str]) -> None:
    records = plugins_list(server_env)
    for name in ("stdio", "fs", "config", "threads", "accounts", "models"):
        assert records[name]["state"] == "loaded", records[name]
        assert records[name]["distribution"] == "codex-core"
    assert records["stdio"]["hooks"] == ["codex_transports"]


def test_broken_plugins_are_isolated(
    plugin_site: Path, server_env: dict[str, str], start_server: Any
) -> None:
    write_distribution(plugin_site, "codex-broken-import", RAISES_AT_IMPORT)
    write_distribution(plugin_site, "codex-broken-hook", RAISES_IN_HOOK)
    write_distribution(plugin_site, "codex-half-broken", HALF_BROKEN)
    write_distribution(plugin_site, "codex-wrong-return", WRONG_RETURN)
    write_distribution(plugin_site, "codex-hello", HELLO, version="2.3")
    records = plugins_list(server_env)
    assert records["codex_broken_import"]["state"] == "failed"
    assert (
        "ImportError: this plugin is broken on purpose" in records["codex_broken_import"]["error"]
    )
    assert records["codex_broken_hook"]["error"] == (
        "codex_rpc_methods raised RuntimeError: no methods today"
    )
    assert records["codex_half_broken"]["error"] == (
        "codex_transports raised RuntimeError: transport setup failed"
    )
    assert "returned 'not an RpcMethod', not a RpcMethod" in records["codex_wrong_return"]["error"]
    assert records["codex_hello"] == {
        "name": "codex_hello",
        "distribution": "codex-hello",
        "version": "2.3",
        "state": "loaded",
        "hooks": ["codex_rpc_methods"],
        "error": None,
    }

    server = start_server()
    server.initialize()
    warnings = [server.wait_notification("configWarning")["params"]["summary"] for _ in range(4)]
    assert sorted(w.split("`")[1] for w in warnings) == [
        "codex_broken_hook",
        "codex_broken_import",
        "codex_half_broken",
        "codex_wrong_return",
    ]
    assert server.result("hello/say", {}) == {"greeting": "hello pytest"}
    # a plugin that failed in one hook loses everything it contributed
    assert server.error("half/hello", {})["message"].startswith("Invalid request: unknown variant")
    assert "account" in server.result("account/read", {})


def test_incompatible_kernel_range_is_refused(
    plugin_site: Path, server_env: dict[str, str], start_server: Any
) -> None:
    marker = plugin_site / "imported.txt"
    source = f"open({str(marker)!r}, 'w').close()\n" + HELLO
    write_distribution(plugin_site, "codex-future", source, requires=["codex-core>=99"])
    write_distribution(
        plugin_site,
        "codex-fits",
        HELLO.replace("hello/say", "fits/say"),
        requires=["codex-core>=0.1,<1"],
    )
    records = plugins_list(server_env)
    assert records["codex_future"]["state"] == "failed"
    assert records["codex_future"]["error"].startswith(
        "requires codex-core>=99, but this is codex-core "
    )
    assert records["codex_fits"]["state"] == "loaded"
    assert not marker.exists(), "an incompatible plugin must not even be imported"
    # Later runs take the verdicts from the cache, with the same outcome.
    assert (Path(server_env["XDG_CACHE_HOME"]) / "codex-core/plugin-requirements.json").exists()
    assert plugins_list(server_env) == records
    assert not marker.exists()
    server = start_server()
    server.initialize()
    assert server.result("fits/say", {}) == {"greeting": "hello pytest"}


def test_plugins_can_be_disabled_three_ways(
    plugin_site: Path, server_env: dict[str, str], codex_home: Path, start_server: Any
) -> None:
    write_distribution(plugin_site, "codex-hello", HELLO)
    assert plugins_list(server_env)["codex_hello"]["state"] == "loaded"
    assert (
        plugins_list(server_env, "--disable-plugin", "codex_hello")["codex_hello"]["state"]
        == "disabled"
    )
    env = {**server_env, "CODEX_CORE_DISABLE_PLUGINS": "codex_hello, fs"}
    records = plugins_list(env)
    assert records["codex_hello"]["state"] == records["fs"]["state"] == "disabled"
    (codex_home / "config.toml").write_text("[plugins.codex_hello]\nenabled = false\n")
    assert plugins_list(server_env)["codex_hello"]["state"] == "disabled"

    server = start_server()
    server.initialize()
    error = server.error("hello/say", {})
    assert error["message"].startswith("Invalid request: unknown variant `hello/say`")


def test_a_disabled_transport_is_a_clear_error(server_env: dict[str, str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "codex_core", "--disable-plugin", "stdio"],
        env=server_env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 2
    assert "no installed transport serves stdio://" in completed.stderr
    installed = completed.stderr.rsplit("installed: ", 1)[1]
    assert "stdio://" not in installed
