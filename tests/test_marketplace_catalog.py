"""The catalog format: Codex's marketplace.json with Python sources (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_core.marketplace import catalog

REPO = Path(__file__).resolve().parents[1]

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


def test_broken_catalog_is_an_error_the_others_still_load(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "marketplace.json").write_text("{")
    sources = [
        catalog.CatalogSource(str(tmp_path / "bad")),
        catalog.CatalogSource(str(REPO / "marketplace")),
    ]
    found, errors = catalog.load_all(sources)
    assert [c.name for c in found] == ["codex-core"]
    assert errors[0].location.endswith("bad/marketplace.json")
    assert errors[0].message.startswith(f"invalid marketplace file `{errors[0].location}`: ")


def test_configured_sources_read_the_official_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    copy = home / ".tmp" / "marketplaces"
    (copy / "from-url" / ".agents" / "plugins").mkdir(parents=True)
    (copy / "from-url" / ".agents" / "plugins" / "marketplace.json").write_text("{}")
    config = {
        "marketplace": {"default": False},
        "marketplaces": {
            "here": {"source_type": "local", "source": "/srv/here"},
            "cloned": {"source_type": "git", "source": "https://example.invalid/x.git"},
            "from-url": {"source": "http://127.0.0.1:1/m.json"},
            "live": {"source": "http://127.0.0.1:1/live.json"},
            "nothing": {"source_type": "local"},
        },
    }
    assert catalog.configured_sources(config, home) == [
        catalog.CatalogSource("/srv/here"),
        catalog.CatalogSource(str(copy / "cloned")),
        catalog.CatalogSource(str(copy / "from-url"), base="http://127.0.0.1:1/m.json"),
        catalog.CatalogSource("http://127.0.0.1:1/live.json"),
    ]


def test_relative_references() -> None:
    codex_layout = catalog.Catalog("m", "/r/.agents/plugins/marketplace.json", None, [])
    assert codex_layout.resolve("./plugins/x") == "/r/plugins/x"  # from the repository root
    downloaded = catalog.Catalog("m", "/h/.agents/plugins/marketplace.json", None, [])
    downloaded.base = "http://127.0.0.1:1/cat/marketplace.json"
    assert downloaded.resolve("x.whl") == "http://127.0.0.1:1/cat/x.whl"


def test_default_catalog_lists_the_bundled_plugins() -> None:
    """Every distribution under plugins/, so `plugin install NAME` finds each one."""
    found = catalog.load(str(REPO / "marketplace"))
    bundled = {path.parent.name for path in REPO.glob("plugins/*/pyproject.toml")}
    assert {entry.package for entry in found.entries} == bundled
    assert {entry.name for entry in found.entries} == {
        name.removeprefix("codex-plugin-") for name in bundled
    }
    assert found.skipped == []
