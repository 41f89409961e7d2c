"""Every mistake a user makes on the command line gets a message that names the thing and
says what to do (issue 20), asserted on a real ``codex-app-server`` subprocess and real files.

Over the protocol the official server's wording is kept where it refuses the same thing: the
last test sends those ``marketplace/add`` requests to both servers and compares.
"""

from __future__ import annotations

import json
import os
import pty
import re
import socket
import subprocess
from pathlib import Path

import pytest

from codex_core.cli import server_command
from codex_core.testing import serve_files
from codex_core.testing.pytest_plugin import (
    CodexCli,
    LoopbackFactory,
    StdioServer,
    needs_reference,
)
from codex_core.testing.reference import reference_server_command

PROG = "codex-app-server"


def run_in(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``codex-app-server ARGS`` run from ``cwd`` (relative sources are relative to it)."""
    return subprocess.run(
        server_command(*args),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def catalog_folder(root: Path, catalog: object | bytes) -> Path:
    """A folder with ``.agents/plugins/marketplace.json`` (Codex's layout) holding ``catalog``."""
    target = root / ".agents" / "plugins" / "marketplace.json"
    target.parent.mkdir(parents=True)
    data = catalog if isinstance(catalog, bytes) else json.dumps(catalog).encode()
    target.write_bytes(data)
    return root


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


GOOD = {
    "name": "mine",
    "plugins": [
        {"name": "my-tool", "source": "./my-tool"},
        {"name": "weather", "source": "./weather"},
    ],
}


def test_a_plain_relative_folder_is_a_local_catalog(
    tmp_path: Path, codex_env: dict[str, str], codex_home: Path
) -> None:
    catalog_folder(tmp_path / "catalog", GOOD)
    done = run_in(tmp_path, codex_env, "marketplace", "add", "catalog")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"added marketplace mine ({tmp_path / 'catalog'})\n"


def test_local_sources_that_are_no_catalog(tmp_path: Path, codex_env: dict[str, str]) -> None:
    catalog_folder(tmp_path / "binary", b"\xc0\xc1 not json")
    catalog_folder(tmp_path / "no-source", {"name": "x", "plugins": [{"name": "y"}]})
    expected = {
        "nothere": "invalid marketplace source format; expected a catalog URL or a local "
        "marketplace path; `nothere` is neither: write a folder as a path (`./nothere`) or a "
        "catalog as an http(s) URL",
        "./missing": "failed to resolve local marketplace source path: No such file or "
        f"directory (os error 2); `{tmp_path / 'missing'}` does not exist: give the folder "
        "that holds your marketplace.json",
        "./binary": "failed to read marketplace file: stream did not contain valid UTF-8; "
        f"`{tmp_path / 'binary/.agents/plugins/marketplace.json'}` is not UTF-8 text (byte "
        "0xc0 at offset 0): a catalog is a marketplace.json file; check that this is the "
        "catalog you meant",
        "./no-source": "invalid marketplace file "
        f"`{tmp_path / 'no-source/.agents/plugins/marketplace.json'}`: missing field `source` "
        "at line 1 column 39; plugins[0] has no `source`: add it, or remove that entry",
    }
    for source, message in expected.items():
        done = run_in(tmp_path, codex_env, "marketplace", "add", source)
        assert (done.returncode, done.stdout) == (1, ""), source
        assert done.stderr == f"{PROG}: {message}\n"


def test_catalog_urls_that_fail(
    tmp_path: Path, codex_cli: CodexCli, codex_loopback_factory: LoopbackFactory
) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "binary.json").write_bytes(b"\xc0\xc1")
    (www / "text.json").write_text("<html>not a catalog</html>")
    base = codex_loopback_factory(serve_files(www)).url
    refused = f"http://127.0.0.1:{closed_port()}/marketplace.json"
    expected = {
        f"{base}/binary.json": f"invalid marketplace file `{base}/binary.json`: not UTF-8 text "
        "(byte 0xc0 at offset 0); a catalog is a marketplace.json file; check that this is "
        "the catalog you meant",
        f"{base}/text.json": f"invalid marketplace file `{base}/text.json`: not JSON (Expecting "
        "value: line 1 column 1 (char 0)); a catalog is a JSON object with a name and plugins",
        f"{base}/gone.json": f"failed to download marketplace `{base}/gone.json`: the server "
        "answered 404 Not Found; check that the URL is right",
        refused: f"failed to download marketplace `{refused}`: connection refused; check the "
        "URL's port and that the server is running",
    }
    for url, message in expected.items():
        done = codex_cli("marketplace", "add", url)
        assert (done.returncode, done.stderr) == (1, f"{PROG}: {message}\n"), url


def test_entries_that_do_not_parse_are_reported(tmp_path: Path, codex_env: dict[str, str]) -> None:
    entries = [
        {"name": "ok", "source": "./ok"},
        {"name": "git-only", "source": {"source": "git", "url": "https://example.com/x.git"}},
    ]
    folder = catalog_folder(tmp_path / "partial", {"name": "partial", "plugins": entries})
    catalog = folder / ".agents" / "plugins" / "marketplace.json"
    skipped = (
        "skipped plugins[1] (git-only): source: Input tag 'git' found using 'source' does not "
        "match any of the expected tags: 'local', 'wheel', 'pypi'"
    )
    done = run_in(tmp_path, codex_env, "marketplace", "add", "./partial")
    assert done.returncode == 0
    assert done.stderr == (
        f"warning: marketplace partial: {skipped}; fix that entry and run "
        f"`{PROG} marketplace list` to check\n"
    )
    listed = run_in(tmp_path, codex_env, "-c", "marketplace.default=false", "marketplace", "list")
    assert listed.stdout.split()[:3] == ["partial", "1", "plugins"]
    assert (
        listed.stderr == f"warning: marketplace partial: {skipped}; fix that entry in {catalog}\n"
    )


def test_a_plugin_name_with_a_typo(tmp_path: Path, codex_env: dict[str, str]) -> None:
    catalog_folder(tmp_path / "catalog", GOOD)
    assert run_in(tmp_path, codex_env, "marketplace", "add", "./catalog").returncode == 0
    no_default = ("-c", "marketplace.default=false")
    expected = {
        "my-tol": "plugin my-tol is in no catalog; did you mean my-tool? "
        f"`{PROG} plugin list` shows what the catalogs offer",
        "my-tol@mine": "plugin my-tol is not in marketplace mine; did you mean my-tool? "
        f"`{PROG} plugin list` shows what the catalogs offer",
        "zzz": f"plugin zzz is in no catalog; `{PROG} plugin list` shows what the catalogs offer",
        "my-tool@mien": "no marketplace is named mien; did you mean mine? "
        f"`{PROG} marketplace list` shows the catalogs",
    }
    for name, message in expected.items():
        done = run_in(tmp_path, codex_env, *no_default, "plugin", "install", name)
        assert (done.returncode, done.stderr) == (1, f"{PROG}: {message}\n"), name


def test_a_disabled_plugin_name_with_a_typo(codex_cli: CodexCli) -> None:
    done = codex_cli("--disable-plugin", "shel", "--disable-plugin", "shell", "plugins", "list")
    assert done.returncode == 0
    assert done.stderr == (
        f"{PROG}: warning: --disable-plugin shel: no installed plugin has that name; did you "
        f"mean shell? `{PROG} plugins list` shows the names\n"
    )
    states = {row.split()[0]: row.split()[2] for row in done.stdout.splitlines()[1:]}
    assert states["shell"] == "disabled"
    done = codex_cli("plugins", "list", env={"CODEX_CORE_DISABLE_PLUGINS": "websoket,nothing-like"})
    assert done.returncode == 0
    assert done.stderr == (
        f"{PROG}: warning: CODEX_CORE_DISABLE_PLUGINS: nothing-like: no installed plugin has "
        f"that name; `{PROG} plugins list` shows the names\n"
        f"{PROG}: warning: CODEX_CORE_DISABLE_PLUGINS: websoket: no installed plugin has that "
        f"name; did you mean websocket? `{PROG} plugins list` shows the names\n"
    )


IGNORED = (
    f"{PROG}: warning: this run ignores what these lines name (all of a file that does not "
    "parse) and uses the defaults instead; fix them, or pass --strict-config to refuse to run "
    "with them\n"
)


def test_config_problems_are_warnings_without_strict_config(codex_cli: CodexCli) -> None:
    args = ("-c", "approval_policy=42", "-c", "bogus_key=1", "plugins", "list")
    done = codex_cli(*args)
    assert done.returncode == 0 and done.stdout.startswith("NAME")
    assert done.stderr == (
        f"{PROG}: warning: -c approval_policy: invalid type: integer `42`, expected a string\n"
        f"{PROG}: warning: session-flags: unknown configuration field `bogus_key`\n" + IGNORED
    )
    strict = codex_cli("--strict-config", *args)
    assert (strict.returncode, strict.stdout) == (2, "")
    assert strict.stderr.startswith(f"{PROG}: -c approval_policy: invalid type")


def test_a_broken_config_toml_is_not_silent(codex_cli: CodexCli, codex_home: Path) -> None:
    config = codex_home / "config.toml"
    config.write_text("[plugins.shell]\nenabled = false\nmodel = gpt\n")
    done = codex_cli("plugins", "list")
    assert done.returncode == 0
    assert done.stderr == (
        f"{PROG}: warning: {config}:3:9: string values must be quoted, expected literal string\n"
        + IGNORED
    )
    states = {row.split()[0]: row.split()[2] for row in done.stdout.splitlines()[1:]}
    assert states["shell"] == "loaded"  # what the warning says: the file's settings are not used


def test_schema_export_to_a_folder_that_cannot_be_made(codex_cli: CodexCli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = codex_cli("generate-json-schema", "--out", str(blocker / "schema"))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"{PROG}: cannot write to {blocker / 'schema'}: Not a directory; pass an --out folder "
        "you can create and write to\n"
    )


def test_help_tells_the_two_plugin_lists_apart(codex_cli: CodexCli) -> None:
    def shown(*args: str) -> str:
        """The help text as one line (argparse wraps lines, also after hyphens)."""
        return " ".join(codex_cli(*args, "--help").stdout.split()).replace("- ", "-")

    installed, offered = shown("plugins", "list"), shown("plugin", "list")
    assert "Every installed plugin" in installed
    assert f"`{PROG} plugin list` shows what the catalogs offer to install" in installed
    assert "The plugins the catalogs offer" in offered
    assert f"`{PROG} plugins list` shows the installed plugins" in offered
    top = shown()
    assert "the installed plugins and whether each loaded" in top
    assert "the plugins the catalogs offer: list, install, upgrade, uninstall" in top


@needs_reference
@pytest.mark.parametrize("which", ["ours", "reference"])
def test_protocol_messages_are_the_reference_s(
    which: str, tmp_path: Path, codex_env: dict[str, str]
) -> None:
    """The requests both servers refuse get the official wording over the protocol: the
    advice above is the CLI's alone. A missing field says where the reader stopped."""
    catalog_folder(tmp_path / "binary", b"\xc0\xc1 not json")
    entries = [{"name": "ok", "source": "./ok"}, {"name": "y"}]
    pretty = json.dumps({"name": "x", "plugins": entries}, indent=2).encode()
    catalog_folder(tmp_path / "no-source", pretty)
    catalog_folder(tmp_path / "no-name", b'{"plugins": [{"source": "./x"}], "name": "n"}')
    command = server_command() if which == "ours" else reference_server_command()
    assert command is not None
    server = StdioServer(command, codex_env, tmp_path)
    try:
        server.initialize()

        def refused(source: str) -> str:
            error = server.error("marketplace/add", {"source": source})
            assert error["code"] == -32600
            return str(error["message"])

        assert refused(str(tmp_path / "missing")) == (
            "failed to resolve local marketplace source path: No such file or directory "
            "(os error 2)"
        )
        assert refused(str(tmp_path / "binary")) == (
            "failed to read marketplace file: stream did not contain valid UTF-8"
        )
        layout = Path(".agents") / "plugins" / "marketplace.json"
        assert refused(str(tmp_path / "no-source")) == (
            f"invalid marketplace file `{tmp_path / 'no-source' / layout}`: missing field "
            "`source` at line 10 column 5"
        )
        assert refused(str(tmp_path / "no-name")) == (
            f"invalid marketplace file `{tmp_path / 'no-name' / layout}`: missing field `name` "
            "at line 1 column 30"
        )
        assert refused("catalog").startswith("invalid marketplace source format; expected ")
        # plugin/install of a name the catalog lacks, or from a catalog file that is not there
        catalog = catalog_folder(tmp_path / "good", GOOD) / layout
        assert server.result("marketplace/add", {"source": str(tmp_path / "good")})
        install = {"pluginName": "my-tol", "marketplacePath": str(catalog)}
        assert server.error("plugin/install", install)["message"] == (
            "plugin `my-tol` was not found in marketplace `mine`"
        )
        install["marketplacePath"] = str(tmp_path / "nope" / "marketplace.json")
        assert server.error("plugin/install", install)["message"] == (
            f"marketplace file `{install['marketplacePath']}` does not exist"
        )
    finally:
        server.close()


def test_lists_are_tables_on_a_terminal_and_plain_columns_otherwise(
    tmp_path: Path, codex_env: dict[str, str]
) -> None:
    catalog_folder(tmp_path / "catalog", GOOD)
    assert run_in(tmp_path, codex_env, "marketplace", "add", "./catalog").returncode == 0
    args = ("-c", "marketplace.default=false", "marketplace", "list")
    plain = run_in(tmp_path, codex_env, *args).stdout
    location = tmp_path / "catalog" / ".agents" / "plugins" / "marketplace.json"
    assert plain == f"{'mine':<24}   2 plugins  {location}\n"
    leader, follower = pty.openpty()
    with subprocess.Popen(
        server_command(*args), cwd=tmp_path, env=codex_env, stdout=follower, text=True
    ) as process:
        os.close(follower)
        shown = b""
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the terminal's other side closed: the process is gone
                break
            if not data:
                break
            shown += data
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode())  # without colours
    assert process.returncode == 0
    assert text.split()[:6] == ["MARKETPLACE", "PLUGINS", "LOCATION", "mine", "2", "plugins"]


