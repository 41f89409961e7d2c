"""From scored paths to the result list the official server sends.

On top of the matcher's score the official server ranks by what a person typing a file name
means, in tiers worth 2^16 each (larger than any path score):

- a file whose *name* alone matches a plain query (one fuzzy atom typed as is, without atom
  syntax or escapes) is scored on its name, plus one tier;
- a file whose name *is* the query (ignoring case) gets two tiers more, and so does one
  directory so named (the shortest path; it is scored on its name);
- anything else (other directories, queries using the atom syntax, matches that need the
  directories) is scored on its whole relative path.

The best ``MATCH_LIMIT`` are kept (ties at the cut go to the shorter path, as nucleo's order
does) and sent by descending score, then ascending path.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from codex_plugin_file_search.matching import (
    Atom,
    Haystack,
    Kind,
    lower,
    match_atoms,
    parse_query,
    strip_accent,
)

#: How many results a search returns.
MATCH_LIMIT = 50
#: One ranking tier: above any score a path can earn on its own.
TIER = 1 << 16
NAME_MATCH_BONUS = TIER
EXACT_NAME_BONUS = 2 * TIER


class Entry(NamedTuple):
    """A file or directory found under root number ``root``, by its relative path (a tuple:
    a walk makes one per file, and a tuple is the cheapest object to make)."""

    root: int
    path: str
    is_dir: bool

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Match:
    entry: Entry
    score: int
    indices: list[int]


class Query:
    """A parsed query, ready to score entries."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.atoms: list[Atom] = parse_query(text)
        # Name tiers apply to a query that is one fuzzy atom written as is, the way people
        # type file names: no atom syntax, not even an escape.
        typed = "".join(lower(char) for char in text.strip())
        plain = (
            len(self.atoms) == 1
            and self.atoms[0].kind is Kind.FUZZY
            and not self.atoms[0].negative
            and self.atoms[0].needle == typed
        )
        self.name_needle = self.atoms[0].needle if plain else None
        self.fold_accents = plain and self.atoms[0].normalize
        # Possessive runs up to each needle character: a linear subsequence test.
        self._prefilter = (
            None
            if self.name_needle is None
            else re.compile(
                "".join(f"[^{re.escape(char)}]*+{re.escape(char)}" for char in self.name_needle),
                re.DOTALL,
            )
        )

    def may_match(self, entries: list[Entry]) -> list[Entry]:
        """For a plain query, the entries whose path holds the needle in order (implied by any
        match, and checked by one regular expression per path, in C); others all pass."""
        pattern = self._prefilter
        if pattern is None:
            return entries
        matcher = pattern.match
        lines = self._fold("\n".join(entry.path for entry in entries).lower()).split("\n")
        if len(lines) != len(entries):  # a name with a newline in it: one path at a time
            return [entry for entry in entries if matcher(self._fold(entry.path.lower()))]
        return [entry for entry, line in zip(entries, lines, strict=True) if matcher(line)]

    def _fold(self, text: str) -> str:
        if self.fold_accents and not text.isascii():
            return "".join(strip_accent(char) for char in text)
        return text

    def refines(self, earlier: Query) -> bool:
        """Whether everything this query matches, ``earlier`` matched too (typing on)."""
        return (
            self.name_needle is not None
            and earlier.name_needle is not None
            and self.name_needle.startswith(earlier.name_needle)
        )

    def score(self, entry: Entry, floor: int = -1) -> Match | None:
        """The match of a file (name tiers included) or of a directory (by its whole path).

        Below ``floor`` (the worst score still kept) a path is not worth scoring: when the
        kept ones all matched on their names, a match needing the directories cannot rank.
        """
        needle = self.name_needle
        if needle is not None and not entry.is_dir:
            name = Haystack(entry.name)
            on_name = match_atoms(self.atoms, name)
            if on_name is not None:
                exact = needle in (name.chars, name.folded)
                bonus = NAME_MATCH_BONUS + (EXACT_NAME_BONUS if exact else 0)
                return self._on_name(entry, on_name, bonus)
        if floor >= TIER:
            return None
        found = match_atoms(self.atoms, Haystack(entry.path))
        if found is None:
            return None
        return Match(entry, found[0], found[1])

    def named_directory(self, entry: Entry) -> Match | None:
        """A directory whose name is the query, scored on its name with the exact-name tier."""
        needle = self.name_needle
        if needle is None or not entry.is_dir:
            return None
        name = Haystack(entry.name)
        if needle not in (name.chars, name.folded):
            return None
        on_name = match_atoms(self.atoms, name)
        return None if on_name is None else self._on_name(entry, on_name, EXACT_NAME_BONUS)

    @staticmethod
    def _on_name(entry: Entry, on_name: tuple[int, list[int]], bonus: int) -> Match:
        offset = len(entry.path) - len(entry.name)
        return Match(entry, on_name[0] + bonus, [offset + index for index in on_name[1]])


def _shorter(found: Match) -> tuple[int, str]:
    return len(found.entry.path), found.entry.path


class TopMatches:
    """The best ``limit`` matches seen so far, fed in batches as the walk finds entries.

    For a plain query it also keeps ``candidates``, every entry that may match: a query
    typed on from this one only needs to look at those (and at the entries found later).

    Of the directories named exactly as the query, only one is lifted to the exact-name tier
    (the shortest path), as the official server does; the others rank by their whole path.
    """

    def __init__(self, query: Query, limit: int = MATCH_LIMIT) -> None:
        self.query = query
        self.limit = limit
        self.heap: list[tuple[int, int, int, Match]] = []
        self.named_directory: Match | None = None
        self.seen = 0
        self.candidates: list[Entry] = []

    def add(self, entries: list[Entry]) -> None:
        heap = self.heap
        entries = list(entries)
        first = self.seen
        self.seen += len(entries)
        candidates = self.query.may_match(entries)
        self.candidates.extend(candidates)
        for order, entry in enumerate(candidates, first):
            floor = heap[0][0] if len(heap) >= self.limit else -1
            found = self.query.score(entry, floor)
            if entry.is_dir:
                named = self.query.named_directory(entry)
                if named is not None and (
                    self.named_directory is None or _shorter(named) < _shorter(self.named_directory)
                ):
                    self.named_directory = named
            if found is None:
                continue
            key = (found.score, -len(entry.path), -order, found)
            if len(heap) < self.limit:
                heapq.heappush(heap, key)
            elif key[:3] > heap[0][:3]:
                heapq.heapreplace(heap, key)

    def results(self, roots: list[str]) -> list[dict[str, Any]]:
        """The wire results, best first."""
        kept = [item[3] for item in sorted(self.heap, reverse=True)]
        named = self.named_directory
        if named is not None:
            kept = [named, *(found for found in kept if found.entry != named.entry)]
        ordered = sorted(kept[: self.limit], key=lambda m: (-m.score, m.entry.path))
        return [to_wire(found, roots) for found in ordered]


def to_wire(found: Match, roots: list[str]) -> dict[str, Any]:
    """One ``FuzzyFileSearchResult``, fields in the official server's order."""
    entry = found.entry
    return {
        "root": roots[entry.root],
        "path": entry.path,
        "match_type": "directory" if entry.is_dir else "file",
        "file_name": entry.name,
        "score": found.score,
        "indices": found.indices,
    }
