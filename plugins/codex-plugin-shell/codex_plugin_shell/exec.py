"""The ``exec_command`` tool: one shell command, its output streamed into a commandExecution item.

The flow for one call, in the reference server's order::

    approval needed?  thread/status/changed waitingOnApproval -> item/started (source agent)
                      -> item/commandExecution/requestApproval -> serverRequest/resolved
                      -> thread/status/changed active
    runs              item/started (source unifiedExecStartup, processId = the session id)
                      -> item/commandExecution/outputDelta...
                      -> item/completed (completed / failed, aggregatedOutput, exitCode)
    declined          item/completed (declined); the model is told it was rejected
    cancelled         item/completed (declined); the turn ends as interrupted

The call waits ``yield_time_ms`` at most (or until the turn is interrupted): a command still
running then is a unified exec session (``codex_plugin_shell.unified_exec``) the model polls or
types into with ``write_stdin``. Commands run in a new process group (killed whole on
``timeout_ms``, a client's ``terminate`` or ``clean``, the thread's unload), on pipes (stdin
closed) or on a PTY (``tty``), in the turn's cwd (or ``workdir``), with the environment
``shell_environment_policy`` builds. ``thread/shellCommand`` (the user's own command) runs to
completion through ``execute``.
"""

from __future__ import annotations

import codecs
import contextlib
import fnmatch
import json
import os
import pwd
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from codex_core.hookspecs import Tool, ToolResult
from codex_plugin_shell import execpolicy, sandbox, snapshot, unified_exec
from codex_plugin_shell.processes import ChildProcess, SpawnError

#: The model's output budget unless the call says otherwise (``max_output_tokens``).
DEFAULT_MAX_OUTPUT_TOKENS = 10_000
#: How much output the commandExecution item keeps and streams (bytes of text).
AGGREGATE_CAP = 1024 * 1024
EXIT_TIMEOUT = 124
#: How long a command has to exit after SIGTERM (timeout, interrupt) before SIGKILL.
TERM_GRACE_SECONDS = 2.0

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cmd": {"type": "string", "description": "Shell command to execute."},
        "justification": {
            "type": "string",
            "description": "User-facing approval question for `require_escalated`; omit otherwise.",
        },
        "login": {
            "type": "boolean",
            "description": "True runs the shell with -l/-i semantics; false disables them. "
            "Defaults to true.",
        },
        "max_output_tokens": {
            "type": "number",
            "description": "Output token budget. Defaults to 10000 tokens; larger requests may "
            "be capped by policy.",
        },
        "prefix_rule": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Reusable approval prefix for `cmd`, only with "
            '`sandbox_permissions: "require_escalated"`; for example ["git", "pull"].',
        },
        "sandbox_permissions": {
            "type": "string",
            "enum": ["use_default", "require_escalated"],
            "description": "Per-command sandbox override. Defaults to `use_default`; use "
            "`require_escalated` for unsandboxed execution.",
        },
        "shell": {
            "type": "string",
            "description": "Shell binary to launch. Defaults to the user's default shell.",
        },
        "tty": {
            "type": "boolean",
            "description": "True allocates a PTY for the command; false or omitted uses plain "
            "pipes.",
        },
        "workdir": {
            "type": "string",
            "description": "Working directory for the command. Defaults to the turn cwd.",
        },
        "timeout_ms": {
            "type": "number",
            "description": "Kill the command after this many milliseconds (default: never).",
        },
        "yield_time_ms": {
            "type": "number",
            "description": "Wait before yielding output. Defaults to 10000 ms; effective range "
            "is 250-30000 ms.",
        },
    },
    "required": ["cmd"],
    "additionalProperties": False,
}

