"""Finding the files and directories a search ranks, as the official server's walker does.

The official server walks with ripgrep's ``ignore`` crate: hidden entries included, symbolic
links followed (a link that loops back is skipped), ``.ignore`` files honoured everywhere,
``.gitignore`` files and ``.git/info/exclude`` only inside a git repository (a ``.git``
in the root or above it), including those in the root's parent directories up to the
repository's top. Deeper rules win over shallower ones, ``.ignore`` over ``.gitignore``. The
``.git`` directory itself is not skipped. Every root yields itself (path ``""``) first.

With several roots, an entry belongs to the deepest root containing it (so a root inside
another one is walked twice and its entries come twice, as the official server sends them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codex_plugin_file_search.ranking import Entry

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

#: Entries handed over at a time, so a search can rank while the walk goes on.
BATCH = 2048


@dataclass(frozen=True, slots=True)
class Frame:
    """The ignore rules one directory adds, for the entries below it."""

    directory: str
    ignore: GitIgnoreSpec | None
    gitignore: GitIgnoreSpec | None
    is_repository: bool
    exclude: GitIgnoreSpec | None = None


def load_rules(path: str) -> GitIgnoreSpec | None:
    """The rules of one ignore file; ``None`` when there is none (or it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    from pathspec import GitIgnoreSpec  # the first walk pays for it, not every server start

    return GitIgnoreSpec.from_lines(lines)


def frame_for(directory: str, in_repository: bool) -> Frame:
    is_repository = os.path.exists(os.path.join(directory, ".git"))
    exclude = None
    if is_repository:
        exclude = load_rules(os.path.join(directory, ".git", "info", "exclude"))
    return Frame(
        directory=directory,
        ignore=load_rules(os.path.join(directory, ".ignore")),
        gitignore=(
            load_rules(os.path.join(directory, ".gitignore"))
            if in_repository or is_repository
            else None
        ),
        is_repository=is_repository,
        exclude=exclude,
    )


def parent_frames(root: str) -> list[Frame]:
    """The rules the root's ancestors add, outermost first."""
    ancestors: list[str] = []
    current = os.path.dirname(root)
    while True:
        ancestors.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    ancestors.reverse()
    in_repository = any(
        os.path.exists(os.path.join(directory, ".git")) for directory in [*ancestors, root]
    )
    return [frame_for(directory, in_repository) for directory in ancestors]


def _decides(spec: GitIgnoreSpec | None, directory: str, path: str, is_dir: bool) -> bool | None:
    if spec is None:
        return None
    relative = path[len(directory.rstrip("/")) + 1 :]  # paths below ``directory`` by making
    return spec.check_file(relative + "/" if is_dir else relative).include


def is_ignored(frames: list[Frame], path: str, is_dir: bool) -> bool:
    """Whether the rules in ``frames`` (outermost first, only those with rules) hide ``path``."""
    if not frames:
        return False
    for frame in reversed(frames):
        decided = _decides(frame.ignore, frame.directory, path, is_dir)
        if decided is not None:
            return decided
    for frame in reversed(frames):
        decided = _decides(frame.gitignore, frame.directory, path, is_dir)
        if decided is not None:
            return decided
        if frame.is_repository:
            decided = _decides(frame.exclude, frame.directory, path, is_dir)
            return bool(decided)
    return False


def walk_root(root: str) -> Iterator[tuple[str, bool]]:
    """Absolute paths under one root (the root first) and whether each is a directory."""
    try:
        top = os.stat(root)
    except OSError:
        return
    from stat import S_ISDIR

    if not S_ISDIR(top.st_mode):
        yield root, False
        return
    yield root, True
    frames = [
        frame
        for frame in parent_frames(root)
        if frame.ignore or frame.gitignore or frame.exclude or frame.is_repository
    ]
    in_repository = any(frame.is_repository for frame in frames)
    # Depth first; each stack item is a directory, its frames and the directories above it.
    stack: list[tuple[str, list[Frame], frozenset[tuple[int, int]]]] = [
        (root, frames, frozenset({(top.st_dev, top.st_ino)}))
    ]
    while stack:
        directory, above, visiting = stack.pop()
        frame = frame_for(directory, in_repository or any(f.is_repository for f in above))
        has_rules = frame.ignore or frame.gitignore or frame.exclude or frame.is_repository
        rules = [*above, frame] if has_rules else above
        try:
            with os.scandir(directory) as listing:
                children = sorted(listing, key=lambda child: child.name)
        except OSError:
            continue
        subdirectories = []
        for child in children:
            try:
                is_dir = child.is_dir()
                if not is_dir and not child.is_file():
                    os.stat(child.path)  # a broken link raises here and is skipped
            except OSError:
                continue
            if is_ignored(rules, child.path, is_dir):
                continue
            if is_dir:
                try:
                    info = os.stat(child.path)
                except OSError:
                    continue
                key = (info.st_dev, info.st_ino)
                if key in visiting:
                    continue
                subdirectories.append((child.path, rules, visiting | {key}))
            yield child.path, is_dir
        stack.extend(reversed(subdirectories))


def owning_root(path: str, roots: list[tuple[str, str, int]]) -> tuple[int, str] | None:
    """The deepest root containing ``path`` (the first of equals) and the path below it;
    ``roots`` are (root, root with a trailing slash, depth)."""
    best: tuple[int, str] | None = None
    best_depth = -1
    for index, (root, prefix, depth) in enumerate(roots):
        if depth <= best_depth:
            continue
        if path == root:
            best, best_depth = (index, ""), depth
        elif path.startswith(prefix):
            best, best_depth = (index, path[len(prefix) :]), depth
    return best


def walk(roots: list[str], cancelled: Callable[[], bool]) -> Iterator[list[Entry]]:
    """Every entry under ``roots``, in batches, until ``cancelled()`` says stop."""
    absolute = [os.path.normpath(os.path.abspath(root)) for root in roots]
    described = [
        (root, root.rstrip("/") + "/", len([part for part in root.split("/") if part]))
        for root in absolute
    ]
    batch: list[Entry] = []
    for index, root in enumerate(absolute):
        prefix = described[index][1]
        for path, is_dir in walk_root(root):
            if len(described) == 1:  # one root owns everything below it
                owner: tuple[int, str] | None = (0, path[len(prefix) :] if path != root else "")
            else:
                owner = owning_root(path, described)
            if owner is not None:
                batch.append(Entry(owner[0], owner[1], is_dir))
            if len(batch) >= BATCH:
                if cancelled():
                    return
                yield batch
                batch = []
    if batch:
        yield batch
