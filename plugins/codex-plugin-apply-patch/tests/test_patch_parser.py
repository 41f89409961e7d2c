"""The patch language: parsing, fitting hunks to files, and all-or-nothing writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from codex_plugin_apply_patch import PatchError, apply, parse
from codex_plugin_apply_patch.parser import plan


def patch(*lines: str) -> str:
    return "\n".join(["*** Begin Patch", *lines, "*** End Patch"]) + "\n"


def test_parse_add_delete_update_and_move() -> None:
    hunks = parse(patch("*** Add File: n.txt", "+a", "+b", "*** Delete File: d.txt",
                        "*** Update File: u.txt", "*** Move to: v.txt", "@@ def f():",
                        " x", "-y", "+z", "*** End of File"))  # fmt: skip
    assert [(h.kind, h.path) for h in hunks] == [("add", "n.txt"), ("delete", "d.txt"),
                                                 ("update", "u.txt")]  # fmt: skip
    assert hunks[0].content == "a\nb\n"
    chunk = hunks[2].chunks[0]
    assert hunks[2].move_to == "v.txt"
    assert (chunk.context, chunk.old, chunk.new, chunk.end_of_file) == (
        "def f():",
        ["x", "y"],
        ["x", "z"],
        True,
    )


@pytest.mark.parametrize(
    "text",
    ["", "hello", "*** Begin Patch\n*** Add File: x\n+x\n", patch("*** Frobnicate File: x"),
     patch("*** Update File: x"), patch()],
)  # fmt: skip
def test_malformed_patches_are_rejected(text: str) -> None:
    with pytest.raises(PatchError, match="invalid"):
        parse(text)


def test_update_finds_context_and_tolerates_trailing_whitespace(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("def a():\n    return 1  \n\ndef b():\n    return 1\n")
    changes = plan(parse(patch("*** Update File: f.py", "@@ def b():", "-    return 1",
                               "+    return 2")), str(tmp_path))  # fmt: skip
    assert changes[0].new == "def a():\n    return 1  \n\ndef b():\n    return 2\n"
    (tmp_path / "g.txt").write_text("a  \nb\n")
    changes = plan(parse(patch("*** Update File: g.txt", "@@", "-a", "+A")), str(tmp_path))
    assert changes[0].new == "A\nb\n"


def test_a_patch_that_does_not_fit_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n")
    text = patch("*** Add File: new.txt", "+new", "*** Update File: a.txt", "@@", "-zzz", "+x")
    with pytest.raises(PatchError, match="Failed to find expected lines"):
        plan(parse(text), str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_apply_writes_everything_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "gone.txt").write_text("bye\n")
    changes = plan(parse(patch("*** Add File: sub/new.txt", "+new", "*** Delete File: gone.txt",
                               "*** Update File: a.txt", "*** Move to: b.txt", "@@", "-one",
                               "+two")), str(tmp_path))  # fmt: skip
    apply(changes)
    assert (tmp_path / "sub" / "new.txt").read_text() == "new\n"
    assert (tmp_path / "b.txt").read_text() == "two\n"
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "gone.txt").exists()
    # The second write cannot happen (a folder is in the way): the first is undone.
    (tmp_path / "c.txt").write_text("c\n")
    (tmp_path / "blocked").mkdir()
    changes = plan(parse(patch("*** Update File: c.txt", "@@", "-c", "+C",
                               "*** Add File: blocked", "+x")), str(tmp_path))  # fmt: skip
    with pytest.raises(PatchError):
        apply(changes)
    assert (tmp_path / "c.txt").read_text() == "c\n"
    assert not [p for p in tmp_path.rglob(".apply_patch.*")]
