"""One client session, whatever transport carries it.

A connection owns the per-client state the protocol defines (initialized or not, capabilities,
opted-out notifications, the id counter of its own server->client requests) and two tasks:
a reader that checks each message in arrival order and starts its handler, and a writer that
drains a bounded outbound queue. Keeping them apart means a client that stops reading only
fills its own queue: its handlers wait, its reader answers new requests with -32001, and no
other connection notices.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from codex_core.plugins import describe, is_cancellation
from codex_core.protocol import envelope
from codex_core.protocol.envelope import Garbage, Notification, Request, RequestId, Response
from codex_core.protocol.wire import to_json
from codex_core.rpc.errors import (
    INTERNAL_ERROR,
    OVERLOADED_MESSAGE,
    SERVER_OVERLOADED,
    ClientErrorResponse,
    RequestCancelled,
    RequestTimeout,
    RpcError,
    invalid_request,
)
from codex_core.rpc.handlers import RequestContext
from codex_core.rpc.router import Call

if TYPE_CHECKING:
    from codex_core.hookspecs import Channel
    from codex_core.kernel import Kernel

log = logging.getLogger(__name__)

_connection_ids = itertools.count(1)

#: Requests a connection may have running at once before it answers -32001 (as the reference).
INFLIGHT_LIMIT = 256
#: Messages queued for one client before notifications to it count as a stalled client.
OUTBOUND_LIMIT = 4096
#: How many queued messages the writer hands the transport in one go.
WRITE_BATCH = 256
#: How long running handlers may still answer after the client stopped sending.
DRAIN_SECONDS = 5.0


@dataclass(slots=True)
class _Pending:
    """A server->client request waiting for the client's answer."""

    method: str
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Any = None
    error: BaseException | None = None


