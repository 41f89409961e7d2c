"""The reviewer's answer: its ``ReviewOutputEvent`` JSON, and the text the thread shows of it.

The rubric asks the model for one JSON object (findings with a title, a body, a confidence, a
priority and a code location, then an overall verdict). As the reference, the whole answer is
read as that object, else the text from its first ``{`` to its last ``}``, else the answer is
kept as a plain-text explanation; a finding that does not fit the schema makes the object not
fit. The rendering (explanation, then ``Review comment:`` / ``Full review comments:`` and one
bullet per finding) is the reference's, so clients show the same review from either server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: What the thread shows when the reviewer produced nothing usable.
FALLBACK = "Reviewer failed to output a response."
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
    "</user_action>\n"
)


class NotReviewOutput(ValueError):
    """JSON that is not a ``ReviewOutputEvent``."""


@dataclass(frozen=True, slots=True)
class Finding:
    title: str
    body: str
    path: str
    start: int
    end: int

    @property
    def location(self) -> str:
        return f"{self.path}:{self.start}-{self.end}"


@dataclass(frozen=True, slots=True)
class ReviewOutput:
    explanation: str = ""
    findings: list[Finding] = field(default_factory=list)


def parse(text: str) -> ReviewOutput:
    """The reviewer's final message as a review (see the module docstring)."""
    candidates = [text]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return _review(json.loads(candidate))
        except (ValueError, TypeError):  # (json's errors and NotReviewOutput are ValueErrors)
            continue
    return ReviewOutput(explanation=text)


def _review(value: Any) -> ReviewOutput:
    if not isinstance(value, dict):
        raise NotReviewOutput("not an object")
    findings = value.get("findings")
    if not isinstance(findings, list):
        raise NotReviewOutput("findings")
    _require(value, "overall_correctness", str)
    _require(value, "overall_confidence_score", (int, float))
    return ReviewOutput(
        explanation=_require(value, "overall_explanation", str),
        findings=[_finding(entry) for entry in findings],
    )


def _finding(value: Any) -> Finding:
    if not isinstance(value, dict):
        raise NotReviewOutput("finding")
    _require(value, "confidence_score", (int, float))
    priority = value.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise NotReviewOutput("priority")
    location = _require(value, "code_location", dict)
    lines = _require(location, "line_range", dict)
    return Finding(
        title=_require(value, "title", str),
        body=_require(value, "body", str),
        path=_require(location, "absolute_file_path", str),
        start=_line(lines, "start"),
        end=_line(lines, "end"),
    )


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


def findings_block(findings: list[Finding]) -> str:
    """The findings as the reference lists them: a header, then a bullet per finding with its
    location and its body indented; starts with a newline."""
    lines = ["", "Full review comments:" if len(findings) > 1 else "Review comment:"]
    for finding in findings:
        lines.append("")
        lines.append(f"- {finding.title} \u2014 {finding.location}")
        lines.extend(f"  {line}" for line in body_lines(finding.body))
    return "\n".join(lines)


def body_lines(text: str) -> list[str]:
    """Lines as the reference splits them: at ``\\n`` only (a ``\\r`` before it dropped), no
    empty last line for a trailing newline (``str.splitlines`` splits at more characters)."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def render(output: ReviewOutput | None) -> str:
    """The ``exitedReviewMode`` item's text (and, after a finished review, the agent message)."""
    if output is None:
        return FALLBACK
    sections = []
    if output.explanation.strip():
        sections.append(output.explanation.strip())
    if output.findings:
        sections.append(findings_block(output.findings).strip())
    return "\n\n".join(sections) or FALLBACK


def exit_message(output: ReviewOutput | None) -> str:
    """What the thread's model reads about the review from then on (a user message)."""
    if output is None:
        return EXIT_INTERRUPTED
    results = output.explanation.strip()
    if output.findings:
        results += "\n" + findings_block(output.findings)
    return EXIT_SUCCESS.replace("{results}", results)
