"""A plugin that raises what ``Exception`` does not cover still cannot end the server.

``sys.exit()``, ``KeyboardInterrupt``, a bare ``BaseException`` and a stray
``asyncio.CancelledError`` (which used to end the server silently, with exit 0) are reported
like any other plugin failure: at import or in a hook the plugin is marked failed (``plugins
list``, a ``configWarning``), in a request handler the request gets ``-32603``.
"""

from __future__ import annotations

import json
from pathlib import Path

from codex_core.testing.pytest_plugin import CodexCli, ServerFactory, write_distribution

RAISERS = {
    "cancelled": "raise asyncio.CancelledError()",
    "system_exit": "sys.exit(3)",
    "keyboard_interrupt": 'raise KeyboardInterrupt("pressed by a plugin")',
    "base_exception": 'raise BaseException("not an Exception")',
}

#: What each raiser is reported as, after "failed in plugin ...: " or "raised ".
REPORTED = {
    "cancelled": "CancelledError",
    "system_exit": "SystemExit: 3",
    "keyboard_interrupt": "KeyboardInterrupt: pressed by a plugin",
    "base_exception": "BaseException: not an Exception",
}

HANDLERS = (
    """
import asyncio
import sys

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod
"""
    + "".join(
        f"""

async def {name}(ctx, params):
    await asyncio.sleep(0)
    {statement}
"""
        for name, statement in RAISERS.items()
    )
    + """

async def echo(ctx, params):
    return params


@hookimpl
def codex_rpc_methods():
    return [RpcMethod(f"raiser/{name}", handler) for name, handler in [
"""
    + "".join(f"        ({name!r}, {name}),\n" for name in RAISERS)
    + """        ("echo", echo),
    ]]
"""
)

AT_IMPORT = "import sys\nsys.exit()\n"

IN_HOOK = """
import asyncio
import sys

from codex_core.hookspecs import hookimpl


@hookimpl
def codex_rpc_methods():
    {statement}
"""

IN_ASYNC_HOOK = """
import asyncio
import sys

from codex_core.hookspecs import hookimpl


async def _start():
    await asyncio.sleep(0)
    {statement}


@hookimpl
def codex_startup(kernel):
    return _start()
"""


def install_failing_plugins(site: Path) -> None:
    """One plugin per way of failing: at import, and raising each kind in a hook."""
    write_distribution(site, "codex-exits-at-import", AT_IMPORT)
    for name, statement in RAISERS.items():
        write_distribution(site, f"codex-hook-{name}", IN_HOOK.format(statement=statement))
    write_distribution(
        site, "codex-startup-cancelled", IN_ASYNC_HOOK.format(statement=RAISERS["cancelled"])
    )


def test_handlers_raising_base_exceptions_get_an_internal_error(
    codex_plugin_site: Path, codex_server_factory: ServerFactory
) -> None:
    write_distribution(codex_plugin_site, "codex-raiser", HANDLERS, entry_point="raiser")
    server = codex_server_factory()
    server.initialize()
    for name, reported in REPORTED.items():
        error = server.error(f"raiser/{name}", {})
        assert error == {
            "code": -32603,
            "message": f"raiser/{name} failed in plugin raiser: {reported}",
        }
        # The server, the connection and the plugin all go on.
        assert server.result("raiser/echo", {"after": name}) == {"after": name}
    assert server.process.poll() is None
    assert server.close() == 0


def test_plugins_list_reports_base_exceptions(codex_plugin_site: Path, codex_cli: CodexCli) -> None:
    install_failing_plugins(codex_plugin_site)
    completed = codex_cli("plugins", "list", "--json")
    assert completed.returncode == 0, completed.stderr
    records = {record["name"]: record for record in json.loads(completed.stdout)}
    assert records["codex_exits_at_import"]["state"] == "failed"
    assert records["codex_exits_at_import"]["error"] == (
        "failed to import codex_exits_at_import: SystemExit"
    )
    for name, reported in REPORTED.items():
        record = records[f"codex_hook_{name}"]
        assert (record["state"], record["error"]) == (
            "failed",
            f"codex_rpc_methods raised {reported}",
        )
    assert records["fs"]["state"] == "loaded"
    table = codex_cli("plugins", "list")
    assert table.returncode == 0
    assert "failed to import codex_exits_at_import: SystemExit" in table.stdout


def test_server_starts_and_warns_about_each_failed_plugin(
    codex_plugin_site: Path, codex_server_factory: ServerFactory
) -> None:
    install_failing_plugins(codex_plugin_site)
    server = codex_server_factory()
    server.initialize()
    expected = {
        "codex_exits_at_import": "failed to import codex_exits_at_import: SystemExit",
        "codex_startup_cancelled": "codex_startup raised CancelledError",
        **{f"codex_hook_{name}": f"codex_rpc_methods raised {r}" for name, r in REPORTED.items()},
    }
    warnings = {}
    for _ in expected:
        summary = server.wait_notification("configWarning")["params"]["summary"]
        warnings[summary.split("`")[1]] = summary
    assert warnings == {
        name: f"Plugin `{name}` failed and is not active: {error}"
        for name, error in expected.items()
    }
    assert "account" in server.result("account/read", {})
    assert server.close() == 0
