"""The plugin author's kit (``codex_core.testing.pytest_plugin``) from the outside.

A throwaway project is tested with pytest's ``pytester``: the kit must load from codex-core's
``pytest11`` entry point alone, and every example of ``docs/testing-plugins.md`` must pass
there, as written.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from codex_core.testing.pytest_plugin import FIXTURES

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "testing-plugins.md"

#: The plugin the guide tests: the one of docs/writing-plugins.md.
HELLO = """
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod


async def say(ctx, params):
    return {"greeting": f"hello {ctx.connection.client_name}"}


@hookimpl
def codex_rpc_methods():
    return [RpcMethod("hello/say", say)]
"""

#: The project's conftest: the guide's, plus a stand-in for `pip install -e .` of the plugin.
CONFTEST = """
import pytest
from codex_core.testing.pytest_plugin import write_distribution

HELLO = {hello!r}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def installed(codex_plugin_site):
    write_distribution(codex_plugin_site, "codex-plugin-hello", HELLO, entry_point="hello")
"""


def guide_examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    return [block for block in blocks if "def test_" in block]


def test_the_entry_point_registers_the_kit() -> None:
    (entry_point,) = [
        ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "codex_core"
    ]
    assert entry_point.value == "codex_core.testing.pytest_plugin"


def test_every_fixture_is_listed_and_documented(pytester: pytest.Pytester) -> None:
    listing = pytester.runpytest("--fixtures").stdout.str()
    guide = GUIDE.read_text()
    for name in FIXTURES:
        assert re.search(rf"^{name} ", listing, re.M), f"{name} is not registered"
        assert f"| `{name}` |" in guide, f"{name} is not in the guide's fixture reference"


def test_the_guides_examples_pass(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.format(hello=HELLO))
    pytester.makepyfile(codex_plugin_hello=HELLO)
    pytester.syspathinsert()
    examples = guide_examples()
    assert len(examples) >= 5
    pytester.makepyfile(
        **{f"test_example_{index}": "import pytest\n" + code for index, code in enumerate(examples)}
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=300)
    result.assert_outcomes(passed=sum(code.count("def test_") for code in examples))


def test_websocket_fixtures_skip_without_the_plugin(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(
        """
import importlib.metadata

import pytest

real = importlib.metadata.distribution


def missing(name):
    if name == "codex-plugin-websocket":
        raise importlib.metadata.PackageNotFoundError(name)
    return real(name)


@pytest.fixture(autouse=True)
def no_websocket_plugin(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "distribution", missing)
"""
    )
    pytester.makepyfile("def test_ws(codex_ws_server):\n    raise AssertionError\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*codex-plugin-websocket is not installed*"])