#: Commands that only read, so a read-only sandbox lets them run without asking.
SAFE_COMMANDS = frozenset(
    [
        "cat",
        "ls",
        "pwd",
        "echo",
        "printf",
        "grep",
        "egrep",
        "fgrep",
        "rg",
        "head",
        "tail",
        "wc",
        "which",
        "true",
        "false",
        "nl",
        "stat",
        "file",
        "date",
        "whoami",
        "uname",
        "id",
        "basename",
        "dirname",
        "realpath",
        "readlink",
        "cut",
        "sort",
        "uniq",
        "tr",
        "diff",
        "cmp",
        "du",
        "df",
        "tree",
        "env",
        "printenv",
        "seq",
        "sleep",
        "test",
        "[",
    ]
)
SAFE_GIT = frozenset(["status", "log", "diff", "show", "branch", "rev-parse", "ls-files", "blame"])
UNSAFE_FIND = frozenset(
    ["-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprintf", "-fls"]
)
OPERATORS = frozenset({"&&", "||", ";", "|"})


class ExecCommand(Tool):
    """The ``exec_command`` tool (a ``codex_core.hookspecs.Tool``)."""

    name = "exec_command"
    description = (
        "Runs a shell command and returns its output (stdout and stderr merged) and exit code."
    )
    input_schema = INPUT_SCHEMA

    @staticmethod
    def offered(setting: Callable[[str], Any]) -> bool:
        """``features.shell_tool = false`` takes the shell away from a thread's model, as in
        the reference (the TUI's temporary structured threads set it)."""
        return setting("features.shell_tool") is not False

    async def call(self, arguments: dict[str, Any], context: Any) -> ToolResult:
        cmd = arguments.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            return ToolResult("exec_command failed: missing field `cmd`", success=False)
        shell = str(arguments.get("shell") or default_shell())
        flag = "-lc" if arguments.get("login", True) is not False else "-c"
        argv = [shell, flag, cmd]
        cwd = resolve_workdir(context.cwd, arguments.get("workdir"))
        escalated = arguments.get("sandbox_permissions") == "require_escalated"
        item = command_item(context.call_id, argv, cwd, cmd, source="agent")
        key = f"exec:{cmd}"
        home = context.kernel.codex_home
        ruled = execpolicy.decide(execpolicy.load_rules(home), segments(cmd) or [])
        if ruled == "forbidden":
            return ToolResult(
                "exec_command failed: this command is forbidden by an exec policy rule "
                f"({home / 'rules'}); do not try to run it another way",
                success=False,
            )
        policy = context.turn.settings["sandbox"]
        confined = sandbox.confines(policy)
        verdict = context.needs_approval(
            escalated=escalated, safe=is_safe(cmd), key=key, confined=confined
        )
        # What the user (or a rule) approved runs as asked; everything else in the sandbox.
        trusted = escalated or ruled == "allow" or context.approved_for_session(key)
        if ruled == "allow":
            verdict = "run"
        elif ruled == "prompt" and verdict == "run":
            verdict = "reject" if context.approval_policy == "never" else "ask"
        if verdict == "reject":
            return ToolResult(
                "exec_command failed: this command needs approval (it may write outside a "
                "read-only sandbox or asked for escalation) and approval_policy is `never`; "
                "do not ask for escalated permissions",
                success=False,
            )
        if verdict == "ask":
            trusted = True
            params = approval_params(context, item, cmd, arguments)
            answer = await context.request_approval(
                "item/commandExecution/requestApproval", params, item
            )
            decision = answer.get("decision")
            if decision == "acceptForSession":
                context.approve_for_session(key)
            elif isinstance(decision, dict) and "acceptWithExecpolicyAmendment" in decision:
                amendment = decision["acceptWithExecpolicyAmendment"].get("execpolicy_amendment")
                if isinstance(amendment, list) and amendment:
                    execpolicy.append_allow(home, [str(word) for word in amendment])
            elif decision in ("decline", "cancel") or not accepted(decision):
                context.item_completed({**item, "status": "declined", "completedAtMs": now_ms()})
                if decision == "cancel" or decision is None:
                    context.abort_turn()
                context.approval_finished()
                # A reviewer may say why (the guardian does); the model reads it the way the
                # reference prints it: a Rust Debug string inside the process error.
                reason = str(answer.get("rejectionMessage") or "rejected by user")
                quoted = json.dumps(reason).replace("\\", "\\\\").replace('"', '\\"')
                return ToolResult(
                    f'exec_command failed: CreateProcess {{ message: "Rejected({quoted})" }}',
                    success=False,
                )
            context.approval_finished()
        argv, env = await prepare(argv, context.config.get("shell_environment_policy") or {})
        if not trusted:
            argv = sandbox.wrap(argv, policy, cwd)
        return await run(context, item, cmd, argv, cwd, env, arguments)


