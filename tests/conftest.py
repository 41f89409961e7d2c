"""Fixtures: a real ``codex-app-server`` subprocess over stdio, in a temp CODEX_HOME.

The machinery is the plugin author's kit (``codex_core.testing.pytest_plugin``, loaded by
pytest through codex-core's ``pytest11`` entry point); the names below are the suite's older
spellings of its fixtures, kept because many tests use them. Helpers that tests import live in
importable modules (the kit), never here: ``from conftest import`` finds whichever
``conftest`` pytest imported first, another folder's when several are collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_core.testing.pytest_plugin import (
    ServerFactory,
    StdioServer,
    write_distribution,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server_env(codex_env: dict[str, str]) -> dict[str, str]:
    """The environment of a server under test: its own CODEX_HOME and entry-point cache."""
    return codex_env


@pytest.fixture
def start_server(codex_server_factory: ServerFactory) -> ServerFactory:
    """Start servers with extra arguments or environment; all are stopped afterwards."""
    return codex_server_factory


@pytest.fixture
def raw_server(start_server: ServerFactory) -> StdioServer:
    """A running server that has not been initialized."""
    return start_server()


@pytest.fixture
def server(raw_server: StdioServer) -> StdioServer:
    """A running, initialized server."""
    raw_server.initialize()
    return raw_server


@pytest.fixture
def plugin_site(codex_plugin_site: Path) -> Path:
    """A folder on the server's PYTHONPATH to install test plugins into."""
    return codex_plugin_site


@pytest.fixture
def probe_plugin(plugin_site: Path) -> Path:
    source = (REPO / "tests" / "fixtures" / "codex_probe_plugin.py").read_text()
    write_distribution(plugin_site, "codex-probe-plugin", source, entry_point="probe")
    return plugin_site
