"""Thread and turn methods: the ``threads`` plugin of the kernel.

Threads live in memory while loaded, with their settings and subscribers, and on disk as
rollouts (``codex_core.threads.rollout``) from their first turn on, as the official server
does: ``thread/list`` only lists threads that have a rollout, and ephemeral threads never
write one. Turns run in ``codex_core.threads.turns``. A thread's notifications go only to the
connections subscribed to it (``thread/start`` and ``thread/resume`` subscribe the caller;
``thread/unsubscribe`` and closing the connection unsubscribe it).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from codex_core import __version__
from codex_core.config import listing
from codex_core.config.listing import BUILTIN_PROVIDERS
from codex_core.config.loader import session_overrides, value_at
from codex_core.config.schema import config_sections
from codex_core.models.methods import default_model
from codex_core.protocol.wire import to_wire
from codex_core.rpc import (
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    RequestContext,
    RpcError,
    RpcMethod,
)
from codex_core.threads import (
    attachments,
    compaction,
    goals,
    inject,
    metadata,
    modes,
    pages,
    read_state,
    rollout,
    search,
    section_members,
    sections,
)
from codex_core.threads import settings as thread_settings
from codex_core.threads.ids import parse_thread_id, uuid7
from codex_core.threads.listing import INTERACTIVE_SOURCES, wire_source
from codex_core.threads.rollout import RolloutWriter, StoredThread
from codex_core.threads.settings import SANDBOXES, reviewer_name
from codex_core.threads.store import ListedThread, ThreadQuery, ThreadStore, thread_store
from codex_core.threads.turns import (
    DEFAULT_CONTEXT_WINDOW,
    Turn,
    empty_usage,
    usage_from_rollout,
)

if TYPE_CHECKING:
    from codex_core.config.loader import Config
    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection
    from codex_core.threads.command_hooks import HookHandler

log = logging.getLogger(__name__)

_ROLLOUT_SANDBOX = {"readOnly": "read-only", "workspaceWrite": "workspace-write",
                    "dangerFullAccess": "danger-full-access"}  # fmt: skip
DEFAULT_PAGE_SIZE = 25
Turns = list[dict[str, Any]]
#: The notice of ``thread/fork`` and ``thread/resume`` returning whole turns.
TURNS_HYDRATION_DEPRECATED = (
    "Full-history hydration is deprecated for paginated threads; use `excludeTurns: true`, then "
    "page with `thread/turns/list` and `thread/items/list`."
)
#: What the model reads in a fork where the source's turn was still running.
TURN_ABORTED_MARKER = (
    "<turn_aborted>\nThis conversation was copied while a turn was still running; that turn "
    "stopped here, and the tools or commands it had started may not have finished.\n"
    "</turn_aborted>"
)
HYDRATION_DEPRECATED = (
    "Full-history hydration is deprecated for paginated threads; omit `includeTurns` or set it "
    "to `false`, then page with `thread/turns/list` and `thread/items/list`."
)


class ThreadsConfig(BaseModel):
    """``[threads]`` in ``config.toml``."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    #: How long a thread with no subscriber and no running turn stays loaded.
    unload_idle_after_secs: float = Field(default=30 * 60, ge=0)


@dataclass(slots=True, eq=False)
class LoadedThread:
    thread: dict[str, Any]
    settings: dict[str, Any]
    subscribers: set[Connection] = field(default_factory=set)
    #: Whether the thread has a rollout on disk; like the official server, a thread is only
    #: written (and listed by ``thread/list``) once its first turn starts.
    materialized: bool = False
    writer: RolloutWriter | None = None
    #: Finished turns with all their items (``itemsView: full``).
    turns: list[dict[str, Any]] = field(default_factory=list)
    #: What the model sees: Responses API input items, oldest first.
    history: list[dict[str, Any]] = field(default_factory=list)
    token_total: dict[str, int] = field(default_factory=empty_usage)
    #: The model's last reported usage (or the estimate after a compaction): the context the
    #: next request starts with, which ``model_auto_compact_token_limit`` is checked against.
    last_usage: dict[str, int] | None = None
    #: ``model_auto_compact_token_limit`` (the request's ``config`` overrides, else the
    #: server's config), as read when the thread was started or loaded.
    auto_compact_limit: Any = None
    base_instructions: str | None = None
    active: Turn | None = None
    #: Client-provided tools (``dynamicTools`` on ``thread/start``), by name.
    dynamic_tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What the user approved with ``acceptForSession`` (commands, patch paths).
    session_approvals: set[str] = field(default_factory=set)
    #: An unload is scheduled (no subscribers, no turn): see ``ThreadRegistry.release``.
    unloading: bool = False
    #: ``{firstUnread, revision}`` (``codex_core.threads.read_state``), read on first need.
    read_state: dict[str, Any] | None = None
    #: ``SessionStart`` hooks still to run, with this ``source``, at the next turn's start.
    session_start: str | None = "startup"
    #: The thread's hooks that may run, read at that turn (``codex_core.threads.command_hooks``).
    hooks: list[HookHandler] = field(default_factory=list)
    #: The collaboration mode a client chose (``codex_core.threads.modes.chosen_mode``);
    #: None until one does (Default, without instructions).
    collaboration_mode: dict[str, Any] | None = None
    #: The mode instructions the model was last given: a turn sends them again on change.
    mode_instructions_sent: str | None = None
    #: ``summary`` and (deprecated) ``personality`` as ``thread/settings/update`` saved them:
    #: reported in ``ThreadSettings``, used for nothing else yet.
    reasoning_summary: str | None = None
    personality: str | None = None
    #: The ``config`` overrides of the request that created it (nested, as ``-c`` flags): a
    #: temporary structured thread of the TUI turns its tools off this way.
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.thread["id"])

    def setting(self, config: Config, key: str) -> Any:
        """A config value (a dotted key) as this thread sees it: its overrides, else the
        server's."""
        found, value = value_at(self.overrides, key.split("."))
        return value if found else config.get(key)


