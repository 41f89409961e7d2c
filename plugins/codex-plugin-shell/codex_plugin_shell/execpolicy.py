"""Exec policy rules: which commands run without asking, from ``$CODEX_HOME/rules/*.rules``.

The reference's format, a Starlark subset: one ``prefix_rule(pattern=[...], decision=...)`` call
per rule, where a pattern word may also be a list of alternatives and ``decision`` is ``allow``
(run without asking), ``prompt`` (ask) or ``forbidden`` (refuse). Of the rules matching a
command the strictest wins. Accepting an approval with ``acceptWithExecpolicyAmendment`` appends
an ``allow`` rule to ``default.rules``, so that prefix runs without asking from then on, here and
in the reference alike. A line we cannot read is logged and skipped, never fatal.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DECISIONS = ("allow", "prompt", "forbidden")  # from the most lenient to the strictest
DEFAULT_RULES = "default.rules"


@dataclass(frozen=True, slots=True)
class Rule:
    #: Per word of the command's prefix, the words allowed there.
    pattern: tuple[frozenset[str], ...]
    decision: str

    def matches(self, words: Sequence[str]) -> bool:
        return len(words) >= len(self.pattern) and all(
            word in allowed for word, allowed in zip(words, self.pattern, strict=False)
        )


def load_rules(codex_home: Path) -> list[Rule]:
    rules: list[Rule] = []
    for path in sorted((codex_home / "rules").glob("*.rules")):
        try:
            rules.extend(parse_rules(path.read_text(encoding="utf-8"), str(path)))
        except OSError as exc:
            log.warning("cannot read exec policy rules %s: %s", path, exc)
    return rules


def parse_rules(text: str, source: str = "<rules>") -> list[Rule]:
    try:
        tree = ast.parse(text, filename=source)
    except SyntaxError as exc:
        log.warning("exec policy rules %s: %s (file skipped)", source, exc)
        return []
    rules = []
    for statement in tree.body:
        rule = _rule(statement)
        if rule is None:
            log.warning("exec policy rules %s:%d: not a prefix_rule, skipped", source,
                        statement.lineno)  # fmt: skip
        else:
            rules.append(rule)
    return rules


def _rule(statement: ast.stmt) -> Rule | None:
    call = statement.value if isinstance(statement, ast.Expr) else None
    if not isinstance(call, ast.Call) or getattr(call.func, "id", None) != "prefix_rule":
        return None
    try:
        arguments = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except ValueError:
        return None
    pattern, decision = arguments.get("pattern"), arguments.get("decision", "allow")
    if not isinstance(pattern, list) or not pattern or decision not in DECISIONS:
        return None
    words = [frozenset(word if isinstance(word, list) else [word]) for word in pattern]
    if not all(word and all(isinstance(w, str) for w in word) for word in words):
        return None
    return Rule(tuple(words), decision)


def decide(rules: Iterable[Rule], commands: Sequence[Sequence[str]]) -> str | None:
    """The rules' say on a command line made of ``commands`` (its simple commands).

    ``allow`` only when every part is allowed; ``forbidden`` or ``prompt`` when any part is;
    ``None`` when the rules say nothing (the approval policy decides).
    """
    rules = list(rules)
    verdicts = []
    for words in commands:
        matching = [rule.decision for rule in rules if rule.matches(words)]
        verdicts.append(max(matching, key=DECISIONS.index) if matching else None)
    if not verdicts:
        return None
    if "forbidden" in verdicts:
        return "forbidden"
    if "prompt" in verdicts:
        return "prompt"
    return "allow" if all(verdict == "allow" for verdict in verdicts) else None


def append_allow(codex_home: Path, pattern: Sequence[str]) -> None:
    """Remember an approved prefix in ``default.rules`` (one line, appended and flushed)."""
    folder = codex_home / "rules"
    folder.mkdir(parents=True, exist_ok=True)
    words = ", ".join(json.dumps(word) for word in pattern)
    with (folder / DEFAULT_RULES).open("a", encoding="utf-8") as handle:
        handle.write(f'prefix_rule(pattern=[{words}], decision="allow")\n')
