"""An async client for the Codex app-server protocol, for host applications and tests.

The same ``Client`` talks to a kernel in this process (``Client.in_process(kernel)``), to any
app-server over stdio (``Client.spawn()``, this installation's ``codex-app-server``, or
``Client.spawn([...])`` with any command line, the official server's too) or over a websocket
(``Client.connect_websocket("ws://127.0.0.1:PORT")``).
It sends requests and awaits their results, streams notifications, and answers the server's
own requests (approvals, token refreshes) through handlers the host registers::

    async with Client.in_process(Kernel()) as client:
        await client.initialize()
        thread = await client.request("thread/start", {})
        async for method, params in client.notifications():
            ...
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from anyio.abc import Process, TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from anyio.streams.text import TextReceiveStream

from codex_core import __version__
from codex_core.protocol.envelope import (
    Notification,
    Request,
    RequestId,
    Response,
    dumps,
    parse,
)
from codex_core.rpc.errors import INTERNAL_ERROR, METHOD_NOT_FOUND, RpcError
from codex_core.transports.memory import channel_pair

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

log = logging.getLogger(__name__)

ServerRequestHandler = Callable[[Any], Awaitable[Any]]
_UNSET: Any = object()


class _Pipe(Protocol):
    async def send(self, frames: Sequence[str]) -> None: ...
    async def receive(self) -> bytes | str: ...
    async def aclose(self) -> None: ...


class _ProcessPipe:
    """Newline-delimited JSON over a child process's stdin/stdout."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._lines = _lines(TextReceiveStream(process.stdout))

    async def send(self, frames: Sequence[str]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(("\n".join(frames) + "\n").encode())

    async def receive(self) -> str:
        try:
            return await anext(self._lines)
        except StopAsyncIteration:
            raise anyio.EndOfStream from None

    async def aclose(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with anyio.move_on_after(5):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


class _WebSocketPipe:
    """One JSON-RPC message per text frame over a websocket (``websockets`` connection)."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket

    async def send(self, frames: Sequence[str]) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for frame in frames:
                await self.websocket.send(frame)
        except ConnectionClosed as exc:
            raise anyio.BrokenResourceError(str(exc)) from None

    async def receive(self) -> bytes | str:
        from websockets.exceptions import ConnectionClosed

        try:
            message: bytes | str = await self.websocket.recv()
        except ConnectionClosed:
            raise anyio.EndOfStream from None
        return message

    async def aclose(self) -> None:
        await self.websocket.close()


async def _lines(stream: TextReceiveStream) -> AsyncIterator[str]:
    buffer = ""
    async for chunk in stream:
        buffer += chunk
        *complete, buffer = buffer.split("\n")
        for line in complete:
            if line.strip():
                yield line


class Client:
    def __init__(
        self, pipe: _Pipe, serve: Callable[[], Coroutine[Any, Any, None]] | None = None
    ) -> None:
        self._pipe = pipe
        self._serve = serve
        self._ids = itertools.count(1)
        self._pending: dict[RequestId, MemoryObjectSendStream[Response]] = {}
        self._handlers: dict[str, ServerRequestHandler] = {}
        self._notify_send: MemoryObjectSendStream[tuple[str, Any]]
        self._notify_receive: MemoryObjectReceiveStream[tuple[str, Any]]
        self._notify_send, self._notify_receive = anyio.create_memory_object_stream[
            tuple[str, Any]
        ](math.inf)
        self._tasks: TaskGroup | None = None
        self._closed = anyio.Event()

    # ------------------------------------------------------------------ constructors

    @classmethod
    def in_process(cls, kernel: Kernel) -> Client:
        client_side, server_side = channel_pair()
        return cls(client_side, lambda: kernel.serve_channel(server_side))

    @classmethod
    async def spawn(
        cls,
        command: Sequence[str] | None = None,
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> Client:
        """Start an app-server subprocess speaking stdio; its stderr stays the caller's.

        ``command`` defaults to ``server_command()``: this interpreter's codex-core.
        """
        from codex_core.cli import server_command

        argv = server_command() if command is None else list(command)
        process = await anyio.open_process(argv, env=env, cwd=cwd, stderr=None)
        return cls(_ProcessPipe(process))

    @classmethod
    async def connect_websocket(cls, url: str, *, token: str | None = None) -> Client:
        """Connect to an app-server listening on ``ws://HOST:PORT`` or ``unix://PATH``.

        ``token`` is sent as ``Authorization: Bearer <token>`` (a capability token or a signed
        JWT, for servers started with ``--ws-auth``). A refused upgrade raises
        ``websockets.exceptions.InvalidStatus`` (its ``response`` has the status and body).
        Needs the ``websockets`` package.
        """
        try:
            from websockets.asyncio.client import connect, unix_connect
        except ImportError as exc:  # pragma: no cover - websockets is a plugin dependency
            raise ImportError("Client.connect_websocket needs `pip install websockets`") from exc
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        options: dict[str, Any] = {
            "additional_headers": headers,
            "compression": None,
            "max_size": None,
            "ping_interval": None,
        }
        if url.startswith("unix://"):
            websocket = await unix_connect(
                url.removeprefix("unix://"), "ws://localhost/", **options
            )
        else:
            websocket = await connect(url, **options)
        return cls(_WebSocketPipe(websocket))

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Client:
        self._task_group = anyio.create_task_group()
        self._tasks = await self._task_group.__aenter__()
        if self._serve is not None:
            self._tasks.start_soon(self._serve)
        self._tasks.start_soon(self._read_loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return await self._task_group.__aexit__(exc_type, exc, traceback)

    async def aclose(self) -> None:
        """Close our end; the server sees the client leave and ends the session."""
        with anyio.CancelScope(shield=True):
            await self._pipe.aclose()
        with anyio.move_on_after(5):
            await self._closed.wait()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()

    # ------------------------------------------------------------------ requests

    async def initialize(
        self,
        name: str = "codex-core-client",
        version: str = __version__,
        *,
        experimental_api: bool = False,
        opt_out_notification_methods: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The handshake: ``initialize``, then the ``initialized`` notification."""
        capabilities: dict[str, Any] = {"experimentalApi": experimental_api}
        if opt_out_notification_methods:
            capabilities["optOutNotificationMethods"] = list(opt_out_notification_methods)
        result = await self.request(
            "initialize",
            {
                "clientInfo": {"name": name, "title": None, "version": version},
                "capabilities": capabilities,
            },
        )
        await self.notify("initialized")
        return dict(result)

    async def request(
        self, method: str, params: Any = _UNSET, *, timeout: float | None = 60
    ) -> Any:
        """Send a request and return its result; a JSON-RPC error raises ``RpcError``."""
        request_id = next(self._ids)
        send, receive = anyio.create_memory_object_stream[Response](1)
        self._pending[request_id] = send
        message: dict[str, Any] = {"id": request_id, "method": method}
        if params is not _UNSET:
            message["params"] = params
        try:
            await self._pipe.send([dumps(message)])
            with anyio.fail_after(timeout):
                response = await receive.receive()
        except anyio.EndOfStream:
            raise ConnectionError(f"{method}: the server closed the connection") from None
        finally:
            self._pending.pop(request_id, None)
            receive.close()
        if response.error is not None:
            error = response.error
            raise RpcError(error.get("code", 0), str(error.get("message", "")), error.get("data"))
        return response.result

    async def notify(self, method: str, params: Any = _UNSET) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not _UNSET:
            message["params"] = params
        await self._pipe.send([dumps(message)])

    async def send_raw(self, text: str) -> None:
        """Send a frame as is (tests use it to send what no well-behaved client would)."""
        await self._pipe.send([text])

    def on_request(self, method: str, handler: ServerRequestHandler) -> None:
        """Answer the server's ``method`` requests with ``handler(params)``.

        The handler's return value is the result; raising ``RpcError`` answers with that error.
        Requests without a handler are answered with a method-not-found error.
        """
        self._handlers[method] = handler

    # ------------------------------------------------------------------ notifications

    async def notifications(self) -> AsyncIterator[tuple[str, Any]]:
        """Every notification from the server, in order, as ``(method, params)``."""
        async for item in self._notify_receive:
            yield item

    async def wait_for(self, method: str, *, timeout: float = 30) -> Any:
        """Skip notifications until one named ``method`` arrives; return its params."""
        with anyio.fail_after(timeout):
            async for name, params in self.notifications():
                if name == method:
                    return params
        raise ConnectionError(f"connection closed before {method} arrived")

    # ------------------------------------------------------------------ reading

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    frame = await self._pipe.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                self._dispatch(frame)
        finally:
            for send in self._pending.values():
                send.close()
            self._notify_send.close()
            self._closed.set()

    def _dispatch(self, frame: bytes | str) -> None:
        message = parse(frame)
        if isinstance(message, Response):
            send = self._pending.pop(message.id, None)
            if send is not None:
                send.send_nowait(message)
        elif isinstance(message, Notification):
            self._notify_send.send_nowait((message.method, message.params))
        elif isinstance(message, Request):
            assert self._tasks is not None
            self._tasks.start_soon(self._answer, message)
        else:
            log.warning("client: dropped an unparsable frame: %s", message.reason)

    async def _answer(self, request: Request) -> None:
        handler = self._handlers.get(request.method)
        reply: dict[str, Any]
        try:
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"client does not handle {request.method}")
            reply = {"id": request.id, "result": await handler(request.params)}
        except RpcError as exc:
            reply = {"id": request.id, "error": exc.to_wire()}
        except Exception as exc:
            log.exception("client: handler for %s failed", request.method)
            reply = {"id": request.id, "error": {"code": INTERNAL_ERROR, "message": str(exc)}}
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await self._pipe.send([json.dumps(reply)])
