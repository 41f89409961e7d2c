"""Finding an installed plugin's distribution when its module is named otherwise.

The usual plugin's module is its distribution's name (``codex-plugin-x`` -> ``codex_plugin_x``)
and is found by that name; this one is found through the group's entry points, and its
version range is still checked (``bench/discovery.py`` measures what the lookup costs).
"""

from __future__ import annotations

import json
from pathlib import Path

from codex_core.testing.pytest_plugin import CodexCli

PLUGIN = """from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod


async def hi(ctx, params):
    return {"hi": True}


@hookimpl
def codex_rpc_methods():
    return [RpcMethod("extras/hi", hi)]
"""


def install(site: Path, distribution: str, module: str, version: str, requires: str) -> None:
    """Lay out a distribution whose module is not named after it, as pip would."""
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        f"Requires-Dist: {requires}\n"
    )
    (info / "RECORD").write_text(f"{module}.py,,\n")
    (info / "entry_points.txt").write_text(f"[codex_core.plugins]\nextras = {module}\n")
    (site / f"{module}.py").write_text(PLUGIN)


def plugins(codex_cli: CodexCli) -> dict[str, dict[str, object]]:
    done = codex_cli("plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    return {record["name"]: record for record in json.loads(done.stdout)}


def test_a_module_named_unlike_its_distribution(
    codex_plugin_site: Path, codex_cli: CodexCli
) -> None:
    install(codex_plugin_site, "codex-extras", "extras_plugin", "2.5", "codex-core>=0.1")
    record = plugins(codex_cli)["extras"]
    assert record["distribution"] == "codex-extras" and record["version"] == "2.5"
    assert record["state"] == "loaded"


def test_its_kernel_range_is_still_checked(codex_plugin_site: Path, codex_cli: CodexCli) -> None:
    install(codex_plugin_site, "codex-extras", "extras_plugin", "2.5", "codex-core>=99")
    record = plugins(codex_cli)["extras"]
    assert record["state"] == "failed"
    assert str(record["error"]).startswith("requires codex-core>=99, but this is codex-core")