class Connection:
    def __init__(self, kernel: Kernel, channel: Channel, *, answered: bytes | None = None) -> None:
        self.id = next(_connection_ids)
        self.kernel = kernel
        self.channel = channel
        self.initialized = False
        self.client_name: str | None = None
        self.client_version: str | None = None
        self.capabilities: dict[str, Any] = {}
        self.experimental_api = False
        self.opt_out: frozenset[str] = frozenset()
        #: The client asked for our own notifications, outside the official schema (it sent a
        #: ``plugin/install`` with an ``installAttemptId``): a client generated from the
        #: official schema never did, and never receives a method it cannot parse.
        self.wants_extensions = False
        self.closed = False
        self._inflight = 0
        #: Size of the frame being read, while it is held against ``kernel.inbound``.
        self._frame_size = 0
        self._request_ids = itertools.count(0)
        self._pending: dict[RequestId, _Pending] = {}
        self._out_send: MemoryObjectSendStream[str]
        self._out_receive: MemoryObjectReceiveStream[str]
        self._out_send, self._out_receive = anyio.create_memory_object_stream[str](OUTBOUND_LIMIT)
        self._tasks: TaskGroup | None = None
        #: Set when the last running handler ends; made only when someone waits, so a busy
        #: connection does not build an event per request.
        self._idle: anyio.Event | None = None
        self._answered = answered
        #: True once the client has stopped sending (stdin closed, socket gone).
        self.input_ended = False
        self._input_ended: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.channel.peer}>"

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve the client until it goes away; never raises for anything the client sent."""
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                tasks.start_soon(self._write_loop)
                if self._answered is not None:
                    await self._adopt_initialize(self._answered)
                await self._read_loop()
                # The client stopped sending (stdin closed, for instance) but may still read:
                # let running handlers answer, flush, then end.
                self._end_input()
                self._cancel_pending()
                with anyio.move_on_after(DRAIN_SECONDS):
                    await self.wait_idle()
                self._close()
        finally:
            self._end_input()
            self._close()
            with anyio.CancelScope(shield=True):
                await self.channel.aclose()

    def _end_input(self) -> None:
        self.input_ended = True
        if self._input_ended is not None:
            self._input_ended.set()

    def _cancel_pending(self) -> None:
        for pending in self._pending.values():
            pending.error = RequestCancelled(f"{pending.method}: connection closed")
            pending.done.set()
        self._pending.clear()

    def _close(self) -> None:
        """Stop accepting output; the writer flushes what is queued and ends the session."""
        if self.closed:
            return
        self.closed = True
        self._cancel_pending()
        self._out_send.close()

    async def _read_loop(self) -> None:
        inbound = self.kernel.inbound
        while True:
            try:
                frame = await self.channel.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            # The frame counts against the overall inbound budget until we are done with it:
            # now, or when its handler has answered (``_on_request`` hands it over).
            self._frame_size = len(frame)
            inbound.hold(self._frame_size)
            try:
                replies = self._on_frame(frame)
            finally:
                del frame
                inbound.release(self._frame_size)
            for reply in replies:
                await self._send(reply)

    async def _adopt_initialize(self, frame: bytes) -> None:
        """Take on an ``initialize`` the transport answered: its state, and what follows it."""
        self._answered = None
        result, *after = self._on_frame(frame)
        if not self.initialized:  # the early check and the validator disagree: a bug
            log.error("%r: the early initialize was not valid: %s", self, result)
        for reply in after:
            await self._send(reply)

    async def _write_loop(self) -> None:
        try:
            async for first in self._out_receive:
                batch = [first]
                del first  # held until the next message otherwise: a 500 MB reply, say
                while len(batch) < WRITE_BATCH:
                    try:
                        batch.append(self._out_receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                await self.channel.send(batch)
                del batch
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            log.info("%r: stopped writing: %s", self, exc)
        # The client is gone or stopped reading for good: end the session.
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()

    async def _send(self, text: str) -> None:
        """Queue a reply, waiting while the client's queue is full (backpressure)."""
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await self._out_send.send(text)

    # ------------------------------------------------------------------ inbound

    def _on_frame(self, frame: bytes | str) -> list[str]:
        message = envelope.parse(frame)
        if isinstance(message, Request):
            try:
                return self._on_request(message)
            except Exception as exc:  # a bug on the way to a handler must not end the session
                log.exception("%r: %s failed before reaching its handler", self, message.method)
                error = RpcError(INTERNAL_ERROR, f"{message.method} failed: {exc}")
                return [envelope.encode_error(message.id, error.to_wire())]
        if isinstance(message, Response):
            self._on_response(message)
        elif isinstance(message, Notification):
            self._on_notification(message)
        elif isinstance(message, Garbage):
            log.warning("%r: dropped a message: %s", self, message.reason)
        return []

    def _on_request(self, request: Request) -> list[str]:
        router = self.kernel.router
        try:
            params = router.parse_params(request)
            if request.method == "initialize":
                return self._initialize(request.id, params)
            if not self.initialized:
                raise invalid_request("Not initialized")
            router.gate(self, request)
            call = router.call(request.method, params)
        except RpcError as exc:
            return [envelope.encode_error(request.id, exc.to_wire())]
        if self._inflight >= INFLIGHT_LIMIT:
            error = {"code": SERVER_OVERLOADED, "message": OVERLOADED_MESSAGE}
            return [envelope.encode_error(request.id, error)]
        self._inflight += 1
        assert self._tasks is not None
        held, self._frame_size = self._frame_size, 0
        self._tasks.start_soon(self._run_handler, request, call, held)
        return []

    async def _run_handler(self, request: Request, call: Call, held: int) -> None:
        context = RequestContext(self.kernel, self, request.method, request.id)
        try:
            await self._answer(request, call, context)
        finally:
            del request, call, context
            self.kernel.inbound.release(held)

    async def _answer(self, request: Request, call: Call, context: RequestContext) -> None:
        try:
            reply = envelope.encode_result(
                request.id, _result_json(await call.handler(context, call.params))
            )
        except RpcError as exc:
            reply = envelope.encode_error(request.id, exc.to_wire())
        except BaseException as exc:  # sys.exit(), a stray CancelledError, ...: still a reply
            if is_cancellation(exc):
                raise
            log.exception("%r: %s (plugin %s) failed", self, request.method, call.plugin)
            error = RpcError(
                INTERNAL_ERROR, f"{request.method} failed in plugin {call.plugin}: {describe(exc)}"
            )
            reply = envelope.encode_error(request.id, error.to_wire())
        try:
            await self._send(reply)
            for callback in context.after_reply:
                callback()
        finally:
            self._inflight -= 1
            if not self._inflight and self._idle is not None:
                self._idle.set()
                self._idle = None

    def _initialize(self, request_id: RequestId, params: Any) -> list[str]:
        if self.initialized:
            raise invalid_request("Already initialized")
        self.initialized = True
        self.client_name = params.client_info.name
        self.client_version = params.client_info.version
        capabilities = params.capabilities
        if capabilities is not None:
            self.capabilities = capabilities.model_dump(by_alias=True)
            self.experimental_api = bool(capabilities.experimental_api)
            self.opt_out = frozenset(capabilities.opt_out_notification_methods or ())
        result = self.kernel.initialize_result(self.client_name, self.client_version)
        replies = [envelope.encode_result(request_id, to_json(result))]
        for method, notification in self.kernel.startup_notifications():
            if method not in self.opt_out:
                replies.append(envelope.encode_notification(method, to_json(notification)))
        return replies

    def _on_response(self, response: Response) -> None:
        pending = self._pending.pop(response.id, None)
        if pending is None:
            log.info("%r: dropped a response to unknown request id %r", self, response.id)
            return
        if response.error is not None:
            error = response.error
            pending.error = ClientErrorResponse(
                pending.method,
                error.get("code", 0),
                str(error.get("message", "")),
                error.get("data"),
            )
        else:
            pending.result = response.result
        pending.done.set()

    def _on_notification(self, notification: Notification) -> None:
        # `initialized` carries nothing the server needs; unknown notifications are ignored.
        if notification.method != "initialized":
            log.debug("%r: ignored notification %s", self, notification.method)

    # ------------------------------------------------------------------ outbound

    def notify(self, method: str, params: Any = None) -> None:
        """Send a notification unless the client opted out of it.

        Never waits: a client whose queue is full has stopped reading, and waiting on it would
        stall whoever is broadcasting. Such a client is disconnected instead.
        """
        if self.closed or not self.initialized or method in self.opt_out:
            return
        text = envelope.encode_notification(method, None if params is None else to_json(params))
        try:
            self._out_send.send_nowait(text)
        except anyio.WouldBlock:
            log.warning("%r: client is not reading; closing the connection", self)
            self.close()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def notify_and_wait(self, method: str, params: Any = None) -> None:
        """Send a notification, waiting while the client's queue is full.

        For a stream only this client asked for and whose producer can be slowed down (the
        output of its ``command/exec``): the producer waits for the client, as in the
        reference, instead of filling memory or getting the client disconnected.
        """
        if self.closed or not self.initialized or method in self.opt_out:
            return
        await self._send(
            envelope.encode_notification(method, None if params is None else to_json(params))
        )

    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        on_id: Callable[[RequestId], None] | None = None,
    ) -> Any:
        """Ask the client something and wait for its answer.

        Raises ``ClientErrorResponse`` when the client answers with an error (its code, message
        and data intact), ``RequestCancelled`` when the connection closes first, and
        ``RequestTimeout`` after ``timeout`` seconds. ``on_id`` learns the request's id before it
        is sent (``serverRequest/resolved`` names it).
        """
        if self.closed:
            raise RequestCancelled(f"{method}: connection closed")
        request_id = next(self._request_ids)
        if on_id is not None:
            on_id(request_id)
        pending = self._pending[request_id] = _Pending(method)
        params_json = None if params is None else to_json(params)
        await self._send(envelope.encode_request(request_id, method, params_json))
        try:
            with anyio.fail_after(timeout):
                await pending.done.wait()
        except TimeoutError:
            raise RequestTimeout(f"{method}: no answer within {timeout} s") from None
        finally:
            self._pending.pop(request_id, None)
        if pending.error is not None:
            raise pending.error
        return pending.result

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run a background task for this client; it is cancelled when the connection ends.

        For work that outlives the request that started it, such as an ``fs/watch``.
        """
        if self._tasks is None or self.closed:
            raise RuntimeError(f"{self!r} is not running")
        self._tasks.start_soon(func, *args)

    @property
    def busy(self) -> bool:
        """Whether a request handler is running."""
        return self._inflight > 0

    async def wait_idle(self) -> None:
        """Wait until no request handler is running (at once when none is)."""
        while self._inflight:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    async def wait_input_ended(self) -> None:
        """Wait until the client has stopped sending (at once when it has).

        Running handlers still get their answer out while the connection drains; work that
        lives only as long as its client (a ``command/exec`` process, as in the reference)
        ends here instead of when the drain is over.
        """
        if self.input_ended:
            return
        if self._input_ended is None:
            self._input_ended = anyio.Event()
        await self._input_ended.wait()

    def finish(self) -> None:
        """End the session gently: stop reading, write what is queued, then close."""
        self._close()

    def close(self) -> None:
        """End the session; in-flight handlers are cancelled, pending requests cancelled."""
        self._close()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()


def _result_json(result: Any) -> str:
    """A handler's result as JSON; a function so no local of ``_run_handler`` keeps the result
    (a 667 MB ``fs/readFile`` text) alive next to the reply built from it."""
    return to_json({} if result is None else result)
