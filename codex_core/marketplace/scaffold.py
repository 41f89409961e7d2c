"""``codex-app-server plugin new NAME``: a new plugin distribution, ready to test and publish.

The files follow docs/writing-plugins.md and docs/testing-plugins.md exactly (an entry point,
one hookimpl, tests on the kit's fixtures), so a plugin author starts from something that
passes its own tests and grows it from there.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.version import Version

from codex_core import __version__

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def _kernel_range() -> str:
    """This kernel's minor series: plugins declare what they were written against."""
    version = Version(__version__)
    return f">={version.major}.{version.minor},<{version.major}.{version.minor + 1}"


def files_for(name: str) -> dict[str, str]:
    """Relative path -> content of the new plugin distribution ``codex-plugin-<name>``."""
    module = "codex_plugin_" + name.replace("-", "_")
    distribution = f"codex-plugin-{name}"
    return {
        "pyproject.toml": f'''[project]
name = "{distribution}"
version = "0.1.0"
description = "A codex-core plugin."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["codex-core{_kernel_range()}"]

[project.optional-dependencies]
test = ["pytest", "anyio"]

[project.entry-points."codex_core.plugins"]
{name} = "{module}"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["{module}"]
''',
        f"{module}/__init__.py": f'''"""{distribution}: adds `{name}/hello` to codex-core."""

from __future__ import annotations

from typing import Any

from codex_core.hookspecs import hookimpl
from codex_core.rpc import RequestContext, RpcMethod


async def hello(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return {{"greeting": f"hello {{ctx.connection.client_name}}"}}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [RpcMethod("{name}/hello", hello)]
''',
        "tests/conftest.py": """import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
""",
        f"tests/test_{module}.py": f'''"""{distribution}, tested with codex-core's test kit."""

import pytest

import {module}


@pytest.mark.anyio
@pytest.mark.codex_kernel(plugins=[{module}], load_entry_points=False)
async def test_hello_in_process(codex_client):
    assert await codex_client.request("{name}/hello", {{}}) == {{"greeting": "hello pytest"}}


def test_hello_over_stdio(codex_server):
    """A real server loads the plugin through its entry point: this checks the packaging."""
    assert codex_server.result("{name}/hello", {{}}) == {{"greeting": "hello pytest"}}
''',
        "README.md": f"""# {distribution}

A [codex-core](https://github.com/) plugin. It adds the JSON-RPC method `{name}/hello`.

```sh
pip install -e '.[test]'
pytest
codex-app-server plugins list     # shows `{name}`
```

Start from `{module}/__init__.py`; every hook a plugin can implement is in
`codex_core/hookspecs.py`, and the test fixtures are described in codex-core's
`docs/testing-plugins.md`.
""",
    }


def create(name: str, parent: Path) -> Path:
    """Write ``codex-plugin-<name>/`` under ``parent``; refuses to touch an existing folder."""
    if not _NAME.match(name):
        raise ValueError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and single hyphens, "
            "starting with a letter (for example `weather` or `jira-tools`)"
        )
    root = parent / f"codex-plugin-{name}"
    if root.exists():
        raise ValueError(f"{root} already exists; choose another name or folder")
    for relative, content in files_for(name).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root
