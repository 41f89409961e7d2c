"""Startup stays light: after answering ``initialize`` over stdio, with every bundled plugin
installed and loaded, the server has not imported the heavy libraries its plugins use later.

Plugins import those where they are first used (``docs/writing-plugins.md``); one top-level
``import mcp`` slipping back into a plugin would cost every start half a second. The server is a
real subprocess: the command line's ``main()``, run by a few lines of Python that write the names
of the imported modules to a file when the process exits.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Libraries no stdio session needs before its first real request: an import of one of these
#: (or of a module inside it) at startup is a regression.
HEAVY = (
    "mcp",  # the MCP SDK (codex-plugin-mcp), about half a second
    "mcp_types",
    "httpx",  # HTTP clients: model providers, logins, token refresh
    "httpx2",
    "httpcore",
    "h11",
    "keyring",  # credential stores
    "jwt",  # signed websocket tokens
    "cryptography",
    "websockets",  # the websocket transport, unused over stdio
    "watchfiles",  # fs/watch backend, until the first watch
    "pathspec",  # ignore files, read by the first fuzzy file search
    "tomlkit",  # config writes and error positions
    "toml_rs",
    "urllib.request",  # marketplace downloads, xml.sax.saxutils
    "http.client",
    "multiprocessing",
    "uvicorn",
    "sqlite3",  # the thread index, opened by the first request that touches a thread
    "starlette",
    "packaging",  # plugins' codex-core requirement, checked once and remembered (a later start)
    # The kernel's own plugins' implementations, loaded by the requests that use them:
    "codex_core.marketplace.catalog",
    "codex_core.marketplace.install",
    "codex_core.marketplace.sources",
    # Bundled plugins' implementations, loaded by the requests that use them:
    "codex_plugin_review.start",
)
#: The generated protocol models ``initialize`` needs; any other model module is loaded on
#: the first request that uses it.
INITIALIZE_MODELS = {
    "codex_core.protocol.models._initialize_params",
    "codex_core.protocol.models._initialize_capabilities",
    "codex_core.protocol.models._client_info",
    "codex_core.protocol.models._index",
}

RUN_SERVER = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from codex_core.cli import main
sys.exit(main())
"""


def bundled_plugins() -> dict[str, str]:
    """Entry-point name -> module of every plugin under ``plugins/``."""
    found = {}
    for project in sorted(REPO.glob("plugins/*/pyproject.toml")):
        data = tomllib.loads(project.read_text())
        found.update(data["project"]["entry-points"]["codex_core.plugins"])
    return found


def installed(module: str) -> bool:
    try:
        importlib.metadata.distribution(module)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


PLUGINS = bundled_plugins()
MISSING = [module for module in PLUGINS.values() if not installed(module)]


def imported_by(tmp_path: Path, *args: str, stdin: str = "") -> tuple[set[str], str, str]:
    """The modules ``codex-app-server ARGS`` imported, its stdout and its stderr. Run twice:
    the first run in a fresh cache checks the plugins' requirements; the second is the one
    every later run is like."""
    modules_file = tmp_path / "modules.json"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "CODEX_HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("CODEX_CORE_DISABLE_PLUGINS", None)
    for _run in range(2):
        done = subprocess.run(
            [sys.executable, "-c", RUN_SERVER, str(modules_file), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    return set(json.loads(modules_file.read_text())), done.stdout, done.stderr


def loaded_all_plugins_and_none_of(modules: set[str], heavy: tuple[str, ...], stderr: str) -> None:
    not_loaded = [module for module in PLUGINS.values() if module not in modules]
    assert not not_loaded, f"bundled plugins that did not load: {not_loaded}\n{stderr}"
    found = sorted(
        name for name in modules if any(name == h or name.startswith(h + ".") for h in heavy)
    )
    assert found == [], f"imported: {found}"


@pytest.mark.skipif(bool(MISSING), reason=f"bundled plugins not installed: {MISSING}")
def test_initialize_imports_no_heavy_library(tmp_path: Path) -> None:
    initialize = {
        "id": 1,
        "method": "initialize",
        "params": {"clientInfo": {"name": "guard", "title": None, "version": "1"}},
    }
    modules, stdout, stderr = imported_by(tmp_path, stdin=json.dumps(initialize) + "\n")
    reply = json.loads(stdout.splitlines()[0])
    assert reply["id"] == 1 and "userAgent" in reply["result"], reply
    loaded_all_plugins_and_none_of(modules, HEAVY, stderr)
    models = {name for name in modules if name.startswith("codex_core.protocol.models._")}
    assert models <= INITIALIZE_MODELS, sorted(models - INITIALIZE_MODELS)


#: What ``--help`` must not import on top of ``HEAVY``: it imports each plugin to ask for its
#: command-line options, and a plugin's module imports its machinery when its hooks run.
HELP_HEAVY = (
    "asyncio",  # an event loop: help runs none
    "pydantic",
    "pydantic_core",
    "codex_core.config.schema",
    "codex_core.threads.methods",
    "codex_core.threads.turns",
    "codex_core.marketplace.methods",
    "codex_core.kernel",
    "codex_plugin_guardian.reviewer",
)


@pytest.mark.skipif(bool(MISSING), reason=f"bundled plugins not installed: {MISSING}")
def test_help_imports_plugins_but_not_their_machinery(tmp_path: Path) -> None:
    modules, stdout, stderr = imported_by(tmp_path, "--help")
    assert "--ws-auth" in stdout  # a plugin's option: the plugins were asked
    loaded_all_plugins_and_none_of(modules, (*HEAVY, *HELP_HEAVY), stderr)
