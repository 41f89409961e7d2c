"""``fuzzyFileSearch``: one walk, one ranking, one answer.

A request naming a ``cancellationToken`` cancels the earlier request still running with that
token (any client's), which then answers with no files (the official server's behaviour:
an editor sends each keystroke's search under one token and only wants the latest).
"""

from __future__ import annotations

import threading
from typing import Any

from codex_plugin_file_search.ranking import Query, TopMatches
from codex_plugin_file_search.walk import walk


def search(query: str, roots: list[str], cancelled: threading.Event) -> list[dict[str, Any]]:
    """The best matches of ``query`` under ``roots``; none once ``cancelled`` is set."""
    if not roots or not query:
        return []
    top = TopMatches(Query(query))
    for batch in walk(roots, cancelled.is_set):
        top.add(batch)
    if cancelled.is_set():
        return []
    return top.results(roots)
