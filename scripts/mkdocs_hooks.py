"""MkDocs hooks for the docs build (``hooks:`` in ``mkdocs.yml``).

Pages under ``docs/`` may link to files elsewhere in the repository
(``[README](../plugins/codex-plugin-websocket/README.md)``): those links work when the
Markdown is read on a forge, but the site has no page for them. This hook checks that each such
target exists in the repository (a missing one is a warning, so ``--strict`` fails) and renders
the link as its text followed by the repository path, instead of a dead link.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.codex_core")

REPO = Path(__file__).resolve().parents[1]
# [text](target) or [text](target#anchor), not images, not absolute URLs.
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>(?![a-z][a-z0-9+.-]*:|#)[^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    source = (docs_dir / page.file.src_path).parent

    def rewrite(match: re.Match[str]) -> str:
        path = match["target"].split("#", 1)[0]
        if not path:
            return match[0]
        target = (source / path).resolve()
        if target.is_relative_to(docs_dir):
            return match[0]  # a page of the site: MkDocs validates it
        if not target.is_relative_to(REPO) or not target.exists():
            log.warning(
                "Doc file '%s' links to '%s', which is not in the repository",
                page.file.src_path,
                match["target"],
            )
            return match[0]
        return f"{match['text']} (`{target.relative_to(REPO).as_posix()}` in the repository)"

    # Leave code blocks alone: links there are examples, not links.
    pieces: list[str] = []
    last = 0
    for fence in _FENCE.finditer(markdown):
        pieces.append(_LINK.sub(rewrite, markdown[last : fence.start()]))
        pieces.append(fence[0])
        last = fence.end()
    pieces.append(_LINK.sub(rewrite, markdown[last:]))
    return "".join(pieces)
