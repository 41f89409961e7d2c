"""The reviewer's answer read as the reference's ``ReviewOutputEvent``, and what the thread's
model reads about the review afterwards.

The rubric asks the model for one JSON object. As the reference, the whole answer is read as
that object, else the text from its first ``{`` to its last ``}``, else the answer is kept as
a plain-text explanation; a finding that does not fit the schema makes the object not fit. How
it reads as text is ``codex_core.threads.review_format`` (the rollout shows it the same way).
Every field of a finding is required, its ``priority`` too: a finding with a null priority
(which the rubric allows) makes the reference keep the whole answer as text, and so here.
"""

from __future__ import annotations

import json
from typing import Any

from codex_core.threads.review_format import findings_block

#: The assistant message after a review that did not finish.
INTERRUPTED = "Review was interrupted. Please re-run /review and wait for it to complete."
#: The user message the thread's model reads after a review (the reference's template).
EXIT_SUCCESS = (
    "<user_action>\n"
    "  <context>User initiated a review task. Here's the full review output from reviewer "
    "model. User may select one or more comments to resolve.</context>\n"
    "  <action>review</action>\n"
    "  <results>\n"
    "  {results}\n"
    "  </results>\n"
    "  </user_action>\n"
)
EXIT_INTERRUPTED = (
    "<user_action>\n"
    "  <context>User initiated a review task, but was interrupted. If user asks about this, "
    "tell them to re-initiate a review with `/review` and wait for it to complete.</context>\n"
    "  <action>review</action>\n"
    "  <results>\n"
    "  None.\n"
    "  </results>\n"
    "</user_action>\n\n"
)


class NotReviewOutput(ValueError):
    """JSON that is not a ``ReviewOutputEvent``."""


def parse(text: str) -> dict[str, Any]:
    """The reviewer's final message as a ``ReviewOutputEvent`` (see the module docstring)."""
    candidates = [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return _review(json.loads(candidate))
        except ValueError:  # (json's errors and NotReviewOutput)
            continue
    return {"findings": [], "overall_correctness": "", "overall_explanation": text,
            "overall_confidence_score": 0.0}  # fmt: skip


def _review(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NotReviewOutput("not an object")
    findings = value.get("findings")
    if not isinstance(findings, list):
        raise NotReviewOutput("findings")
    return {
        "findings": [_finding(entry) for entry in findings],
        "overall_correctness": _require(value, "overall_correctness", str),
        "overall_explanation": _require(value, "overall_explanation", str),
        "overall_confidence_score": float(_require(value, "overall_confidence_score", _NUMBER)),
    }


_NUMBER = (int, float)


def _finding(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NotReviewOutput("finding")
    # Required, as the reference reads it (although the rubric allows null).
    priority = _require(value, "priority", int)
    where = _require(value, "code_location", dict)
    lines = _require(where, "line_range", dict)
    return {
        "title": _require(value, "title", str),
        "body": _require(value, "body", str),
        "confidence_score": float(_require(value, "confidence_score", _NUMBER)),
        "priority": priority,
        "code_location": {
            "absolute_file_path": _require(where, "absolute_file_path", str),
            "line_range": {"start": _line(lines, "start"), "end": _line(lines, "end")},
        },
    }


def _line(value: dict[str, Any], key: str) -> int:
    number = value.get(key)
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise NotReviewOutput(key)
    return number


def _require(value: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    found = value.get(key)
    if not isinstance(found, kind) or isinstance(found, bool):
        raise NotReviewOutput(key)
    return found


def exit_message(event: dict[str, Any] | None) -> str:
    """What the thread's model reads about the review from then on (a user message)."""
    if event is None:
        return EXIT_INTERRUPTED
    results = str(event["overall_explanation"]).strip()
    if event["findings"]:
        results += "\n" + findings_block(event["findings"])
    return EXIT_SUCCESS.replace("{results}", results)