def test_without_the_keyring_extra(
    tmp_path: Path, codex_env: dict[str, str], codex_home: Path
) -> None:
    """``keyring`` is the extra ``codex-core[keyring]``: without it the keyring store says how
    to install it, and ``auto`` keeps the login in ``auth.json``."""
    hidden = tmp_path / "no-keyring"
    (hidden / "keyring").mkdir(parents=True)
    (hidden / "keyring" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    path = os.pathsep.join(filter(None, [str(hidden), codex_env.get("PYTHONPATH")]))
    env = {**codex_env, "PYTHONPATH": path}
    login = {"type": "apiKey", "apiKey": "sk-test"}
    for store in ("keyring", "auto"):
        args = server_command("-c", f'cli_auth_credentials_store="{store}"')
        server = StdioServer(args, env, tmp_path)
        try:
            server.initialize()
            if store == "keyring":
                assert server.error("account/login/start", login)["message"] == (
                    "failed to save api key: failed to write OAuth tokens to keyring: the "
                    "`keyring` library is not installed: pip install 'codex-core[keyring]'"
                )
                assert not (codex_home / "auth.json").exists()
            else:
                server.result("account/login/start", login)
                saved = json.loads((codex_home / "auth.json").read_text())
                assert saved["OPENAI_API_KEY"] == "sk-test"
        finally:
            server.close()
