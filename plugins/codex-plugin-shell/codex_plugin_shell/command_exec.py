"""``command/exec`` and its controls: a client runs a command outside any thread or turn.

What the TUI's ``/diff`` uses (six ``git`` commands, buffered), and what an IDE uses for a
terminal of its own (``tty``, ``command/exec/write``, ``/resize``, ``/terminate``). Behaviour
follows the reference server (``codex-rs/app-server``'s ``command_exec``):

- the argv runs as is (no shell), in ``cwd`` (relative to the server's cwd), with the
  environment ``shell_environment_policy`` builds plus the request's ``env`` (``null`` unsets),
  inside the sandbox the request (``sandboxPolicy`` / ``permissionProfile``) or the config
  (``sandbox_mode``) asks for, as the model's commands are;
- buffered: the reply carries ``stdout`` / ``stderr`` (each capped at ``outputBytesCap``,
  default 1 MiB) once the process is gone; streaming (``streamStdoutStderr``, ``tty``): the
  bytes go out as ``command/exec/outputDelta`` notifications instead, the reply comes after
  the last of them, with empty strings;
- ``timeoutMs`` (default 10 s, ``disableTimeout`` for none) kills it: exit code 124;
  ``command/exec/terminate`` kills it (SIGKILL: exit code 137); so does the client leaving;
- a client-chosen ``processId`` names it for the controls, per connection.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from codex_core.config.permissions import BUILTIN_PROFILES
from codex_core.protocol.wire import to_wire
from codex_core.rpc import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, RequestContext, RpcError
from codex_core.rpc.validation import describe
from codex_plugin_shell import decoding, sandbox
from codex_plugin_shell.exec import environment
from codex_plugin_shell.processes import ChildProcess, SpawnError

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection

#: How long a command may run when the request does not say (the reference's default).
DEFAULT_TIMEOUT_MS = 10_000
#: How much of each stream is kept when the request does not say.
DEFAULT_OUTPUT_BYTES_CAP = 1024 * 1024
EXIT_TIMEOUT = 124
#: How long output may keep coming after the process exited (a background child holding the
#: pipe open must not hold the reply up for ever).
IO_DRAIN_SECONDS = 2.0
#: ``SandboxPolicy`` types: the ``sandbox_mode`` each stands for, and its name in the
#: reference's refusals (Rust ``Debug``).
POLICY_MODES = {
    "readOnly": ("read-only", "ReadOnly"),
    "workspaceWrite": ("workspace-write", "WorkspaceWrite"),
    "dangerFullAccess": ("danger-full-access", "DangerFullAccess"),
    "externalSandbox": ("external-sandbox", "ExternalSandbox"),
}
MODE_NAMES = dict(POLICY_MODES.values())


#: How many writes may wait for a child that does not read its stdin before a write waits too
#: (the reference queues them the same way, so a write is answered before the child reads it).
STDIN_QUEUE = 128


@dataclass(eq=False)
class Session:
    """A running ``command/exec``: what its controls act on.

    Writes go through a queue that a task of their own feeds to the child (``None`` closes
    stdin), so they keep their order and a client is answered without waiting for the child.
    """

    child: ChildProcess
    stream_stdin: bool
    #: The process is gone and its last output is being collected: controls are too late.
    exited: bool = False
    stdin_closed: bool = False
    inbox: tuple[MemoryObjectSendStream[bytes | None], MemoryObjectReceiveStream[bytes | None]] = (
        field(default_factory=lambda: anyio.create_memory_object_stream[bytes | None](STDIN_QUEUE))
    )


@dataclass(frozen=True, slots=True)
class Output:
    """How one stream is handled: streamed under ``process_id``, or kept for the reply."""

    connection: Connection
    process_id: str | None
    streaming: bool
    cap: int | None


class CommandExec:
    """The four methods and the table of running commands, keyed by connection and id."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.sessions: dict[tuple[Connection, str | int], Session] = {}
        self._generated = itertools.count(1)

    # ------------------------------------------------------------------ command/exec

    async def exec(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        # The reference reads ``env`` as strings or nulls while parsing the params, before any
        # other check; the schema lets any JSON value through, so it is checked here, first.
        for value in (params.env or {}).values():
            if value is not None and not isinstance(value, str):
                raise RpcError(
                    INVALID_REQUEST,
                    f"Invalid request: invalid type: {describe(value)}, expected a string",
                )
        if not params.command:
            raise RpcError(INVALID_REQUEST, "command must not be empty")
        if params.sandbox_policy is not None and params.permission_profile is not None:
            raise RpcError(
                INVALID_REQUEST, "`permissionProfile` cannot be combined with `sandboxPolicy`"
            )
        tty = bool(params.tty)
        if params.size is not None and not tty:
            raise RpcError(INVALID_PARAMS, "command/exec size requires tty: true")
        if params.disable_output_cap and params.output_bytes_cap is not None:
            raise RpcError(
                INVALID_PARAMS, "command/exec cannot set both outputBytesCap and disableOutputCap"
            )
        if params.disable_timeout and params.timeout_ms is not None:
            raise RpcError(
                INVALID_PARAMS, "command/exec cannot set both timeoutMs and disableTimeout"
            )
        if params.timeout_ms is not None and params.timeout_ms < 0:
            raise RpcError(
                INVALID_PARAMS,
                f"command/exec timeoutMs must be non-negative, got {params.timeout_ms}",
            )
        env = self._environment(params.env)
        policy = self._sandbox(params)
        size = None if params.size is None else checked_size(params.size)
        stream_stdin = tty or bool(params.stream_stdin)
        streaming = tty or bool(params.stream_stdout_stderr)
        if params.process_id is None and (stream_stdin or streaming):
            raise RpcError(
                INVALID_REQUEST,
                "command/exec tty or streaming requires a client-supplied processId",
            )
        key_id: str | int = (
            next(self._generated) if params.process_id is None else params.process_id
        )
        key = (ctx.connection, key_id)
        if key in self.sessions:
            raise RpcError(
                INVALID_REQUEST, f"duplicate active command/exec process id: {error_repr(key_id)}"
            )
        server_cwd = os.getcwd()
        cwd = os.path.join(server_cwd, params.cwd) if params.cwd else server_cwd
        # Under a permission profile the command's own cwd is the workspace, as in the reference.
        workspace = cwd if params.permission_profile is not None else server_cwd
        argv = sandbox.wrap(list(params.command), policy, cwd, workspace=workspace)
        try:
            child = ChildProcess(argv, cwd, env, tty=tty, stdin=stream_stdin, size=size)
        except SpawnError as exc:
            raise RpcError(INTERNAL_ERROR, f"failed to spawn command: {exc}") from None
        session = self.sessions[key] = Session(child, stream_stdin)
        cap = None if params.disable_output_cap else (
            DEFAULT_OUTPUT_BYTES_CAP if params.output_bytes_cap is None else params.output_bytes_cap
        )  # fmt: skip
        output = Output(ctx.connection, params.process_id, streaming, cap)
        timeout = None if params.disable_timeout else (
            DEFAULT_TIMEOUT_MS if params.timeout_ms is None else params.timeout_ms
        ) / 1000  # fmt: skip
        try:
            exit_code, texts = await run(session, output, timeout)
        finally:
            child.kill()
            child.close()
            for end in session.inbox:
                end.close()
            if self.sessions.get(key) is session:
                del self.sessions[key]
        if tty:
            return {"exitCode": exit_code, "stdout": texts[0], "stderr": ""}
        return {"exitCode": exit_code, "stdout": texts[0], "stderr": texts[1]}

    def _environment(self, overrides: dict[str, str | None] | None) -> dict[str, str]:
        """``shell_environment_policy``'s environment with the request's ``env`` on top."""
        policy = self.kernel.config.get("shell_environment_policy") or {}
        env = environment(os.environ, policy)
        for name, value in (overrides or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def _sandbox(self, params: Any) -> dict[str, Any]:
        """The ``SandboxPolicy`` the command runs under (its wire shape), if the administrator's
        requirements (``allowed_sandbox_modes``) allow it; the config's is already held to them."""
        requirements = self.kernel.config.requirements
        allowed = None if requirements is None else requirements.allowed.get("sandbox_mode")
        if params.sandbox_policy is not None:
            policy: dict[str, Any] = dict(to_wire(params.sandbox_policy))
            kind = str(policy.get("type"))
            mode, name = POLICY_MODES.get(kind, ("", kind))
            if allowed is not None and mode != "read-only" and mode not in allowed[0]:
                names = ", ".join(MODE_NAMES.get(item, item) for item in allowed[0])
                raise RpcError(
                    INVALID_REQUEST,
                    f"invalid sandbox policy: invalid value for `sandbox_mode`: `{name}` is not "
                    f"in the allowed set [{names}] (set by {allowed[1]})",
                )
            return policy
        if params.permission_profile is not None:
            configured = self.kernel.config.get("permissions")
            mode = profile_mode(params.permission_profile, configured)
            refused = (
                None if requirements is None else requirements.enforce("sandbox_mode", mode)[1]
            )
            if refused is not None:
                raise RpcError(INVALID_REQUEST, f"invalid permission profile: {refused['summary']}")
            return sandbox.policy_for_mode(mode)
        mode = self.kernel.config.get("sandbox_mode") or "read-only"
        return sandbox.policy_for_mode(str(getattr(mode, "value", mode)))

    # ------------------------------------------------------------------ controls

    def _session(self, ctx: RequestContext, process_id: str) -> Session:
        session = self.sessions.get((ctx.connection, process_id))
        if session is None:
            raise RpcError(
                INVALID_REQUEST,
                f"no active command/exec for process id {error_repr(process_id)}",
            )
        if session.exited:
            raise RpcError(
                INVALID_REQUEST, f"command/exec {error_repr(process_id)} is no longer running"
            )
        return session

    async def write(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        if params.delta_base64 is None and not params.close_stdin:
            raise RpcError(INVALID_PARAMS, "command/exec/write requires deltaBase64 or closeStdin")
        data = b"" if params.delta_base64 is None else decode_base64(params.delta_base64)
        session = self._session(ctx, params.process_id)
        if not session.stream_stdin:
            raise RpcError(INVALID_REQUEST, "stdin streaming is not enabled for this command/exec")
        if data and session.stdin_closed:
            raise RpcError(INVALID_REQUEST, "stdin is already closed")
        if params.close_stdin and session.stdin_closed:
            return {}  # closing it again is no error
        if params.close_stdin:
            session.stdin_closed = True
        try:
            if data:
                await session.inbox[0].send(data)
            if params.close_stdin:
                await session.inbox[0].send(None)
        except anyio.BrokenResourceError:  # it exited while the queue was full
            raise RpcError(
                INVALID_REQUEST,
                f"command/exec {error_repr(params.process_id)} is no longer running",
            ) from None
        return {}

    async def resize(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        rows, cols = checked_size(params.size)
        session = self._session(ctx, params.process_id)
        if not session.child.tty:
            raise RpcError(
                INVALID_REQUEST, "failed to resize PTY: process is not attached to a PTY"
            )
        session.child.resize(rows, cols)
        return {}

    async def terminate(self, ctx: RequestContext, params: Any) -> dict[str, Any]:
        self._session(ctx, params.process_id).child.kill()
        return {}


async def run(session: Session, output: Output, timeout: float | None) -> tuple[int, list[str]]:
    """Wait for the exit (killing the command at ``timeout``), then for its last output."""
    child = session.child
    kept = [bytearray() for _ in child.outputs]
    timed_out = False
    async with anyio.create_task_group() as readers:
        for fd, stream, buffer in zip(child.outputs, ("stdout", "stderr"), kept, strict=False):
            readers.start_soon(collect, child, fd, stream, output, buffer)
        async with anyio.create_task_group() as running:
            if child.stdin is not None:
                running.start_soon(feed, child, session.inbox[1])
            running.start_soon(kill_when_client_leaves, child, output.connection)
            with anyio.move_on_after(timeout) as scope:
                exit_code = await child.wait()
            if scope.cancelled_caught:
                timed_out = True
                child.kill()
                exit_code = await child.wait()
            session.exited = True
            running.cancel_scope.cancel()
        readers.cancel_scope.deadline = anyio.current_time() + IO_DRAIN_SECONDS
    texts = [decoding.text(bytes(buffer)) for buffer in kept]
    return (EXIT_TIMEOUT if timed_out else exit_code), texts


async def kill_when_client_leaves(child: ChildProcess, connection: Connection) -> None:
    """A client that stopped sending has left: its commands die (the reference kills them
    when the connection closes; ours drains its replies a while longer first)."""
    await connection.wait_input_ended()
    child.kill()


async def feed(child: ChildProcess, inbox: MemoryObjectReceiveStream[bytes | None]) -> None:
    """Write what the client sent to the child's stdin, in order, until ``None`` closes it.
    Once the child has closed its end, later bytes go nowhere (as in the reference)."""
    broken = False
    async for data in inbox:
        if data is None:
            child.close_stdin()
        elif not broken:
            try:
                await child.write(data)
            except OSError:
                broken = True


async def collect(
    child: ChildProcess, fd: int, stream: str, output: Output, kept: bytearray
) -> None:
    """Read ``fd`` to its end, streaming or keeping (in ``kept``) up to the cap and dropping
    the rest: the child must never block on a full pipe that nobody reads."""
    observed = 0
    capped = False
    while data := await child.read(fd):
        if capped:
            continue
        if output.cap is not None:
            data = data[: output.cap - observed]
            observed += len(data)
            capped = observed == output.cap
        if output.streaming and output.process_id is not None:
            await output.connection.notify_and_wait(
                "command/exec/outputDelta",
                {"processId": output.process_id, "stream": stream,
                 "deltaBase64": base64.b64encode(data).decode(), "capReached": capped},
            )  # fmt: skip
        elif not output.streaming:
            kept += data


def checked_size(size: Any) -> tuple[int, int]:
    if size.rows == 0 or size.cols == 0:
        raise RpcError(INVALID_PARAMS, "command/exec size rows and cols must be greater than 0")
    return int(size.rows), int(size.cols)


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RpcError(INVALID_PARAMS, f"invalid deltaBase64: {base64_error(text, exc)}") from None


def base64_error(text: str, exc: Exception) -> str:
    """The first problem in ``text`` as Rust's ``base64`` crate words it."""
    alphabet = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    raw = text.encode()
    body = raw.rstrip(b"=")
    for offset, byte in enumerate(body):
        if byte not in alphabet:
            return f"Invalid symbol {byte}, offset {offset}."
    if len(body) % 4 == 1:
        return f"Invalid input length: {len(body)}"
    if len(raw) % 4:
        return "Invalid padding"
    return str(exc)


def error_repr(process_id: str | int) -> str:
    """How the reference names a process id in errors: a client's as a JSON string."""
    return str(process_id) if isinstance(process_id, int) else json.dumps(process_id)


def profile_mode(profile: str, configured: Any) -> str:
    """The sandbox mode a ``permissionProfile`` id stands for, or the reference's refusal.

    The built-ins are the ones ``permissionProfile/list`` offers. A profile of the config's
    ``[permissions]`` table (``configured``) is refused: its filesystem entries would need a
    sandbox finer than the three modes.
    """
    mode = BUILTIN_PROFILES.get(profile)
    if mode is not None:
        return mode
    if profile.startswith(":"):
        reason = f"default_permissions refers to unknown built-in profile `{profile}`"
    elif not isinstance(configured, dict):
        reason = "default_permissions requires a `[permissions]` table"
    else:
        reason = f"profile `{profile}` from `[permissions]` is not supported by command/exec yet"
    raise RpcError(INVALID_REQUEST, f"invalid permission profile: {reason}")
