"""``skills/list`` over real folders: repository, CODEX_HOME and ~/.agents skills."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def skill(folder: Path, name: str, description: str) -> Path:
    folder.mkdir(parents=True)
    path = folder / "SKILL.md"
    path.write_text(f"---\nname: {name}\ndescription: {description}\n---\nDo it well.\n")
    return path


def test_skills_are_listed_per_cwd_with_their_scope(
    start_server: Any, codex_home: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    work = repo / "pkg"
    work.mkdir()
    hello = skill(repo / ".agents" / "skills" / "hello", "hello", "Say hello nicely.")
    broken = repo / ".agents" / "skills" / "broken" / "SKILL.md"
    broken.parent.mkdir(parents=True)
    broken.write_text("no front matter here\n")
    mine = skill(codex_home / "skills" / "mine", "mine", "In CODEX_HOME.")
    home = tmp_path / "home"
    shared = skill(home / ".agents" / "skills" / "shared", "shared", "In ~/.agents.")

    server = start_server(env={"HOME": str(home)})
    server.initialize()
    [entry] = server.result("skills/list", {"cwds": [str(work)]})["data"]
    assert entry["cwd"] == str(work)
    own = [found for found in entry["skills"] if found["scope"] != "system"]
    assert own == [
        {"name": "hello", "description": "Say hello nicely.", "path": str(hello),
         "scope": "repo", "enabled": True, "pluginId": None},
        {"name": "mine", "description": "In CODEX_HOME.", "path": str(mine),
         "scope": "user", "enabled": True, "pluginId": None},
        {"name": "shared", "description": "In ~/.agents.", "path": str(shared),
         "scope": "user", "enabled": True, "pluginId": None},
    ]  # fmt: skip
    assert entry["errors"] == [
        {"path": str(broken), "message": "missing YAML frontmatter delimited by ---"}
    ]
    # no cwds: the server's working directory
    assert len(server.result("skills/list", {})["data"]) == 1


def test_bundled_system_skills_are_installed_and_listed(
    start_server: Any, codex_home: Path
) -> None:
    server = start_server()
    server.initialize()
    [entry] = server.result("skills/list", {})["data"]
    system = {found["name"]: found for found in entry["skills"] if found["scope"] == "system"}
    # the official server's set, so clients offer the same skills
    assert sorted(system) == [
        "imagegen", "openai-docs", "review-agent", "skill-creator", "skill-installer"
    ]  # fmt: skip
    folder = codex_home / "skills" / ".system"
    creator = system["skill-creator"]
    assert creator["path"] == str(folder / "skill-creator" / "SKILL.md")
    assert creator["shortDescription"] == "Create or update a skill"
    assert creator["interface"]["displayName"] == "Skill Creator"
    assert creator["interface"]["iconLarge"] == str(
        folder / "skill-creator/assets/skill-creator.png"
    )
    assert Path(creator["interface"]["iconLarge"]).is_file()
    assert (
        "interface" in system["review-agent"] and "shortDescription" not in system["review-agent"]
    )
    # a damaged copy is put back when listed again (its marker no longer matches)
    (folder / ".codex-system-skills.marker").write_text("stale\n")
    (folder / "skill-creator" / "SKILL.md").unlink()
    server.result("skills/list", {})
    assert (folder / "skill-creator" / "SKILL.md").is_file()


def test_roots_are_searched_deep_sorted_by_name_and_through_symlinks(
    start_server: Any, codex_home: Path, tmp_path: Path
) -> None:
    """As the reference: six folders deep, hidden folders skipped, a symlinked folder listed
    by its real path (and once, however many roots reach it), names sorted within a scope."""
    user = codex_home / "skills"
    zeta = skill(user / "a" / "zeta", "zeta", "Nested one level.")
    alpha = skill(user / "z" / "alpha", "alpha", "Sorted first.")
    six = skill(user / "1" / "2" / "3" / "4" / "5" / "6", "six", "Deepest found.")
    skill(user / "1" / "2" / "3" / "4" / "5" / "6" / "7", "seven", "Too deep.")
    skill(user / ".hidden" / "h", "hidden", "Never listed.")
    elsewhere = skill(tmp_path / "shared" / "linked", "linked", "Through a symlink.")
    (user / "link").symlink_to(elsewhere.parent.parent)
    server = start_server(env={"HOME": str(tmp_path / "home")})
    server.initialize()
    server.result("skills/extraRoots/set", {"extraRoots": [str(tmp_path / "shared")]})
    [entry] = server.result("skills/list", {"cwds": [str(tmp_path)]})["data"]
    own = [(found["name"], found["path"]) for found in entry["skills"] if found["scope"] == "user"]
    assert own == [
        ("alpha", str(alpha)),
        ("linked", str(elsewhere)),
        ("six", str(six)),
        ("zeta", str(zeta)),
    ]


def test_extra_roots_are_replaced_whole_and_announced(
    start_server: Any, codex_home: Path, tmp_path: Path
) -> None:
    first = skill(tmp_path / "first" / "one", "one", "From the first root.")
    second = skill(tmp_path / "second" / "two", "two", "From the second root.")
    server = start_server(env={"HOME": str(tmp_path / "home")})
    server.initialize()

    def listed() -> list[str]:
        [entry] = server.result("skills/list", {"cwds": [str(tmp_path)], "forceReload": True})[
            "data"
        ]
        return [found["path"] for found in entry["skills"] if found["scope"] == "user"]

    assert server.result("skills/extraRoots/set", {"extraRoots": [str(first.parent.parent)]}) == {}
    server.wait_notification("skills/changed")
    assert listed() == [str(first)]
    server.result("skills/extraRoots/set", {"extraRoots": [str(second.parent.parent)]})
    server.wait_notification("skills/changed")
    assert listed() == [str(second)]
    server.result("skills/extraRoots/set", {"extraRoots": []})
    server.wait_notification("skills/changed")
    assert listed() == []
    error = server.error("skills/extraRoots/set", {"extraRoots": ["not/absolute"]})
    assert error["code"] == -32600
    assert error["message"].startswith(
        "Invalid request: AbsolutePathBuf deserialized without a base path"
    )
