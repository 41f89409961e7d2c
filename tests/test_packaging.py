"""``pip install '.[all]'``: the kernel with every bundled plugin, each from its folder.

Installing it for real takes about two minutes on a fresh venv (measured: a server from it
lists every plugin and runs a turn through the OpenAI provider), too slow for every run; this
checks what pip reads to do it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def test_the_all_extra_names_every_bundled_plugin_by_its_folder() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    extra = [Requirement(line) for line in project["project"]["optional-dependencies"]["all"]]
    bundled = sorted(path.parent.name for path in REPO.glob("plugins/*/pyproject.toml"))
    assert [requirement.name for requirement in extra] == bundled
    for requirement in extra:
        assert requirement.url == f"{{root:uri}}/plugins/{requirement.name}"
        folder = REPO / "plugins" / requirement.name
        plugin = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        assert plugin["name"] == requirement.name
    # hatchling expands {root:uri} only where direct references are allowed
    assert project["tool"]["hatch"]["metadata"]["allow-direct-references"] is True
    assert "codex-plugin-openai" in bundled  # a model provider
