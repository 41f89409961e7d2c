"""The catalog format: Codex's marketplace.json with Python sources (no server needed)."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from codex_core.marketplace import catalog

SHA = "a" * 64


def parse(plugins: list[object], **top: object) -> catalog.Catalog:
    doc = {"name": "m", "interface": {"displayName": "M"}, "plugins": plugins, **top}
    return catalog.parse(json.dumps(doc), "/tmp/m/marketplace.json")


def test_sources_and_policy() -> None:
    found = parse(
        [
            {"name": "a", "source": "./a"},
            {
                "name": "b",
                "source": {"source": "wheel", "url": "b-1.0-py3-none-any.whl", "sha256": SHA},
            },
            {
                "name": "c",
                "source": {"source": "pypi", "requirement": "c==1.0", "hashes": [f"sha256:{SHA}"]},
                "policy": {
                    "installation": "INSTALLED_BY_DEFAULT",
                    "authentication": "ON_USE",
                    "products": ["CODEX"],
                },
            },
        ]
    )
    assert [e.name for e in found.entries] == ["a", "b", "c"]
    assert found.display_name == "M" and found.skipped == []
    assert found.resolve("./a") == "/tmp/m/a"
    assert found.entries[2].policy.products == ["CODEX"]


@pytest.mark.parametrize(
    "source",
    [
        {"source": "pypi", "requirement": "c>=1.0", "hashes": [f"sha256:{SHA}"]},
        {"source": "pypi", "requirement": "c==1.0", "hashes": []},
        {"source": "wheel", "url": "x.whl", "sha256": "nothex"},
        {"source": "git-subdir", "url": "https://x/y.git", "path": "p"},
    ],
)
def test_bad_entries_are_skipped_and_reported(source: dict[str, object]) -> None:
    found = parse([{"name": "bad", "source": source}, {"name": "ok", "source": "./ok"}])
    assert [e.name for e in found.entries] == ["ok"]
    assert len(found.skipped) == 1 and "bad" in found.skipped[0]


def test_default_prompt_string_or_array() -> None:
    assert catalog.normalize_default_prompt("hi") == ["hi"]
    assert catalog.normalize_default_prompt("x" * 129) is None
    assert catalog.normalize_default_prompt(["a", "x" * 129, 3, "b", "c", "d"]) == ["a", "b", "c"]
    assert catalog.normalize_default_prompt([]) is None


def test_broken_catalog_is_an_error_the_others_still_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "marketplace.json").write_text("{")
    found, errors = catalog.load_all([str(tmp_path / "bad"), str(REPO / "marketplace")])
    assert [c.name for c in found] == ["codex-core"]
    assert errors[0].location.endswith("bad/marketplace.json")


def test_default_catalog_lists_the_bundled_plugins() -> None:
    found = catalog.load(str(REPO / "marketplace"))
    names = {entry.name for entry in found.entries}
    assert {"websocket", "watchfiles", "shell", "openai", "device-code"} <= names
    assert found.skipped == []