async def prepare(argv: list[str], policy: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """How ``argv`` (``SHELL -lc CMD`` or ``SHELL -c CMD``) actually runs, and with which
    environment (``shell_environment_policy`` applied): a login command from the shell's
    snapshot when one could be taken (``codex_plugin_shell.snapshot``)."""
    base: Mapping[str, str] = os.environ
    if argv[1] == "-lc":
        captured = await snapshot.login_environment(argv[0], os.environ)
        if captured is not None:
            argv, base = [argv[0], "-c", argv[2]], captured
    return argv, environment(base, policy)


def command_item(
    item_id: str, argv: list[str], cwd: str, cmd: str, *, source: str
) -> dict[str, Any]:
    """A ``commandExecution`` item about to run ``argv`` (``cmd`` as the user or model wrote it)."""
    return {
        "type": "commandExecution",
        "id": item_id,
        "pluginId": None,
        "scriptPath": None,
        "command": shlex.join(argv),
        "cwd": cwd,
        "processId": None,
        "source": source,
        "status": "inProgress",
        "commandActions": [{"type": "unknown", "command": cmd}],
        "aggregatedOutput": None,
        "exitCode": None,
        "durationMs": None,
        "startedAtMs": now_ms(),
        "completedAtMs": None,
    }


def accepted(decision: Any) -> bool:
    if decision in ("accept", "acceptForSession"):
        return True
    return isinstance(decision, dict) and bool(
        {"acceptWithExecpolicyAmendment", "applyNetworkPolicyAmendment"} & set(decision)
    )


def approval_params(
    context: Any, item: dict[str, Any], cmd: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """``item/commandExecution/requestApproval`` params: absent optional fields are omitted."""
    params: dict[str, Any] = {
        "kind": "command",
        "threadId": context.thread_id,
        "turnId": context.turn_id,
        "itemId": item["id"],
        "startedAtMs": item["startedAtMs"],
        "environmentId": "local",
    }
    if isinstance(arguments.get("justification"), str):
        params["reason"] = arguments["justification"]
    params["command"] = item["command"]
    params["cwd"] = item["cwd"]
    params["commandActions"] = item["commandActions"]
    prefix = arguments.get("prefix_rule")
    amendment = (
        [str(word) for word in prefix] if isinstance(prefix, list) and prefix else amend(cmd)
    )
    decisions: list[Any] = ["accept"]
    if amendment:
        params["proposedExecpolicyAmendment"] = amendment
        decisions.append({"acceptWithExecpolicyAmendment": {"execpolicy_amendment": amendment}})
    else:
        decisions.append("acceptForSession")
    decisions.append("cancel")
    params["availableDecisions"] = decisions
    return params


async def run(
    context: Any,
    item: dict[str, Any],
    cmd: str,
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    arguments: dict[str, Any],
) -> ToolResult:
    """Start ``argv`` as a unified exec session and wait for it ``yield_time_ms`` at most."""
    started = time.monotonic()
    try:
        child = ChildProcess(argv, cwd, env, tty=arguments.get("tty") is True, stdin=False)
    except SpawnError as exc:
        if item["id"] not in context.turn.open_items:
            context.item_started({**item, "source": "unifiedExecStartup"})
        context.item_completed(
            {**item, "source": "unifiedExecStartup", "status": "failed",
             "aggregatedOutput": str(exc), "exitCode": -1, "durationMs": 0,
             "completedAtMs": now_ms()}
        )  # fmt: skip
        return ToolResult(f"exec_command failed: {exc}", success=False)
    store = unified_exec.sessions(context.kernel)
    session_id = store.new_id()
    item = {**item, "processId": str(session_id), "source": "unifiedExecStartup"}
    timeout = arguments.get("timeout_ms")
    session = unified_exec.Session(
        id=session_id, thread_id=context.thread_id, command=cmd, cwd=cwd, child=child,
        turn=context.turn, item=item,
        timeout_ms=number(timeout, 0) or None,
    )  # fmt: skip
    if item["id"] not in context.turn.open_items:
        context.item_started(item)
    store.start(session)
    wait_ms = unified_exec.clamp(
        arguments.get("yield_time_ms"), unified_exec.DEFAULT_EXEC_YIELD_MS,
        unified_exec.MIN_YIELD_MS, unified_exec.MAX_YIELD_MS,
    )  # fmt: skip
    # Interrupted meanwhile, the call ends here; the command runs on in the background and
    # its item completes when it ends, as with the reference.
    await session.wait(wait_ms)
    budget = number(arguments.get("max_output_tokens"), DEFAULT_MAX_OUTPUT_TOKENS)
    return reply(store, session, started, budget)


def reply(
    store: unified_exec.Sessions, session: unified_exec.Session, started: float, budget: int
) -> ToolResult:
    """What the model reads after waiting on ``session``: the output it has not read yet, and
    whether the command still runs (a session ends once the model read its exit)."""
    session.used = time.monotonic()
    output = session.take_output()
    if session.exit_code is None:
        status = f"Process running with session ID {session.id}"
    else:
        store.by_id.pop(session.id, None)
        status = f"Process exited with code {session.exit_code}"
    wall = time.monotonic() - started
    text = unified_exec.model_output(output, status, wall, budget)
    return ToolResult(text, success=session.exit_code in (None, 0))


@dataclass(frozen=True, slots=True)
class Ran:
    """How a command ended: its output, exit code and wall time, or why it never started."""

    output: str
    exit_code: int
    wall: float
    error: str | None = None


async def execute(
    context: Any,
    item: dict[str, Any],
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    timeout_ms: int,
) -> Ran:
    """Run ``argv`` to its end (the user's ``thread/shellCommand``), streaming its output into
    ``item`` (started here unless it already is)."""
    started = time.monotonic()
    try:
        process = await anyio.open_process(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        failed = {**item, "status": "failed", "aggregatedOutput": str(exc), "exitCode": -1,
                  "durationMs": 0, "completedAtMs": now_ms()}  # fmt: skip
        if item["id"] not in context.turn.open_items:
            context.item_started(item)
        context.item_completed(failed)
        return Ran("", -1, time.monotonic() - started, error=str(exc))
    if item["id"] not in context.turn.open_items:
        context.item_started(item)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    chunks: list[str] = []
    size = 0
    timed_out = False
    try:
        with anyio.move_on_after(timeout_ms / 1000) as scope:
            assert process.stdout is not None
            async for data in process.stdout:
                text = decoder.decode(data)
                if not text:
                    continue
                if size < AGGREGATE_CAP:
                    text = text[: AGGREGATE_CAP - size]
                    size += len(text)
                    chunks.append(text)
                    context.delta("item/commandExecution/outputDelta", item["id"], delta=text)
            await process.wait()
        if scope.cancelled_caught:
            timed_out = True
            await terminate(process)
    finally:
        if process.returncode is None:  # interrupted: take the whole process group down
            await terminate(process)
            await process.aclose()
    tail = decoder.decode(b"", final=True)
    if tail and size < AGGREGATE_CAP:
        chunks.append(tail)
        context.delta("item/commandExecution/outputDelta", item["id"], delta=tail)
    output = "".join(chunks)
    wall = time.monotonic() - started
    exit_code = EXIT_TIMEOUT if timed_out else int(process.returncode or 0)
    if timed_out:
        output += f"\ncommand timed out after {timeout_ms} milliseconds\n"
    context.item_completed(
        {**item, "status": "completed" if exit_code == 0 else "failed",
         "aggregatedOutput": output or None, "exitCode": exit_code,
         "durationMs": int(wall * 1000), "completedAtMs": now_ms()}
    )  # fmt: skip
    return Ran(output, exit_code, wall)


async def terminate(process: Any) -> None:
    """End the command's whole process group: SIGTERM, then SIGKILL if it is still there after
    ``TERM_GRACE_SECONDS``. The grace lets shells run their traps: a login shell killed outright
    while its profile runs can leave a lock behind (pyenv's rehash lock, say) that stalls every
    later shell."""
    with anyio.CancelScope(shield=True):
        signal_group(process, signal.SIGTERM)
        with anyio.move_on_after(TERM_GRACE_SECONDS):
            await process.wait()
        if process.returncode is None:
            signal_group(process, signal.SIGKILL)
            with anyio.move_on_after(5):
                await process.wait()


def signal_group(process: Any, signum: signal.Signals) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)


def number(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return default
    return int(value)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def default_shell() -> str:
    """The user's login shell when it is a POSIX one (as the reference), else /bin/sh."""
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    name = os.path.basename(shell)
    if name in ("bash", "zsh", "sh", "dash", "ksh") and os.access(shell, os.X_OK):
        return shell
    return "/bin/bash" if os.access("/bin/bash", os.X_OK) else "/bin/sh"


def resolve_workdir(cwd: str, workdir: Any) -> str:
    if not isinstance(workdir, str) or not workdir:
        return cwd
    return os.path.normpath(os.path.join(cwd, workdir))


# ---------------------------------------------------------------------- safety


def segments(cmd: str) -> list[list[str]] | None:
    """The simple commands of ``cmd`` split on ``&& || ; |``; ``None`` for anything fancier
    (redirections, substitutions, subshells), which is never considered safe."""
    if any(mark in cmd for mark in ("`", "$(", ">", "<", "\n")):
        return None
    try:
        lexer = shlex.shlex(cmd, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return None
    result: list[list[str]] = [[]]
    for word in words:
        if word in OPERATORS:
            result.append([])
        elif set(word) <= set("&|;()"):
            return None
        else:
            result[-1].append(word)
    if any(not segment for segment in result):
        return None
    return result


def is_safe(cmd: str) -> bool:
    """Whether every part of ``cmd`` only reads (``ls``, ``cat``, ``git status``, ...)."""
    parts = segments(cmd)
    if parts is None:
        return False
    for words in parts:
        program = os.path.basename(words[0])
        if program == "git":
            if len(words) < 2 or words[1] not in SAFE_GIT:
                return False
        elif program == "find":
            if UNSAFE_FIND & set(words):
                return False
        elif program == "sed":
            if words[1:2] != ["-n"] or any(w.startswith("-i") for w in words):
                return False
        elif program not in SAFE_COMMANDS:
            return False
    return True


def amend(cmd: str) -> list[str] | None:
    """The execpolicy amendment the reference proposes: the first simple command's words."""
    parts = segments(cmd)
    return parts[0] if parts else None


# ---------------------------------------------------------------------- environment

#: Name patterns ``shell_environment_policy`` drops unless ``ignore_default_excludes``.
DEFAULT_EXCLUDES = ("*KEY*", "*SECRET*", "*TOKEN*")
CORE_VARIABLES = ("HOME", "LOGNAME", "PATH", "SHELL", "USER", "USERNAME", "TMPDIR", "TEMP", "TMP")


def environment(base: Mapping[str, str], policy: Mapping[str, Any]) -> dict[str, str]:
    """The command's environment from ``shell_environment_policy`` (as the reference):

    ``inherit`` (``all`` default, ``core``, ``none``), then the default excludes (names with
    KEY, SECRET or TOKEN, unless ``ignore_default_excludes``), then ``exclude`` patterns, then
    ``set``, then ``include_only`` patterns. Patterns are case-insensitive globs.
    """
    inherit = str(policy.get("inherit") or "all")
    if inherit == "none":
        env: dict[str, str] = {}
    elif inherit == "core":
        env = {name: value for name, value in base.items() if name in CORE_VARIABLES}
    else:
        env = dict(base)

    def matches(name: str, patterns: Any) -> bool:
        return any(fnmatch.fnmatchcase(name.upper(), str(p).upper()) for p in patterns or ())

    if not policy.get("ignore_default_excludes"):
        env = {k: v for k, v in env.items() if not matches(k, DEFAULT_EXCLUDES)}
    env = {k: v for k, v in env.items() if not matches(k, policy.get("exclude"))}
    for name, value in (policy.get("set") or {}).items():
        env[str(name)] = str(value)
    include_only = policy.get("include_only")
    if include_only:
        env = {k: v for k, v in env.items() if matches(k, include_only)}
    return env
