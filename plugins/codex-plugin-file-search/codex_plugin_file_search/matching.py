"""Scoring one query against one path, the way the official server's matcher (nucleo) does.

The official server ranks with the ``nucleo`` crate configured for paths, case-insensitive and
with Latin diacritics folded
(unless the query has some). Clients show its scores and highlight its ``indices``, so this
module reproduces that scoring instead of using a general fuzzy library (whose numbers would
mean something else): each matched character is worth ``SCORE_MATCH``, plus a bonus for where
it sits (after ``/``, after punctuation, a camelCase hump, a digit run), the first character's
bonus doubled, consecutive characters carrying the bonus of the run's start, and gaps
penalised. A fuzzy atom takes the best-scoring alignment (a small dynamic programme).

A query is split on whitespace into atoms whose scores add up, with nucleo's syntax: ``'x``
substring, ``^x`` prefix, ``x$`` suffix, ``^x$`` exact, ``!x`` must not contain ``x``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

SCORE_MATCH = 16
PENALTY_GAP_START = 3
PENALTY_GAP_EXTENSION = 1
BONUS_BOUNDARY = SCORE_MATCH // 2
BONUS_NON_WORD = SCORE_MATCH // 2
BONUS_CAMEL123 = BONUS_BOUNDARY - PENALTY_GAP_START
BONUS_CONSECUTIVE = PENALTY_GAP_START + PENALTY_GAP_EXTENSION
BONUS_FIRST_CHAR_MULTIPLIER = 2
#: Path configuration: after whitespace as after punctuation, after ``/`` a little more.
BONUS_BOUNDARY_WHITE = BONUS_BOUNDARY
BONUS_BOUNDARY_DELIMITER = BONUS_BOUNDARY + 1

# Character classes, ordered as nucleo orders them (word characters after DELIMITER).
WHITESPACE, NON_WORD, DELIMITER, LOWER, UPPER, LETTER, NUMBER = range(7)
DELIMITERS = "/"


def char_class(char: str) -> int:
    """The class of one character; the start of a path counts as following a delimiter."""
    if char.isascii():
        if "a" <= char <= "z":
            return LOWER
        if "A" <= char <= "Z":
            return UPPER
        if "0" <= char <= "9":
            return NUMBER
        if char.isspace():
            return WHITESPACE
        return DELIMITER if char in DELIMITERS else NON_WORD
    if char.islower():
        return LOWER
    if char.isupper():
        return UPPER
    if char.isnumeric():
        return NUMBER
    if char.isalpha():
        return LETTER
    if char.isspace():
        return WHITESPACE
    return NON_WORD


def bonus_for(previous: int, current: int) -> int:
    """The bonus a character of class ``current`` earns after one of class ``previous``."""
    if current > DELIMITER:
        if previous == WHITESPACE:
            return BONUS_BOUNDARY_WHITE
        if previous == DELIMITER:
            return BONUS_BOUNDARY_DELIMITER
        if previous == NON_WORD:
            return BONUS_BOUNDARY
    if (previous == LOWER and current == UPPER) or (previous != NUMBER and current == NUMBER):
        return BONUS_CAMEL123
    if current == WHITESPACE:
        return BONUS_BOUNDARY_WHITE
    if current == NON_WORD:
        return BONUS_NON_WORD
    return 0


@lru_cache(maxsize=4096)
def lower(char: str) -> str:
    """Lower case, one character for one (a character lowering to several stays as it is)."""
    lowered = char.lower()
    return lowered if len(lowered) == 1 else char


@lru_cache(maxsize=4096)
def strip_accent(char: str) -> str:
    """A Latin letter without its diacritics (``é`` -> ``e``); other characters unchanged."""
    if char.isascii():
        return char
    base = unicodedata.normalize("NFD", char)[0]
    return base if base.isascii() else char


#: Classes of the ASCII characters, and bonuses by (previous class, class): a table lookup
#: per character instead of two calls, since every candidate path goes through them.
_ASCII_CLASSES = [char_class(chr(code)) for code in range(128)]
_BONUSES = [[bonus_for(previous, current) for current in range(7)] for previous in range(7)]


def bonuses_of(text: str) -> list[int]:
    """The bonus each character of ``text`` earns where it stands."""
    if text.isascii():
        classes = [_ASCII_CLASSES[ord(char)] for char in text]
    else:
        classes = [char_class(char) for char in text]
    previous = [DELIMITER, *classes]
    return [_BONUSES[before][current] for before, current in zip(previous, classes, strict=False)]


class Haystack:
    """A path prepared for every atom: lowered characters and, once one matches, bonuses.

    ``folded`` also strips accents; an atom uses it unless its needle has accents itself
    (nucleo's "smart" normalization: typing ``é`` asks for ``é``).
    """

    __slots__ = ("_bonuses", "_folded", "chars", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        ascii_only = text.isascii()
        self.chars = text.lower() if ascii_only else "".join(lower(c) for c in text)
        self._folded: str | None = self.chars if ascii_only else None
        self._bonuses: list[int] | None = None

    @property
    def folded(self) -> str:
        if self._folded is None:
            self._folded = "".join(strip_accent(c) for c in self.chars)
        return self._folded

    @property
    def bonuses(self) -> list[int]:
        if self._bonuses is None:
            self._bonuses = bonuses_of(self.text)
        return self._bonuses


class Kind(Enum):
    FUZZY = "fuzzy"
    SUBSTRING = "substring"
    PREFIX = "prefix"
    POSTFIX = "postfix"
    EXACT = "exact"


@dataclass(frozen=True, slots=True)
class Atom:
    """One whitespace-separated part of a query."""

    needle: str
    kind: Kind
    negative: bool = False
    normalize: bool = True

    def match(self, haystack: Haystack) -> tuple[int, list[int]] | None:
        """Score and matched positions, or ``None`` when ``haystack`` does not match."""
        chars = haystack.folded if self.normalize else haystack.chars
        if self.kind is Kind.FUZZY:
            if not is_subsequence(self.needle, chars):
                return None
            return fuzzy_match(self.needle, chars, haystack.bonuses)
        if self.needle not in chars:
            return None
        return contiguous_match(self.needle, chars, haystack.bonuses, self.kind)


def parse_atom(raw: str) -> Atom | None:
    """One atom of nucleo's query syntax; ``None`` when nothing is left to match."""
    negative = raw.startswith("!")
    if negative:
        raw = raw[1:]
    kind = Kind.SUBSTRING if negative else Kind.FUZZY
    if raw.startswith("^"):
        raw, kind = raw[1:], Kind.PREFIX
    elif raw.startswith("'"):
        raw, kind = raw[1:], Kind.SUBSTRING
    elif raw.startswith(("\\^", "\\'", "\\!")):
        raw = raw[1:]
    if raw.endswith("\\$"):
        raw = raw[:-2] + "$"
    elif raw.endswith("$"):
        raw = raw[:-1]
        kind = Kind.EXACT if kind is Kind.PREFIX else Kind.POSTFIX
    needle = "".join(lower(c) for c in raw)
    normalize = all(strip_accent(c) == c for c in needle)
    return Atom(needle, kind, negative, normalize) if needle else None


def parse_query(query: str) -> list[Atom]:
    """The atoms of a query: split on unescaped whitespace (``\\ `` keeps a space)."""
    atoms: list[Atom] = []
    current: list[str] = []
    escaped = False
    for char in query:
        if escaped:
            if char != " ":
                current.append("\\")
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char.isspace():
            if current:
                atom = parse_atom("".join(current))
                if atom is not None:
                    atoms.append(atom)
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    if current:
        atom = parse_atom("".join(current))
        if atom is not None:
            atoms.append(atom)
    return atoms


def is_subsequence(needle: str, chars: str) -> bool:
    """Whether ``needle`` occurs in order in ``chars``: the cheap test before scoring."""
    position = 0
    for char in needle:
        position = chars.find(char, position)
        if position < 0:
            return False
        position += 1
    return True


def fuzzy_match(needle: str, chars: str, bonuses: list[int]) -> tuple[int, list[int]] | None:
    """The best alignment of ``needle`` in order within ``chars`` (nucleo's optimal match).

    The caller has checked that ``needle`` is a subsequence of ``chars``.
    """
    # No alignment starts before the first occurrence of the first character or ends after
    # the last occurrence of the last one: score that window only.
    start = chars.find(needle[0])
    stop = chars.rfind(needle[-1]) + 1
    if start > 0 or stop < len(chars):
        found = (
            fuzzy_match(needle, chars[start:stop], bonuses[start:stop]) if start < stop else None
        )
        if found is None:
            return None
        return found[0], [start + index for index in found[1]]
    width = len(chars)
    first = needle[0]
    # score[j]: best score with the current needle character matched at j; run[j]: the bonus
    # a following consecutive character inherits; came_from[i][j]: the previous match (for
    # the indices), j - 1 for a consecutive run.
    score: list[int | None] = [None] * width
    run = [0] * width
    for j in range(width):
        if chars[j] == first:
            score[j] = SCORE_MATCH + bonuses[j] * BONUS_FIRST_CHAR_MULTIPLIER
            run[j] = bonuses[j]
    came_from: list[list[int]] = []
    for i in range(1, len(needle)):
        char = needle[i]
        row: list[int | None] = [None] * width
        row_run = [0] * width
        origin = [-1] * width
        gap_best: int | None = None
        gap_at = -1
        for j in range(i, width):
            if j >= 2:
                # Scores are unsigned in nucleo: a long gap costs down to zero, not below.
                if gap_best is not None:
                    gap_best = max(gap_best - PENALTY_GAP_EXTENSION, 0)
                candidate = score[j - 2]
                if candidate is not None:
                    candidate = max(candidate - PENALTY_GAP_START, 0)
                    if gap_best is None or candidate > gap_best:
                        gap_best, gap_at = candidate, j - 2
            if chars[j] != char:
                continue
            bonus = bonuses[j]
            best: int | None = None
            best_run = bonus
            previous = score[j - 1]
            if previous is not None:
                carried = max(run[j - 1], BONUS_CONSECUTIVE)
                if bonus >= BONUS_BOUNDARY and bonus > carried:
                    carried = bonus
                best = previous + SCORE_MATCH + max(carried, bonus)
                best_run = carried
                origin[j] = j - 1
            if gap_best is not None:
                through_gap = gap_best + SCORE_MATCH + bonus
                if best is None or through_gap > best:
                    best, best_run, origin[j] = through_gap, bonus, gap_at
            row[j] = best
            row_run[j] = best_run
        score, run = row, row_run
        came_from.append(origin)
    # Of equally good ends nucleo keeps the last, except for a one-character needle (its
    # own fast path), where it keeps the first.
    last_of_equals = len(needle) > 1
    end = -1
    top = -1
    for j, value in enumerate(score):
        if value is not None and (value > top or (last_of_equals and value == top)):
            top, end = value, j
    if end < 0:
        return None
    indices = [end]
    for origin in reversed(came_from):
        end = origin[end]
        indices.append(end)
    indices.reverse()
    return top, indices


def run_score(bonuses: list[int], start: int, length: int) -> int:
    """The score of ``length`` consecutive matched characters from ``start``."""
    first = bonuses[start]
    total = SCORE_MATCH + first * BONUS_FIRST_CHAR_MULTIPLIER
    carried = first
    for j in range(start + 1, start + length):
        bonus = bonuses[j]
        carried = max(carried, BONUS_CONSECUTIVE)
        if bonus >= BONUS_BOUNDARY and bonus > carried:
            carried = bonus
        total += SCORE_MATCH + max(carried, bonus)
    return total


def contiguous_match(
    needle: str, chars: str, bonuses: list[int], kind: Kind
) -> tuple[int, list[int]] | None:
    """Substring, prefix, suffix and exact atoms: the best-scoring occurrence."""
    length = len(needle)
    if kind is Kind.PREFIX:
        starts = [0] if chars.startswith(needle) else []
    elif kind is Kind.POSTFIX:
        starts = [len(chars) - length] if chars.endswith(needle) else []
    elif kind is Kind.EXACT:
        starts = [0] if chars == needle else []
    else:
        starts = []
        position = chars.find(needle)
        while position >= 0:
            starts.append(position)
            position = chars.find(needle, position + 1)
    best: tuple[int, list[int]] | None = None
    for start in starts:
        value = run_score(bonuses, start, length)
        if best is None or value > best[0]:
            best = (value, list(range(start, start + length)))
    return best


def match_atoms(atoms: list[Atom], haystack: Haystack) -> tuple[int, list[int]] | None:
    """All atoms against one haystack: summed scores and the sorted union of indices."""
    total = 0
    indices: set[int] = set()
    for atom in atoms:
        found = atom.match(haystack)
        if atom.negative:
            if found is not None:
                return None
            continue
        if found is None:
            return None
        total += found[0]
        indices.update(found[1])
    return total, sorted(indices)