class ThreadRegistry:
    """The threads this server has loaded, by id, and the turns running in them."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.threads: dict[str, LoadedThread] = {}
        self.goals = goals.Goals(self)

    @property
    def home(self) -> Path:
        return self.kernel.codex_home

    @cached_property
    def store(self) -> ThreadStore:
        """Where threads persist (``codex_core.threads.store``): a plugin's, else the
        default; chosen on first use, so that no store is opened by a server that never
        touches a thread."""
        return thread_store(self.kernel)

    # ------------------------------------------------------------------ notifications

    def emit(self, loaded: LoadedThread, method: str, params: dict[str, Any]) -> None:
        """Send a thread's notification to its subscribers (and nobody else)."""
        for connection in list(loaded.subscribers):
            connection.notify(method, params)

    def set_status(self, loaded: LoadedThread, status: dict[str, Any]) -> None:
        loaded.thread["status"] = status
        self.emit(loaded, "thread/status/changed", {"threadId": loaded.id, "status": status})

    # ------------------------------------------------------------------ thread/start

    async def start(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        overrides, warning = self._request_config(params)
        loaded = self._create(ctx, params, {}, overrides)
        self._warn(ctx, loaded, warning)
        ctx.notify_after_reply("thread/started", {"thread": loaded.thread})
        self._loaded_after_reply(ctx, loaded)
        return {"thread": loaded.thread, **loaded.settings}

    def _request_config(self, params: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A request's ``config`` overrides, checked (see ``session_overrides``), and the
        warning for its unknown keys."""
        try:
            return session_overrides(params.config or {}, config_sections(self.kernel))
        except ValueError as exc:
            raise RpcError(INVALID_REQUEST, f"failed to load configuration: {exc}") from None

    @staticmethod
    def _warn(ctx: RequestContext, loaded: LoadedThread, warning: dict[str, Any] | None) -> None:
        """Unknown override keys: the caller hears it first, then the new thread's
        subscribers."""
        if warning is not None:
            ctx.connection.notify("configWarning", warning)
            ctx.notify_after_reply(
                "warning", {"threadId": loaded.id, "message": warning["summary"]}
            )

    def _create(
        self,
        ctx: RequestContext,
        params: Any,
        base: dict[str, Any],
        overrides: dict[str, Any] | None = None,
    ) -> LoadedThread:
        """A new loaded thread, subscribed by the caller: the request's settings, else
        ``base`` (a forked thread's), else the request's ``config`` overrides, else the
        config's. A relative ``cwd`` is taken from the server's working directory."""
        config = self.kernel.config

        def setting(key: str) -> Any:
            found, value = value_at(overrides or {}, key.split("."))
            return value if found else config.get(key)

        cwd = os.path.abspath(params.cwd) if params.cwd else base.get("cwd") or os.getcwd()
        model = params.model or base.get("model") or setting("model") or default_model()
        provider = (
            params.model_provider
            or base.get("modelProvider")
            or setting("model_provider")
            or "openai"
        )
        if provider != base.get("modelProvider"):  # a forked thread keeps its source's
            known = {**(config.get("model_providers") or {}),
                     **((overrides or {}).get("model_providers") or {})}  # fmt: skip
            if provider not in BUILTIN_PROVIDERS and provider not in known:
                raise RpcError(
                    INVALID_REQUEST,
                    f"failed to load configuration: Model provider `{provider}` not found",
                )
        explicit_sandbox = params.sandbox or setting("sandbox_mode")
        sandbox_mode = params.sandbox or base.get("sandbox") or setting("sandbox_mode")
        sandbox_mode = getattr(sandbox_mode, "value", sandbox_mode) or "read-only"
        approval = (
            params.approval_policy
            or base.get("approvalPolicy")
            or setting("approval_policy")
            or "on-request"
        )
        approval = to_wire(getattr(approval, "root", approval))
        approval = getattr(approval, "value", approval)
        now = int(time.time())
        thread_id = uuid7()
        path = rollout.rollout_path(self.home, thread_id, datetime.now(UTC))
        thread = {
            "id": thread_id,
            "environments": [
                {"environmentId": "local", "cwd": cwd, "runtimeWorkspaceRoots": [cwd]}
            ],
            "extra": None,
            "sessionId": thread_id,
            "forkedFromId": None,
            "attachedToThreadId": None,
            "parentThreadId": None,
            "preview": "",
            "ephemeral": bool(params.ephemeral),
            "section": None,
            "sectionEnteredAt": None,
            "projectId": None,
            "historyMode": "paginated",
            "modelProvider": provider,
            "model": model,
            "reasoningEffort": None,
            "createdAt": now,
            "updatedAt": now,
            "recencyAt": now,
            "status": {"type": "idle"},
            "path": None if params.ephemeral else str(path),
            "cwd": cwd,
            "cliVersion": __version__,
            "originator": ctx.connection.client_name,
            "source": "vscode",
            "canAcceptDirectInput": True,
            "threadSource": None,
            "agentNickname": None,
            "agentRole": None,
            "gitInfo": None,
            "name": None,
            "daybreakEnabled": None,
            "turns": [],
        }
        source = getattr(params, "thread_source", None)
        if source is not None:  # the client's classification (the TUI's side threads say so)
            thread["threadSource"] = to_wire(getattr(source, "root", source))
        settings = self._settings(model, provider, cwd, approval, sandbox_mode)
        if getattr(params, "environments", None) == []:
            # No environment for its turns, as the TUI's temporary structured threads ask.
            thread["environments"] = []
            settings["runtimeWorkspaceRoots"] = []
        if explicit_sandbox:  # a legacy sandbox mode, not a permission profile, chose it
            settings["activePermissionProfile"] = None
        reviewer = params.approvals_reviewer or base.get("approvalsReviewer")
        if reviewer is not None:
            settings["approvalsReviewer"] = reviewer_name(reviewer)
        loaded = self.threads[thread_id] = LoadedThread(thread, settings, {ctx.connection})
        loaded.overrides = overrides or {}
        loaded.base_instructions = (
            params.base_instructions or base.get("baseInstructions") or config.get("instructions")
        )
        loaded.dynamic_tools = dynamic_tools(getattr(params, "dynamic_tools", None))
        loaded.auto_compact_limit = setting("model_auto_compact_token_limit")
        if params.developer_instructions:
            loaded.history.append(
                {"type": "message", "role": "developer",
                 "content": [{"type": "input_text", "text": params.developer_instructions}]}
            )  # fmt: skip
        return loaded

    # ------------------------------------------------------------------ thread/fork

    async def fork(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        """A new thread with a copy of another's history (the running turn as interrupted)."""
        source_id = self.thread_id(params.thread_id)
        source = self.threads.get(source_id)
        path = self.store.find(source_id)
        if path is None:
            # Unknown, ephemeral, or started without a turn yet: no rollout to copy.
            raise RpcError(INVALID_REQUEST, f"no rollout found for thread id {source_id}")
        if rollout.ARCHIVED in path.parts:
            raise RpcError(
                INVALID_REQUEST,
                f"session {source_id} is archived. "
                f"Run `codex unarchive {source_id}` to unarchive it first.",
            )
        if params.ephemeral and not params.exclude_turns:
            # An ephemeral fork has no rollout to page its history from.
            raise RpcError(
                INVALID_REQUEST, "ephemeral paginated thread/fork requires `excludeTurns: true`"
            )
        running = source.active if source is not None else None
        running_id = running.id if running is not None and running.started_at else None
        if params.last_turn_id is not None and params.last_turn_id == running_id:
            raise RpcError(
                INVALID_REQUEST, f"lastTurnId '{running_id}' identifies an in-progress turn"
            )
        try:
            lines = rollout.fork_lines(
                path,
                through_turn=params.last_turn_id,
                running_turn=running_id,
                marker=TURN_ABORTED_MARKER,
            )
        except KeyError:
            raise RpcError(INVALID_REQUEST, f"turn not found: {params.last_turn_id}") from None
        copied = rollout.StoredThread(path=Path(), id=source_id)
        rollout.parse_lines(copied, lines, full=True)
        if source is not None:
            base = {**source.settings, "baseInstructions": source.base_instructions}
            base["sandbox"] = _ROLLOUT_SANDBOX.get(source.settings["sandbox"].get("type"))
        else:
            assert path is not None
            base = self._stored_settings(rollout.read_rollout(path, full=False))
        overrides, warning = self._request_config(params)
        loaded = self._create(ctx, params, base, overrides)
        self._warn(ctx, loaded, warning)
        thread = loaded.thread
        thread["forkedFromId"] = source_id
        thread["preview"] = copied.preview
        # The fork keeps its source's name (what the TUI shows after /fork and in /resume),
        # indexed under the fork's own id unless it is ephemeral, as the reference does.
        if source is not None:
            thread["name"] = source.thread["name"]
        else:
            thread["name"] = self.store.name(source_id)
        loaded.turns = copied.turns
        loaded.history = [*loaded.history, *copied.history]
        if copied.token_usage and isinstance(copied.token_usage.get("total_token_usage"), dict):
            loaded.token_total = usage_from_rollout(copied.token_usage["total_token_usage"])
        if copied.turns:  # settings from the source's turns: no profile named them
            loaded.settings["activePermissionProfile"] = None
        # The copied turns were read in the source: the fork starts with nothing unread (and
        # stays so across restarts, as the reference's /resume picker shows it).
        loaded.read_state = read_state.initial(loaded.id, None)
        if not thread["ephemeral"]:
            self.materialize(loaded, forked_from=source_id)
            assert loaded.writer is not None
            for line in lines:
                loaded.writer.append(str(line.get("type")), line.get("payload") or {})
            if thread["name"] is not None:
                self.store.set_name(thread["id"], thread["name"])
            self.store.set_read_state(loaded.id, loaded.read_state)
        reply = {"thread": {**thread, "turns": [] if params.exclude_turns else loaded.turns},
                 **loaded.settings}  # fmt: skip
        if not params.exclude_turns:
            ctx.notify_after_reply("deprecationNotice", {"summary": TURNS_HYDRATION_DEPRECATED,
                                                         "details": None})  # fmt: skip
            finished = [turn for turn in loaded.turns if turn["status"] != "interrupted"]
            if any(loaded.token_total.values()) and finished:
                ctx.notify_after_reply("thread/tokenUsage/updated", self._usage_update(
                    loaded, finished[-1]["id"]))  # fmt: skip
        ctx.notify_after_reply("thread/started", {"thread": thread})
        self._loaded_after_reply(ctx, loaded)
        return reply

    def _settings(
        self, model: str, provider: str, cwd: str, approval: Any, sandbox_mode: str
    ) -> dict[str, Any]:
        return {
            "model": model,
            "modelProvider": provider,
            "serviceTier": None,
            "disabledPluginIds": [],
            "cwd": cwd,
            "runtimeWorkspaceRoots": [cwd],
            "instructionSources": [],
            "approvalPolicy": approval,
            "approvalsReviewer": reviewer_name(self.kernel.config.settings.approvals_reviewer),
            "sandbox": SANDBOXES.get(sandbox_mode, SANDBOXES["read-only"]),
            "activePermissionProfile": {"id": f":{sandbox_mode}", "extends": None},
            "reasoningEffort": None,
            "multiAgentMode": "explicitRequestOnly",
        }

    # ------------------------------------------------------------------ lookups

    def thread_id(self, raw_id: str) -> str:
        try:
            return parse_thread_id(raw_id)
        except ValueError as exc:
            raise RpcError(INVALID_REQUEST, str(exc)) from None

    def get(self, raw_id: str) -> LoadedThread:
        thread_id = self.thread_id(raw_id)
        loaded = self.threads.get(thread_id)
        if loaded is None:
            raise RpcError(INVALID_REQUEST, f"thread not loaded: {thread_id}")
        return loaded

    def stored(self, thread_id: str, *, full: bool = True) -> StoredThread | None:
        return self.store.read(thread_id, full=full)

    def stored_thread(self, stored: StoredThread, name: str | None) -> dict[str, Any]:
        """The protocol ``Thread`` of a thread that is on disk but not loaded."""
        meta = stored.meta
        cwd = str(meta.get("cwd") or stored.context.get("cwd") or "")
        thread_id = stored.id
        return {
            "id": thread_id,
            "environments": None,  # as the reference: known once loaded
            "extra": None,
            "sessionId": meta.get("session_id") or thread_id,
            "forkedFromId": meta.get("forked_from_id"),
            "attachedToThreadId": None,
            "parentThreadId": meta.get("parent_thread_id"),
            "preview": stored.preview,
            "ephemeral": False,
            **section_members.section_fields(self.home, stored.id),
            "projectId": None,
            "historyMode": meta.get("history_mode") or "paginated",
            "modelProvider": meta.get("model_provider") or "openai",
            "model": stored.model,
            "reasoningEffort": None,
            "createdAt": stored.created_at,
            "updatedAt": stored.updated_at,
            "recencyAt": stored.updated_at,
            "status": {"type": "notLoaded"},
            "path": str(stored.path),
            "cwd": cwd,
            "cliVersion": meta.get("cli_version") or "",
            "originator": meta.get("originator") or "",
            "source": wire_source(meta.get("source")),
            "canAcceptDirectInput": None,
            "threadSource": meta.get("thread_source"),
            "agentNickname": meta.get("agent_nickname"),
            "agentRole": meta.get("agent_role"),
            "gitInfo": metadata.git_info(self.home, stored.id),
            "name": name,
            "daybreakEnabled": None,
            "turns": [],
        }

    # ------------------------------------------------------------------ thread/read, list

    async def read(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self.thread_id(params.thread_id)
        loaded = self.threads.get(thread_id)
        if params.include_turns and loaded is not None and not loaded.materialized:
            # No turns to hydrate yet: the reference's refusals, before any notice.
            if loaded.thread["ephemeral"]:
                raise RpcError(INVALID_REQUEST, "ephemeral threads do not support includeTurns")
            raise RpcError(METHOD_NOT_FOUND, "list_turns is not supported yet")
        if params.include_turns:
            ctx.connection.notify(
                "deprecationNotice", {"summary": HYDRATION_DEPRECATED, "details": None}
            )
        if loaded is not None:
            thread = dict(loaded.thread)
            if thread["ephemeral"]:
                # The reference reads an ephemeral thread from its live state alone, without
                # what a rollout would record: a reconnecting TUI's agent list sees no name,
                # preview or fork parent, no read state, and the time of the read as all
                # three of its times (so it lists such threads first).
                now = int(time.time())
                thread.update(name=None, preview="", forkedFromId=None,
                              createdAt=now, updatedAt=now, recencyAt=now)  # fmt: skip
                return {"thread": thread, "readState": None}
            if params.include_turns:
                thread["turns"] = list(loaded.turns)
            state = None
            # Known to the store (a rollout, a name, Git facts, a section): it has a state.
            if (
                loaded.materialized
                or thread["name"] is not None
                or thread["gitInfo"]
                or section_members.ever_moved(self.home, thread_id)
            ):
                state = self.read_state_of(loaded)
            else:
                # Nothing recorded of it yet (no rollout, no name): as for an ephemeral
                # thread, the reference gives the time of the read as its times.
                now = int(time.time())
                thread.update(createdAt=now, updatedAt=now, recencyAt=now)
            return {"thread": thread, "readState": state}
        if params.include_turns:
            stored = self.stored(thread_id, full=True)
        else:
            path = self.store.find(thread_id)
            stored = rollout.read_summary(path) if path is not None else None
        if stored is None:
            raise RpcError(INVALID_REQUEST, f"thread not loaded: {thread_id}")
        thread = self.stored_thread(stored, self.store.name(thread_id))
        if params.include_turns:
            thread["turns"] = stored.turns
        state = self.store.read_state(thread_id) or read_state.initial(thread_id, stored.first_turn)
        return {"thread": thread, "readState": state}

    # ------------------------------------------------------------------ read state

    def read_state_of(self, loaded: LoadedThread) -> dict[str, Any]:
        if loaded.read_state is None:
            first = loaded.turns[0]["id"] if loaded.turns else None
            saved = self.store.read_state(loaded.id)
            loaded.read_state = saved or read_state.initial(loaded.id, first)
        return loaded.read_state

    def set_read_state(self, loaded: LoadedThread, state: dict[str, Any]) -> None:
        """Keep, persist and announce a new read state (to clients of the experimental API,
        the only ones the reference tells)."""
        loaded.read_state = state
        self.store.set_read_state(loaded.id, state)
        params = {"threadId": loaded.id, "readState": state}
        for connection in list(loaded.subscribers):
            if connection.experimental_api:
                connection.notify("thread/readState/changed", params)

    def turn_answered(self, loaded: LoadedThread, turn_id: str) -> None:
        if loaded.materialized:
            self.set_read_state(loaded, read_state.answered(self.read_state_of(loaded), turn_id))

    async def read_state_update(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        loaded = self.get(params.thread_id)
        if not loaded.materialized:
            raise RpcError(INVALID_REQUEST, "thread read state unavailable")
        current = self.read_state_of(loaded)
        if params.expected_revision != current["revision"]:
            raise RpcError(INVALID_REQUEST, "read state changed",
                           {"reason": "readStateConflict", "readState": current})  # fmt: skip
        operation = to_wire(getattr(params.operation, "root", params.operation))["type"]
        state = read_state.marked(operation)
        self.set_read_state(loaded, state)
        return {"readState": state}

    async def list(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        cwds: frozenset[str] | None = None
        if params.cwd is not None:
            raw = to_wire(params.cwd)
            cwds = frozenset({raw} if isinstance(raw, str) else raw or ())
        kinds = frozenset(getattr(kind, "value", kind) for kind in params.source_kinds or ())
        sort_key = to_wire(params.sort_key) if params.sort_key is not None else "created_at"
        sort_key = getattr(sort_key, "value", sort_key)
        if sort_key == "section_position" and params.section_id is None:
            raise RpcError(INVALID_REQUEST, "section-position sorting requires a section filter")
        members: frozenset[str] | None = None
        if params.section_id is not None:  # an unknown section's page is empty, as in the ref
            memberships = section_members.load(self.home)
            members = frozenset(memberships.members.get(params.section_id, ()))
        providers = params.model_providers
        if providers is None:  # as the reference: the configured provider's threads; [] is all
            providers = [self.kernel.config.get("model_provider") or "openai"]
        query = ThreadQuery(
            archived=bool(params.archived),
            # Within a section, by creation (positions within a section are not ordered yet).
            sort_key="created_at" if sort_key == "section_position" else sort_key,
            ascending=to_wire(params.sort_direction) == "asc",
            cursor=params.cursor,
            model_providers=frozenset(providers),
            source_kinds=kinds or INTERACTIVE_SOURCES,
            cwds=cwds,
            search_term=(params.search_term or "").lower() or None,
        )
        limit = params.limit if params.limit else DEFAULT_PAGE_SIZE
        # In a worker thread: a store building its index (a first start on a long history)
        # must not hold up the other clients and the running turns.
        # (The store is chosen here, on the event loop, where plugins' hooks run.)
        return await anyio.to_thread.run_sync(self._list_page, self.store, query, limit, members)

    def _list_page(
        self,
        store: ThreadStore,
        query: ThreadQuery,
        limit: int,
        members: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        """One page of ``query``; with ``members``, only those threads (a section's)."""
        data: list[dict[str, Any]] = []
        states: dict[str, dict[str, Any]] = {}
        next_cursor: str | None = None
        backwards_cursor: str | None = None
        last: ListedThread | None = None
        for listed in store.list(query):
            stored = listed.stored
            if members is not None and stored.id not in members:
                continue
            if len(data) == limit:
                assert last is not None
                next_cursor = last.entry.next_cursor()
                break
            if last is None:
                backwards_cursor = listed.entry.backwards_cursor(stored)
            last = listed
            thread = self.stored_thread(stored, listed.name)
            loaded = self.threads.get(stored.id)
            if loaded is not None:
                thread["status"] = loaded.thread["status"]
                thread["environments"] = loaded.thread["environments"]
            data.append(thread)
            states[stored.id] = (
                self.read_state_of(loaded)
                if loaded is not None
                else store.read_state(stored.id) or read_state.initial(stored.id, stored.first_turn)
            )
        return {"data": data, "readStates": states, "nextCursor": next_cursor,
                "backwardsCursor": backwards_cursor}  # fmt: skip

    # ------------------------------------------------------------------ history pages

    def history(self, raw_id: str, method: str) -> tuple[str, Turns]:
        """A thread's turns, oldest first, the running one included (for paging)."""
        thread_id = self.thread_id(raw_id)
        loaded = self.threads.get(thread_id)
        if loaded is not None:
            if loaded.thread["ephemeral"]:
                if method == "thread/items/list":  # (the reference's answer, code and all)
                    raise RpcError(METHOD_NOT_FOUND, f"{method} is not supported yet")
                raise RpcError(INVALID_REQUEST, f"ephemeral threads do not support {method}")
            if not loaded.materialized:
                if method == "thread/items/list":
                    raise RpcError(METHOD_NOT_FOUND, f"{method} is not supported yet")
                raise RpcError(
                    INVALID_REQUEST,
                    f"thread {thread_id} is not materialized yet; {method} is unavailable "
                    "before first user message",
                )
            return thread_id, self._live_turns(loaded)
        stored = self.stored(thread_id, full=True)
        if stored is None:
            raise RpcError(INVALID_REQUEST, f"thread not loaded: {thread_id}")
        return thread_id, stored.turns

    @staticmethod
    def _live_turns(loaded: LoadedThread) -> Turns:
        """A loaded thread's turns, oldest first, the running one included."""
        turns = list(loaded.turns)
        if loaded.active is not None and loaded.active.started_at:
            turns.append(loaded.active.snapshot())
        return turns

    async def turns_list(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id, turns = self.history(params.thread_id, "thread/turns/list")
        return self._turns_page(thread_id, turns, params)

    @staticmethod
    def _turns_page(thread_id: str, turns: Turns, params: Any) -> dict[str, Any]:
        """A ``TurnsPage`` of ``turns`` (``thread/turns/list``, ``initialTurnsPage``)."""
        view = to_wire(params.items_view) if params.items_view is not None else "summary"
        page = pages.paginate(
            turns,
            pages.turn_key,
            thread_id=thread_id,
            scope=pages.TURNS,
            cursor=getattr(params, "cursor", None),
            limit=params.limit,
            descending=to_wire(params.sort_direction) != "asc",
        )
        data = [pages.turn_view(turn, view) for turn in page.data]
        return {**page.wire(), "data": data}

    async def items_list(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id, turns = self.history(params.thread_id, "thread/items/list")
        if params.turn_id is not None:
            turns = [turn for turn in turns if turn["id"] == params.turn_id]
        entries = pages.item_entries(turns)
        cursor = to_wire(params.cursor) if params.cursor is not None else None
        if isinstance(cursor, dict):  # an item anchor
            cursor = pages.anchor_cursor(entries, cursor, params.turn_id, thread_id)
        page = pages.paginate(
            entries,
            pages.entry_key,
            thread_id=thread_id,
            scope=pages.ITEMS,
            cursor=cursor,
            limit=params.limit,
            descending=to_wire(params.sort_direction) == "desc",
        )
        return page.wire()

    async def loaded_list(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        """Loaded thread ids in id (so creation) order, as the reference pages them: the
        cursor is the last id of the previous page, ``nextCursor`` is set while more remain."""
        ids = sorted(self.threads)
        if params.cursor is not None:
            try:
                after = parse_thread_id(params.cursor)
            except ValueError:
                raise RpcError(INVALID_REQUEST, f"invalid cursor: {params.cursor}") from None
            ids = [thread_id for thread_id in ids if thread_id > after]
        if params.limit is None:
            return {"data": ids, "nextCursor": None}
        page = ids[: max(1, params.limit)]
        more = len(ids) > len(page)
        return {"data": page, "nextCursor": page[-1] if more else None}

    # ------------------------------------------------------------------ thread/resume

    async def resume(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self.thread_id(params.thread_id)
        loaded = self.threads.get(thread_id)
        if loaded is not None and not loaded.materialized:
            # As the reference: a thread without a first turn, or an ephemeral one, has no
            # rollout to resume from, even while loaded.
            raise RpcError(INVALID_REQUEST, f"no rollout found for thread id {thread_id}")
        joining = loaded is not None
        if loaded is None:
            # As the reference, the request's settings apply to the session it loads; a
            # client joining a thread that is already loaded takes it as it is.
            stored = self.stored(thread_id, full=True)
            if stored is None:
                raise RpcError(INVALID_REQUEST, f"no rollout found for thread id {thread_id}")
            if stored.archived:
                raise RpcError(INVALID_REQUEST, f"thread {thread_id} is archived")
            self._check_provider(params.model_provider, stored)
            loaded = self._load(stored)
            self._override(loaded, params.model, params.cwd)
            self._loaded_after_reply(ctx, loaded)
        settings = loaded.settings
        if params.approvals_reviewer is not None:
            settings["approvalsReviewer"] = reviewer_name(params.approvals_reviewer)
        loaded.subscribers.add(ctx.connection)
        thread = dict(loaded.thread)
        exclude = bool(params.exclude_turns)
        if not exclude:
            thread["turns"] = list(loaded.turns)
            ctx.connection.notify(
                "deprecationNotice", {"summary": TURNS_HYDRATION_DEPRECATED, "details": None}
            )
        # As the reference: loading announces the status and the usage so far; a client
        # joining a loaded thread gets the usage only with the turns (a reconnecting TUI,
        # which excludes them, shows no token count for it).
        if not joining:
            ctx.connection.notify(
                "thread/status/changed", {"threadId": thread_id, "status": loaded.thread["status"]}
            )
        if any(loaded.token_total.values()) and loaded.turns and not (joining and exclude):
            usage = self._usage_update(loaded, loaded.turns[-1]["id"])
            ctx.notify_after_reply("thread/tokenUsage/updated", usage)
        self.goals.on_resume(ctx, loaded)
        return {"thread": thread, **settings, **self._resume_pages(loaded, params)}

    def _check_provider(self, provider: str | None, stored: StoredThread) -> None:
        """``thread/resume``'s ``modelProvider`` must be configured, and the thread's own."""
        if provider is None:
            return
        if not listing.provider_configured(self.kernel.config, provider):
            raise listing.provider_not_configured(provider)
        current = stored.meta.get("model_provider") or "openai"
        if provider != current:
            raise RpcError(
                INVALID_REQUEST,
                f"failed to load configuration: Cannot change this thread's model provider "
                f"from `{current}` to `{provider}` on resume.",
            )

    @staticmethod
    def _override(loaded: LoadedThread, model: str | None, cwd: str | None) -> None:
        """``thread/resume``'s settings for a thread it loads (a relative ``cwd`` taken from
        the server's working directory)."""
        settings, thread = loaded.settings, loaded.thread
        if model:
            settings["model"] = thread["model"] = model
        if cwd:
            cwd = os.path.abspath(cwd)
            settings["cwd"] = thread["cwd"] = cwd
            settings["runtimeWorkspaceRoots"] = [cwd]
            thread["environments"] = [
                {"environmentId": "local", "cwd": cwd, "runtimeWorkspaceRoots": [cwd]}
            ]

    def _resume_pages(self, loaded: LoadedThread, params: Any) -> dict[str, Any]:
        """What ``thread/resume`` adds for paging clients, as the reference: the effective
        collaboration mode, the ``initialTurnsPage`` asked for, and the cursors that reread
        the history backwards from its newest turn and item (``null`` when there is none)."""
        turns = self._live_turns(loaded)
        newest_turn = pages.paginate(
            turns,
            pages.turn_key,
            thread_id=loaded.id,
            scope=pages.TURNS,
            cursor=None,
            limit=1,
            descending=True,
        )
        newest_item = pages.paginate(pages.item_entries(turns), pages.entry_key,
                                     thread_id=loaded.id, scope=pages.ITEMS, cursor=None, limit=1,
                                     descending=True)  # fmt: skip
        initial = None
        request = params.initial_turns_page
        if request is not None:
            initial = self._turns_page(loaded.id, turns, request)
        return {
            "collaborationMode": thread_settings.collaboration_mode(loaded),
            "initialTurnsPage": initial,
            "turnsBackwardsCursor": newest_turn.backwards_cursor,
            "itemsBackwardsCursor": newest_item.backwards_cursor,
        }  # fmt: skip

    @staticmethod
    def _usage_update(loaded: LoadedThread, turn_id: str) -> dict[str, Any]:
        """``thread/tokenUsage/updated`` for a thread a client (re)joins."""
        return {"threadId": loaded.id, "turnId": turn_id,
                "tokenUsage": {"total": dict(loaded.token_total), "last": dict(loaded.token_total),
                               "modelContextWindow": DEFAULT_CONTEXT_WINDOW}}  # fmt: skip

    def _stored_settings(self, stored: StoredThread | None) -> dict[str, Any]:
        """A stored thread's model, cwd, approval policy and sandbox mode."""
        if stored is None:
            return {}
        context = stored.context
        sandbox = (context.get("sandbox_policy") or {}).get("type") or "read-only"
        return {
            "model": stored.model or self.kernel.config.get("model") or default_model(),
            "modelProvider": stored.meta.get("model_provider") or "openai",
            "cwd": str(stored.meta.get("cwd") or context.get("cwd") or ""),
            "approvalPolicy": context.get("approval_policy") or "on-request",
            "sandbox": _ROLLOUT_SANDBOX.get(sandbox, sandbox),
        }

    def _load(self, stored: StoredThread) -> LoadedThread:
        thread = self.stored_thread(stored, self.store.name(stored.id))
        thread["status"] = {"type": "idle"}
        thread["canAcceptDirectInput"] = True
        cwd = thread["cwd"]
        thread["environments"] = [
            {"environmentId": "local", "cwd": cwd, "runtimeWorkspaceRoots": [cwd]}
        ]
        base = self._stored_settings(stored)
        thread["model"] = model = base["model"]
        approval, sandbox = base["approvalPolicy"], base["sandbox"]
        settings = self._settings(model, thread["modelProvider"], thread["cwd"], approval, sandbox)
        loaded = LoadedThread(thread, settings, materialized=True, session_start="resume")
        self._restore_mode(loaded, stored.context)
        loaded.auto_compact_limit = self.kernel.config.get("model_auto_compact_token_limit")
        loaded.writer = self.store.writer(stored.id, stored.path, ordinal=stored.lines)
        loaded.turns = stored.turns
        loaded.history = stored.history
        if stored.token_usage and isinstance(stored.token_usage.get("total_token_usage"), dict):
            loaded.token_total = usage_from_rollout(stored.token_usage["total_token_usage"])
        if stored.token_usage and isinstance(stored.token_usage.get("last_token_usage"), dict):
            loaded.last_usage = usage_from_rollout(stored.token_usage["last_token_usage"])
        self.threads[stored.id] = loaded
        return loaded

    @staticmethod
    def _restore_mode(loaded: LoadedThread, context: dict[str, Any]) -> None:
        """The reasoning effort and collaboration mode of a stored thread's last turn. The
        mode's instructions are not in the history read back (developer messages are
        skipped), so the next turn gives them to the model again."""
        effort = context.get("effort")
        if isinstance(effort, str):
            loaded.settings["reasoningEffort"] = loaded.thread["reasoningEffort"] = effort
        mode = context.get("collaboration_mode")
        if not isinstance(mode, dict) or not isinstance(mode.get("settings"), dict):
            return
        if mode["settings"].get("developer_instructions") is not None:
            loaded.collaboration_mode = modes.chosen_mode(mode)

    # ------------------------------------------------------------------ settings, goals

    async def settings_update(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        return await thread_settings.update(self, ctx, params)

    async def goal_get(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        return await self.goals.get(ctx, params)

    async def goal_set(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        return await self.goals.set(ctx, params)

    async def goal_clear(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        return await self.goals.clear(ctx, params)

    # ------------------------------------------------------------------ archive, names

    async def archive(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self.thread_id(params.thread_id)
        loaded = self.threads.get(thread_id)
        if loaded is not None and not loaded.materialized:
            # A thread without a turn yet is written out (its session meta) to be archived,
            # as the reference does, so that it can be listed and unarchived like any other.
            self.materialize(loaded)
        path = self.store.find(thread_id)
        if path is None or rollout.ARCHIVED in path.parts:
            raise RpcError(INVALID_REQUEST, f"no rollout found for thread id {thread_id}")
        audience = await self._unload_for_good(ctx, loaded)
        self.store.archive(thread_id)
        self._after_reply(ctx, audience, "thread/archived", {"threadId": thread_id})
        return {}

    async def _unload_for_good(
        self, ctx: RequestContext, loaded: LoadedThread | None
    ) -> set[Connection]:
        """Stop the thread's turn and unload it, telling its subscribers (archive, delete);
        returns who is to hear what became of it: the caller and those subscribers."""
        audience: set[Connection] = {ctx.connection}
        if loaded is not None:
            audience |= loaded.subscribers
            await self.interrupt_and_wait(loaded)
            await self.kernel.run_hook("codex_thread_unloading", thread_id=loaded.id)
            self.set_status(loaded, {"type": "notLoaded"})
            self._drop(loaded)
        return audience

    async def unarchive(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self.thread_id(params.thread_id)
        path = self.store.find(thread_id)
        if path is None or rollout.ARCHIVED not in path.parts:
            raise RpcError(INVALID_REQUEST, f"no archived rollout found for thread id {thread_id}")
        stored = rollout.read_rollout(self.store.unarchive(thread_id), full=False)
        if stored is None:
            raise RpcError(INVALID_REQUEST, f"rollout of thread {thread_id} is unreadable")
        thread = self.stored_thread(stored, self.store.name(thread_id))
        ctx.notify_after_reply("thread/unarchived", {"threadId": thread_id})
        return {"thread": thread}

    async def name_set(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        name = params.name.strip()
        if not name:  # checked first, as the reference does
            raise RpcError(INVALID_REQUEST, "thread name must not be empty")
        thread_id = self.thread_id(params.thread_id)
        loaded = self.threads.get(thread_id)
        if loaded is None and self.store.find(thread_id) is None:
            raise RpcError(INVALID_REQUEST, f"no rollout found for thread id {thread_id}")
        if loaded is not None and loaded.thread["ephemeral"]:
            raise RpcError(
                INVALID_REQUEST, f"ephemeral thread does not support metadata updates: {thread_id}"
            )
        audience: set[Connection] = {ctx.connection}
        if loaded is not None:
            loaded.thread["name"] = name
            audience |= loaded.subscribers
            self.store.set_name(thread_id, name)
        else:
            self.store.set_name(thread_id, name)
        self._after_reply(
            ctx, audience, "thread/name/updated", {"threadId": thread_id, "threadName": name}
        )
        return {}

    async def search(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        """``thread/search``: see ``codex_core.threads.search``. (Reading every rollout is
        file work: it runs in a worker thread, off the event loop.)"""
        return await anyio.to_thread.run_sync(search.thread_search, self, self.store, params)

    async def inject_items(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        """Append raw Responses API items to what the thread's model reads (``/side`` of the
        TUI); as the reference, this writes the thread's rollout if it had none yet, and a
        model turn in progress reads them once its current response is done and goes on."""
        thread_id = self.thread_id(params.thread_id)
        loaded = self.threads.get(thread_id)
        if loaded is None:
            raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
        items = inject.response_items(params.items)
        turn = loaded.active
        if turn is not None and turn.user_item is not None and turn.accepts_input:
            turn.injected.extend(items)  # after the response being read, then sampled again
            return {}
        self.materialize(loaded)
        for item in items:
            loaded.history.append(item)
            if loaded.writer is not None:
                loaded.writer.append("response_item", item)
        return {}

    async def unsubscribe(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self.thread_id(params.thread_id)
        loaded = self.threads.get(thread_id)
        if loaded is None:
            return {"status": "notLoaded"}
        if ctx.connection not in loaded.subscribers:
            return {"status": "notSubscribed"}
        loaded.subscribers.discard(ctx.connection)
        self.release(loaded)
        return {"status": "unsubscribed"}

    async def delete(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self.thread_id(params.thread_id)
        loaded = self.threads.get(thread_id)
        path = self.store.find(thread_id)
        if path is None and (loaded is None or loaded.materialized):
            raise RpcError(INVALID_REQUEST, f"no rollout found for thread id {thread_id}")
        audience = await self._unload_for_good(ctx, loaded)
        if path is not None:
            self.store.delete(thread_id)
        self._after_reply(ctx, audience, "thread/deleted", {"threadId": thread_id})
        return {}

    def _loaded_after_reply(self, ctx: RequestContext, loaded: LoadedThread) -> None:
        """``codex_thread_loaded`` once the reply (and what precedes it) is sent; not when the
        request failed after all (after-reply callbacks follow an error reply too)."""

        def tell() -> None:
            if self.threads.get(loaded.id) is not loaded:
                return
            self.kernel.plugins.notify(
                "codex_thread_loaded", kernel=self.kernel, thread_id=loaded.id
            )

        ctx.after_reply.append(tell)

    def _after_reply(
        self, ctx: RequestContext, audience: set[Connection], method: str, params: dict[str, Any]
    ) -> None:
        def send() -> None:
            for connection in audience:
                connection.notify(method, params)

        ctx.after_reply.append(send)

    # ------------------------------------------------------------------ turns

    async def turn_start(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        loaded = self.get(params.thread_id)
        compaction.refuse_input(loaded.active, steer=False)
        if loaded.active is not None:
            raise RpcError(INVALID_REQUEST, f"a turn is already running: {loaded.active.id}")
        content = user_input(params.input)
        # Per-turn overrides persist for the thread's later turns.
        thread_settings.apply(self, loaded, params)
        turn = Turn(
            registry=self,
            loaded=loaded,
            id=uuid7(),
            user_item=user_message_item(content, params.client_user_message_id),
            client_name=ctx.connection.client_name,
            client_version=ctx.connection.client_version,
            output_schema=params.output_schema,
        )
        loaded.active = turn
        if not loaded.thread["preview"]:
            loaded.thread["preview"] = rollout.user_text({"content": content})
        ctx.after_reply.append(lambda: self.launch(loaded, turn))
        return {"turn": turn.wire(started=False)}

    async def turn_steer(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        loaded = self.get(params.thread_id)
        if not params.input:
            raise RpcError(INVALID_REQUEST, "input must not be empty")
        turn = loaded.active
        if turn is None or not turn.accepts_input:
            raise RpcError(INVALID_REQUEST, "no active turn to steer")
        if turn.id != params.expected_turn_id:  # (a review's own id, not its reviewer's)
            raise RpcError(
                INVALID_REQUEST,
                f"expected active turn id `{params.expected_turn_id}` but found `{turn.id}`",
            )
        compaction.refuse_input(turn, steer=True)
        turn.steer(user_message_item(user_input(params.input), params.client_user_message_id))
        return {"turnId": turn.id}

    def run_beside_model(
        self, ctx: RequestContext, raw_id: str, body: Callable[[Turn], Coroutine[Any, Any, None]]
    ) -> None:
        """Run ``body`` in the thread's running turn, or as a turn of its own without the model.

        This is how a user's own shell command (``thread/shellCommand``) shows up: items of the
        turn in progress, or ``turn/started`` ... ``turn/completed`` around them when idle.
        """
        thread_id = self.thread_id(raw_id)
        loaded = self.threads.get(thread_id)
        if loaded is None:
            raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
        if loaded.active is not None:
            self.kernel.start_soon(body, loaded.active, name=f"beside turn {loaded.active.id}")
            return
        turn = Turn(registry=self, loaded=loaded, id=uuid7(), user_item=None,
                    client_name=ctx.connection.client_name,
                    client_version=ctx.connection.client_version, body=body)  # fmt: skip
        loaded.active = turn
        ctx.after_reply.append(lambda: self.launch(loaded, turn))

    def launch(
        self,
        loaded: LoadedThread,
        turn: Turn,
        *,
        announce: Callable[[], None] | None = None,
        started: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Begin ``turn`` (made the thread's ``active`` one by the caller) and run it.

        For plugins that run turns of their own kind (``review/start``): ``announce`` sends
        what precedes the thread going active (the review's ``enteredReviewMode`` item), and
        ``started`` gives the turn ``turn/started`` announces, once the turn has its start time
        (a review announces its reviewer's turn, whose id ``turn/interrupt`` then names).
        """
        self.record_start(loaded, turn)
        if announce is not None:
            announce()
        self.set_status(loaded, {"type": "active", "activeFlags": []})
        wire = turn.wire()
        if started is not None:
            wire = started()
            turn.started_id = str(wire["id"])
        self.emit(loaded, "turn/started", {"threadId": loaded.id, "turn": wire})
        self.kernel.start_soon(turn.run, name=f"turn {turn.id}")

    def record_start(self, loaded: LoadedThread, turn: Turn) -> None:
        """Start ``turn``'s clock and write its start to the thread's rollout (creating the
        rollout on the thread's first turn); for a turn a plugin runs itself (a reviewer)."""
        turn.started_at = int(time.time())
        turn.started_ms = time.time_ns() // 1_000_000
        self.materialize(loaded)
        self._record_turn_start(loaded, turn)

    def materialize(self, loaded: LoadedThread, forked_from: str | None = None) -> None:
        if loaded.materialized or loaded.thread["ephemeral"] or not loaded.thread["path"]:
            return
        loaded.materialized = True
        thread = loaded.thread
        loaded.writer = self.store.writer(loaded.id, Path(thread["path"]))
        created = datetime.fromtimestamp(thread["createdAt"], UTC)
        meta: dict[str, Any] = {
            "session_id": thread["sessionId"],
            "id": thread["id"],
            "forked_from_id": forked_from,
        }
        if thread["parentThreadId"] is not None:  # a sub-agent: as the reference records one
            meta |= {"parent_thread_id": thread["parentThreadId"],
                     "thread_source": thread["threadSource"],
                     "agent_nickname": thread["agentNickname"],
                     "agent_role": thread["agentRole"]}  # fmt: skip
        loaded.writer.append(
            "session_meta",
            {
                **meta,
                "timestamp": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "cwd": thread["cwd"],
                "runtime_workspace_roots": [thread["cwd"]],
                "originator": thread["originator"],
                "cli_version": thread["cliVersion"],
                "source": rollout_source(thread["source"]),
                "model_provider": thread["modelProvider"],
                "base_instructions": {"text": loaded.base_instructions}
                if loaded.base_instructions
                else None,
                "history_mode": thread["historyMode"],
            },
        )

    def _record_turn_start(self, loaded: LoadedThread, turn: Turn) -> None:
        if loaded.writer is None:
            return
        mode = thread_settings.collaboration_mode(loaded)
        loaded.writer.event(
            {"type": "task_started", "turn_id": turn.id, "root_turn_id": turn.id,
             "started_at": turn.started_at, "model_context_window": DEFAULT_CONTEXT_WINDOW,
             "collaboration_mode_kind": mode["mode"]}
        )  # fmt: skip
        current = loaded.settings
        sandbox = current["sandbox"].get("type")
        loaded.writer.append(
            "turn_context",
            {
                "turn_id": turn.id,
                "root_turn_id": turn.id,
                "cwd": current["cwd"],
                "approval_policy": current["approvalPolicy"],
                "approvals_reviewer": current["approvalsReviewer"],
                "model": current["model"],
                "collaboration_mode": mode,
                "effort": current["reasoningEffort"],
                "summary": "none",
                "sandbox_policy": {"type": _ROLLOUT_SANDBOX.get(sandbox, sandbox)},
            },
        )

    def turn_finished(self, loaded: LoadedThread, turn: Turn) -> None:
        if loaded.active is turn:
            loaded.active = None
        self.goals.after_turn(loaded, turn)
        self.release(loaded)

    def start_goal_turn(self, loaded: LoadedThread, prompt: dict[str, Any]) -> None:
        """A turn nobody asked for, pursuing the thread's active goal: the model reads
        ``prompt`` instead of a user's message (``codex_core.threads.goals``)."""
        client = next(iter(loaded.subscribers), None)
        turn = Turn(registry=self, loaded=loaded, id=uuid7(), user_item=None,
                    client_name=client.client_name if client is not None else None,
                    client_version=client.client_version if client is not None else None,
                    goal_prompt=prompt)  # fmt: skip
        loaded.active = turn
        self.launch(loaded, turn)

    # ------------------------------------------------------------------ unloading

    def release(self, loaded: LoadedThread) -> None:
        """Unload a thread nobody watches once it has been idle for a while.

        As the reference: a thread stays loaded after its last subscriber leaves, so a client
        that comes back finds it as it was; after ``[threads] unload_idle_after_secs`` (30
        minutes) with no subscriber and no turn it is unloaded and every client is told with
        ``thread/closed``. Its rollout stays, so ``thread/resume`` loads it again.
        """
        if loaded.subscribers or loaded.active is not None or loaded.unloading:
            return
        if self.threads.get(loaded.id) is not loaded:
            return
        loaded.unloading = True
        self.kernel.start_soon(self._unload_when_idle, loaded, name=f"unload {loaded.id}")

    async def _unload_when_idle(self, loaded: LoadedThread) -> None:
        config = ThreadsConfig.model_validate(self.kernel.config.get("threads") or {})
        await anyio.sleep(config.unload_idle_after_secs)
        loaded.unloading = False
        if loaded.subscribers or loaded.active is not None:
            return  # watched again: the next release starts the clock anew
        if self.threads.get(loaded.id) is not loaded:
            return  # archived or deleted meanwhile
        await self.kernel.run_hook("codex_thread_unloading", thread_id=loaded.id)
        self._drop(loaded)
        self.kernel.broadcast("thread/closed", {"threadId": loaded.id})

    def _drop(self, loaded: LoadedThread) -> None:
        if loaded.writer is not None:
            loaded.writer.close()
        self.threads.pop(loaded.id, None)

    async def turn_interrupt(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        thread_id = self.thread_id(params.thread_id)
        loaded = self.threads.get(thread_id)
        if loaded is None:  # the reference's words (not turn/steer's "not loaded")
            raise RpcError(INVALID_REQUEST, f"thread not found: {thread_id}")
        turn = loaded.active
        if turn is None:
            raise RpcError(INVALID_REQUEST, "no active turn to interrupt")
        if turn.active_id != params.turn_id:  # unlike turn/steer's, without backticks
            raise RpcError(
                INVALID_REQUEST,
                f"expected active turn id {params.turn_id} but found {turn.active_id}",
            )
        turn.scope.cancel()
        if not turn.done.is_set():
            await turn.aborted.wait()
        ctx.after_reply.append(turn.interrupt_replied.set)
        return {}

    async def interrupt_and_wait(self, loaded: LoadedThread) -> None:
        turn = loaded.active
        if turn is not None:
            turn.scope.cancel()
            turn.interrupt_replied.set()
            await turn.done.wait()

    # ------------------------------------------------------------------ lifecycle

    def forget(self, connection: Connection) -> None:
        for loaded in list(self.threads.values()):
            if connection in loaded.subscribers:
                loaded.subscribers.discard(connection)
                self.release(loaded)

    async def shutdown(self) -> None:
        """Interrupt running turns and let each record its end before the kernel stops."""
        active = [loaded.active for loaded in self.threads.values() if loaded.active is not None]
        for turn in active:
            turn.scope.cancel()
            turn.interrupt_replied.set()
        for turn in active:
            await turn.done.wait()
        for loaded in self.threads.values():
            if loaded.writer is not None:
                loaded.writer.close()
        if "store" in self.__dict__:  # (opened by a request: see ``store``)
            self.store.close()


def rollout_source(source: Any) -> Any:
    """A ``SessionSource`` as rollouts spell it (the sub-agent variant is ``subagent``)."""
    if isinstance(source, dict) and "subAgent" in source:
        return {"subagent": source["subAgent"]}
    return source


def user_input(entries: Any) -> list[dict[str, Any]]:
    """``UserInput`` values of a request as wire dicts, ``type`` first."""
    content = []
    for entry in entries:
        wire = to_wire(getattr(entry, "root", entry))
        content.append({"type": wire.get("type"), **wire})
    return content


def user_message_item(content: list[dict[str, Any]], client_id: str | None) -> dict[str, Any]:
    return {
        "type": "userMessage",
        "id": uuid7(),
        "clientId": client_id,
        "content": content,
        "startedAtMs": None,
        "completedAtMs": None,
    }


def dynamic_tools(specs: Any) -> dict[str, dict[str, Any]]:
    """``dynamicTools`` of ``thread/start`` by name; a namespace's tools carry its name."""
    tools: dict[str, dict[str, Any]] = {}
    for spec in specs or ():
        wire = to_wire(getattr(spec, "root", spec))
        if wire.get("type") == "namespace":
            for inner in wire.get("tools") or ():
                tools[inner["name"]] = {**inner, "namespace": wire["name"]}
        else:
            tools[wire["name"]] = {**wire, "namespace": None}
    return tools


def rpc_methods(kernel: Kernel) -> list[RpcMethod]:
    """The methods of the ``threads`` plugin (``codex_core.threads.plugin``), on one registry."""
    registry = ThreadRegistry(kernel)
    kernel.services["threads"] = registry
    return [
        RpcMethod("thread/start", registry.start),
        RpcMethod("thread/read", registry.read),
        RpcMethod("thread/list", registry.list),
        RpcMethod("thread/loaded/list", registry.loaded_list),
        RpcMethod("thread/turns/list", registry.turns_list),
        RpcMethod("thread/items/list", registry.items_list),
        RpcMethod("thread/resume", registry.resume),
        RpcMethod("thread/fork", registry.fork),
        RpcMethod("thread/archive", registry.archive),
        RpcMethod("thread/delete", registry.delete),
        RpcMethod("thread/unarchive", registry.unarchive),
        RpcMethod("thread/name/set", registry.name_set),
        RpcMethod("thread/metadata/update", partial(metadata.metadata_update, registry)),
        RpcMethod("threadSection/list", sections.section_list),
        RpcMethod("threadSection/create", sections.section_create),
        RpcMethod("threadSection/update", sections.section_update),
        RpcMethod("threadSection/delete", sections.section_delete),
        RpcMethod("thread/section/move", partial(section_members.section_move, registry)),
        RpcMethod("thread/attachment/add", attachments.attachment_add),
        RpcMethod("thread/attachment/list", attachments.attachment_list),
        RpcMethod("thread/attachment/remove", attachments.attachment_remove),
        RpcMethod("thread/attachmentOwner/list", attachments.attachment_owner_list),
        RpcMethod("thread/readState/update", registry.read_state_update),
        RpcMethod("thread/unsubscribe", registry.unsubscribe),
        RpcMethod("thread/inject_items", registry.inject_items),
        RpcMethod("thread/search", registry.search),
        RpcMethod("turn/start", registry.turn_start),
        RpcMethod("turn/steer", registry.turn_steer),
        RpcMethod("turn/interrupt", registry.turn_interrupt),
        RpcMethod("thread/compact/start", partial(compaction.compact_start, registry)),
        RpcMethod("collaborationMode/list", modes.collaboration_mode_list),
        RpcMethod("thread/settings/update", registry.settings_update),
        RpcMethod("thread/goal/get", registry.goal_get),
        RpcMethod("thread/goal/set", registry.goal_set),
        RpcMethod("thread/goal/clear", registry.goal_clear),
    ]
