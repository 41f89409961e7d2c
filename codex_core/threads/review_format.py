"""How a code review's findings read as text (``exitedReviewMode`` items).

A review's outcome is the reference's ``ReviewOutputEvent`` (findings with a title, a body, a
confidence, a priority and a code location; an overall verdict and explanation). The review
plugin produces it and the rollout keeps it; both the running turn and a thread read back from
disk (ours or the reference's) show it through ``render``, the reference's layout: the
explanation, then ``Review comment:`` (one finding) or ``Full review comments:`` and a bullet
per finding with its location and its body indented.
"""

from __future__ import annotations

from typing import Any

#: What the thread shows when the reviewer produced nothing usable.
FALLBACK = "Reviewer failed to output a response."


def body_lines(text: str) -> list[str]:
    """Lines as the reference splits them: at ``\\n`` only (a ``\\r`` before it dropped), no
    empty last line for a trailing newline (``str.splitlines`` splits at more characters)."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def location(finding: dict[str, Any]) -> str:
    where = finding.get("code_location") or {}
    lines = where.get("line_range") or {}
    return f"{where.get('absolute_file_path')}:{lines.get('start')}-{lines.get('end')}"


def findings_block(findings: list[dict[str, Any]]) -> str:
    """The findings as the reference lists them; starts with a newline."""
    lines = ["", "Full review comments:" if len(findings) > 1 else "Review comment:"]
    for finding in findings:
        lines.append("")
        lines.append(f"- {finding.get('title')} \u2014 {location(finding)}")
        lines.extend(f"  {line}" for line in body_lines(str(finding.get("body") or "")))
    return "\n".join(lines)


def render(event: dict[str, Any] | None) -> str:
    """A review's text: explanation and findings, or ``FALLBACK`` when it has neither (or the
    review did not finish)."""
    if event is None:
        return FALLBACK
    sections = []
    explanation = str(event.get("overall_explanation") or "").strip()
    if explanation:
        sections.append(explanation)
    findings = [f for f in event.get("findings") or [] if isinstance(f, dict)]
    if findings:
        sections.append(findings_block(findings).strip())
    return "\n\n".join(sections) or FALLBACK
