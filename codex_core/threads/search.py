"""``thread/search`` (experimental): the stored threads whose conversation mentions a term,
with a snippet around the first mention (what the TUI's ``@`` mentions show).

As the reference: the user's and the agent's messages are searched, case-insensitively, in
conversation order (not reasoning, tool output or the thread's name); threads are those
``thread/list`` would list (``archived``, ``sourceKinds``), in its order and with its
cursors. The snippet is the first matching message, cut to 49 characters before the match and
96 after it (``...`` marking a cut), with its whitespace collapsed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from codex_core.protocol.wire import to_wire
from codex_core.rpc import INVALID_REQUEST, RpcError
from codex_core.threads import rollout
from codex_core.threads.listing import INTERACTIVE_SOURCES
from codex_core.threads.store import ListedThread, ThreadQuery, ThreadStore

if TYPE_CHECKING:
    from codex_core.threads.methods import ThreadRegistry

#: The snippet's reach before the match and after its end, in characters (the reference's).
BEFORE, AFTER = 49, 96
_SPACE = re.compile(r"\s+")


def snippet(text: str, term: str) -> str | None:
    """The snippet of ``text`` around ``term`` (lower-cased), or ``None`` without a match.
    As the reference, the match is in the text as written (``a  b`` does not match ``a b``);
    the snippet has its whitespace collapsed."""
    at = text.lower().find(term)
    if at < 0:
        return None
    start, end = max(0, at - BEFORE), min(len(text), at + len(term) + AFTER)
    cut = _SPACE.sub(" ", text[start:end]).strip()
    return ("... " if start else "") + cut + (" ..." if end < len(text) else "")


def first_mention(turns: list[dict[str, Any]], term: str) -> str | None:
    """The snippet of the first user or agent message that mentions ``term``."""
    for turn in turns:
        for item in turn.get("items") or ():
            if item.get("type") == "userMessage":
                text = rollout.user_text(item)
            elif item.get("type") == "agentMessage":
                text = str(item.get("text") or "")
            else:
                continue
            found = snippet(text, term)
            if found is not None:
                return found
    return None


def thread_search(registry: ThreadRegistry, store: ThreadStore, params: Any) -> dict[str, Any]:
    """One page of matches: the threads ``thread/list`` would list, in its order, read whole
    one by one until the page is full. (The page size lives with the registry.)"""
    from codex_core.threads.methods import DEFAULT_PAGE_SIZE

    term = params.search_term.strip().lower()
    if not term:
        raise RpcError(INVALID_REQUEST, "thread/search requires a non-empty searchTerm")
    kinds = frozenset(getattr(kind, "value", kind) for kind in params.source_kinds or ())
    limit = max(1, params.limit if params.limit is not None else DEFAULT_PAGE_SIZE)
    sort_key = to_wire(params.sort_key) if params.sort_key is not None else "created_at"
    query = ThreadQuery(
        archived=bool(params.archived),
        sort_key=getattr(sort_key, "value", sort_key),
        ascending=to_wire(params.sort_direction) == "asc",
        cursor=params.cursor,
        source_kinds=kinds or INTERACTIVE_SOURCES,
    )
    data: list[dict[str, Any]] = []
    next_cursor: str | None = None
    backwards_cursor: str | None = None
    last: ListedThread | None = None
    for listed in store.list(query):
        stored = rollout.read_rollout(listed.stored.path, full=True)
        if stored is None:
            continue
        found = first_mention(stored.turns, term)
        if found is None:
            continue
        if last is not None and len(data) == limit:
            next_cursor = last.entry.next_cursor()
            break
        thread = registry.stored_thread(stored, listed.name)
        loaded = registry.threads.get(stored.id)
        if loaded is not None:
            thread["status"] = loaded.thread["status"]
            thread["environments"] = loaded.thread["environments"]
        if not data:
            backwards_cursor = listed.entry.backwards_cursor(stored)
        last = listed
        data.append({"thread": thread, "snippet": found})
    return {"data": data, "nextCursor": next_cursor, "backwardsCursor": backwards_cursor}
