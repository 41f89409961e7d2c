"""Plugins' own config tables, and --strict-config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from codex_core.testing.pytest_plugin import write_distribution

SECTION_PLUGIN = """
from pydantic import BaseModel
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod


class HelloSettings(BaseModel):
    greeting: str = "hello"


async def say(ctx, params):
    return {"greeting": ctx.kernel.config.get("hello.greeting", "hello")}


@hookimpl
def codex_config_sections():
    return {"hello": HelloSettings}


@hookimpl
def codex_rpc_methods():
    return [RpcMethod("hello/say", say)]
"""


def warnings_of(server: Any) -> list[dict[str, Any]]:
    """The configWarnings of an initialized server (they follow the initialize reply)."""
    server.barrier()
    return [n["params"] for n in server.notifications if n["method"] == "configWarning"]


def test_a_plugin_table_is_validated_and_not_unrecognized(
    plugin_site: Path, codex_home: Path, start_server: Any
) -> None:
    write_distribution(plugin_site, "codex-hello-config", SECTION_PLUGIN)
    (codex_home / "config.toml").write_text('[hello]\ngreeting = "bonjour"\n')
    server = start_server()
    server.initialize()
    assert server.result("hello/say", {}) == {"greeting": "bonjour"}
    assert not any("hello" in (w.get("details") or "") for w in warnings_of(server))

    (codex_home / "config.toml").write_text("[hello]\ngreeting = 5\n")
    bad = start_server()
    bad.initialize()
    details = " ".join(w.get("details") or "" for w in warnings_of(bad))
    assert "greeting" in details and "expected a string" in details
    assert bad.result("hello/say", {}) == {"greeting": "hello"}  # the default, not 5


def test_strict_config_refuses_unknown_keys(codex_home: Path, server_env: dict[str, str]) -> None:
    (codex_home / "config.toml").write_text('model = "m"\nno_such_setting = 1\n')
    strict = subprocess.run(
        [sys.executable, "-m", "codex_core", "--strict-config"],
        env=server_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert strict.returncode == 2
    assert "no_such_setting" in strict.stderr
    lenient = subprocess.run(
        [sys.executable, "-m", "codex_core"],
        env=server_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert lenient.returncode == 0
