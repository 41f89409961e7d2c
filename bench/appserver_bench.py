#!/usr/bin/env python3
"""Benchmark harness for JSON-RPC "app-servers" speaking the Codex app-server protocol.

Transports: stdio (newline-delimited JSON) and websocket (one JSON message per text
frame). Needs Python 3.11 stdlib + `websockets` (>= 13, the asyncio API).

    appserver_bench.py --server 'codex-peer app-server' --transport stdio
    appserver_bench.py --server 'codex-peer app-server --listen ws://127.0.0.1:{port}' \
        --transport ws --scenario rtt,ws-fanout --repeat 3 --json results.jsonl
    appserver_bench.py --report a.jsonl b.jsonl        # one markdown table, a column per label

Every server process gets a fresh CODEX_HOME (mktemp -d) and a fresh empty cwd, both removed
afterwards; relative paths in --server that name existing files (`python3 ./server.py`) are
made absolute first. Processes are stopped by the PIDs this harness started (the spawned root and
its descendants found through /proc), never by name. Each scenario prints one JSON line on
stdout; progress and errors go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import random
import resource
import shlex
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time

try:
    import websockets
    from websockets.asyncio.client import connect as ws_connect
except ImportError:  # stdio still works
    websockets = None
    ws_connect = None

INIT_PARAMS = {
    "clientInfo": {"name": "bench", "title": None, "version": "1"},
    "capabilities": {"experimentalApi": True},
}
STDIO_LIMIT = 256 * 1024 * 1024  # max line length accepted from a stdio server
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
# JSON-RPC codes that mean "I do not know this method" (Codex answers -32600 "unknown variant").
UNSUPPORTED_HINTS = ("unknown variant", "method not found", "unknown method", "not supported")

ALL_SCENARIOS = ["startup", "rtt", "pipelined", "readfile", "threads", "ws-fanout", "notify"]


class BenchError(Exception):
    pass


class Unsupported(BenchError):
    pass


class RpcError(BenchError):
    def __init__(self, method: str, error: dict):
        self.method = method
        self.error = error
        msg = str(error.get("message", ""))
        super().__init__(f"{method}: error {error.get('code')}: {msg[:300]}")

    @property
    def unsupported(self) -> bool:
        msg = str(self.error.get("message", "")).lower()
        return self.error.get("code") == -32601 or any(h in msg for h in UNSUPPORTED_HINTS)


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def pct(values, p):
    """Nearest-rank percentile (p in 0..100): the ceil(p/100*n)-th smallest value."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def r(x, nd=3):
    return None if x is None else round(x, nd)


# --------------------------------------------------------------------------- /proc helpers


def _proc_stat(pid: int):
    """(ppid, starttime, utime+stime ticks, state) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = data[data.rindex(")") + 2 :].split()
    # rest[0]=state, rest[1]=ppid, rest[11]=utime, rest[12]=stime, rest[19]=starttime
    return int(rest[1]), int(rest[19]), int(rest[11]) + int(rest[12]), rest[0]


def tree(root: int) -> dict[int, int]:
    """{pid: starttime} for root and all its living descendants."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _proc_stat(int(name))
        if st is None:
            continue
        children.setdefault(st[0], []).append(int(name))
        starts[int(name)] = st[1]
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        if p in starts and p not in out:
            out[p] = starts[p]
            todo.extend(children.get(p, []))
    return out


def rss_kb(pids) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def cpu_s(pids) -> float:
    t = 0
    for pid in pids:
        st = _proc_stat(pid)
        if st:
            t += st[2]
    return t / CLK_TCK


def client_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- connections


class Conn:
    """One JSON-RPC client connection; responses are matched by id, notifications kept."""

    def __init__(self, name="conn"):
        self.name = name
        self.pending: dict[int, asyncio.Future] = {}
        self.methods: dict[int, str] = {}
        self.next_id = 1
        self.notifications: list[tuple[float, dict]] = []
        self.keep_notifications = True
        self.notif_event = asyncio.Event()
        self.unexpected = 0
        self.server_requests = 0
        self.closed_exc: BaseException | None = None
        self._replies: set[asyncio.Future] = set()  # declines in flight
        self._reader: asyncio.Task | None = None

    # transport-specific
    async def send_obj(self, obj):  # pragma: no cover - abstract
        raise NotImplementedError

    async def aclose(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _dispatch(self, raw):
        now = time.perf_counter()
        msg = json.loads(raw)
        if "id" in msg and ("result" in msg or "error" in msg) and "method" not in msg:
            fut = self.pending.pop(msg["id"], None)
            if fut is None:
                self.unexpected += 1
            elif not fut.done():
                fut.set_result((now, msg))
        elif "method" in msg and "id" in msg:
            # server -> client request: decline so the server is not left waiting
            self.server_requests += 1
            reply = asyncio.ensure_future(
                self.send_obj(
                    {
                        "id": msg["id"],
                        "error": {"code": -32601, "message": "bench client: unsupported"},
                    }
                )
            )
            self._replies.add(reply)
            reply.add_done_callback(self._replies.discard)
        elif "method" in msg:
            if self.keep_notifications:
                self.notifications.append((now, msg))
                self.notif_event.set()
        else:
            self.unexpected += 1

    def _fail_all(self, exc: BaseException):
        self.closed_exc = exc
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self.pending.clear()
        self.notif_event.set()

    def request_nowait(self, method, params=None) -> tuple[int, asyncio.Future]:
        """Queue a request; returns (id, future resolving to (t_recv, msg)). Caller must send."""
        if self.closed_exc:
            raise self.closed_exc
        rid = self.next_id
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        self.methods[rid] = method
        return rid, fut

    async def request(self, method, params=None, timeout=30.0, raw=False):
        rid, fut = self.request_nowait(method, params)
        # call_later instead of asyncio.wait_for: far cheaper per request on 3.11
        handle = asyncio.get_running_loop().call_later(timeout, self._expire, rid, method, timeout)
        t0 = time.perf_counter()
        try:
            await self.send_obj(
                {"id": rid, "method": method, "params": params if params is not None else {}}
            )
            t1, msg = await fut
        finally:
            handle.cancel()
        if raw:
            return t1 - t0, msg
        if "error" in msg:
            raise RpcError(method, msg["error"])
        return t1 - t0, msg["result"]

    def _expire(self, rid, method, timeout):
        fut = self.pending.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_exception(BenchError(f"{method}: no response within {timeout}s (id {rid})"))

    async def notify(self, method, params=None):
        obj = {"method": method}
        if params is not None:
            obj["params"] = params
        await self.send_obj(obj)

    async def initialize(self, timeout=30.0):
        dt, res = await self.request("initialize", INIT_PARAMS, timeout=timeout)
        await self.notify("initialized")
        return dt, res

    async def wait_notification(self, pred, timeout, since_index=0):
        """(t_recv, msg, index) of the first notification at index >= since_index matching pred."""
        deadline = time.perf_counter() + timeout
        i = since_index
        while True:
            while i < len(self.notifications):
                t, m = self.notifications[i]
                if pred(m):
                    return t, m, i
                i += 1
            if self.closed_exc:
                raise self.closed_exc
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            self.notif_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.notif_event.wait(), left)


class StdioConn(Conn):
    def __init__(self, proc, server, name="stdio"):
        super().__init__(name)
        self.proc = proc
        self.server = server
        self._writes = 0
        self._reader = asyncio.ensure_future(self._read_loop())

    async def _read_loop(self):
        try:
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise BenchError("server closed stdout" + self.server.exit_note())
                if line.strip():
                    self._dispatch(line)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._fail_all(
                e if isinstance(e, BenchError) else BenchError(f"stdio read failed: {e!r}")
            )

    async def send_obj(self, obj):
        w = self.proc.stdin
        try:
            w.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
            self._writes += 1
            if self._writes % 32 == 0 or w.transport.get_write_buffer_size() > 1 << 20:
                await w.drain()
        except (BrokenPipeError, ConnectionResetError) as e:
            raise BenchError(f"server stdin closed: {e!r}" + self.server.exit_note()) from None

    async def flush(self):
        await self.proc.stdin.drain()

    async def aclose(self):
        if self._reader:
            self._reader.cancel()


class WsConn(Conn):
    def __init__(self, ws, name="ws"):
        super().__init__(name)
        self.ws = ws
        self._reader = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def open(cls, uri, timeout=30.0, name="ws"):
        ws = await ws_connect(
            uri,
            max_size=None,
            compression=None,
            ping_interval=None,
            open_timeout=timeout,
            close_timeout=2,
            proxy=None,
            max_queue=None,
        )
        return cls(ws, name)

    async def _read_loop(self):
        try:
            async for msg in self.ws:
                self._dispatch(msg)
            raise BenchError(f"websocket closed by server (code {self.ws.close_code})")
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._fail_all(
                e if isinstance(e, BenchError) else BenchError(f"websocket read failed: {e!r}")
            )

    async def send_obj(self, obj):
        try:
            await self.ws.send(json.dumps(obj, separators=(",", ":")))
        except Exception as e:
            raise BenchError(f"websocket send failed: {e!r}") from None

    async def flush(self):
        pass

    async def aclose(self):
        if self._reader:
            self._reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 3)


# --------------------------------------------------------------------------- server process


class Server:
    """One spawned server process (fresh CODEX_HOME, fresh cwd)."""

    def __init__(self, template: str, transport: str, keep_logs=False):
        self.template = template
        self.transport = transport
        self.keep_logs = keep_logs
        self.proc: asyncio.subprocess.Process | None = None
        self.home = self.cwd = self.logdir = None
        self.port = None
        self.t_spawn = None
        self.known: dict[int, int] = {}  # every pid seen in the tree -> starttime

    def exit_note(self) -> str:
        rc = self.proc.returncode if self.proc else None
        tail = self.stderr_tail()
        return (f" (exit code {rc})" if rc is not None else "") + (
            f"; stderr tail: {tail}" if tail else ""
        )

    def stderr_tail(self, n=600) -> str:
        try:
            with open(os.path.join(self.logdir, "stderr.log"), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - n))
                return f.read().decode(errors="replace").strip().replace("\n", " | ")
        except (OSError, TypeError):
            return ""

    async def start(self):
        self.home = tempfile.mkdtemp(prefix="bench-codex-home-")
        self.cwd = tempfile.mkdtemp(prefix="bench-cwd-")
        self.logdir = tempfile.mkdtemp(prefix="bench-log-")
        cmd = self.template
        if self.transport == "ws":
            if "{port}" not in cmd:
                raise BenchError("ws transport needs {port} in the --server template")
            self.port = free_port()
            cmd = cmd.replace("{port}", str(self.port))
        # The server runs in a fresh empty cwd, so relative paths to files that exist here
        # (e.g. `python3 ./server.py`, `./target/release/srv`) are made absolute.
        argv = [
            os.path.abspath(a) if not os.path.isabs(a) and os.path.isfile(a) else a
            for a in shlex.split(cmd)
        ]
        env = dict(os.environ, CODEX_HOME=self.home, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        with open(os.path.join(self.logdir, "stderr.log"), "wb") as errf:
            self.t_spawn = time.perf_counter()
            try:
                if self.transport == "stdio":
                    self.proc = await asyncio.create_subprocess_exec(
                        *argv,
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=errf,
                        env=env,
                        cwd=self.cwd,
                        limit=STDIO_LIMIT,
                        start_new_session=True,
                    )
                else:
                    self.proc = await asyncio.create_subprocess_exec(
                        *argv,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=errf,
                        stderr=errf,
                        env=env,
                        cwd=self.cwd,
                        start_new_session=True,
                    )
            except FileNotFoundError as e:
                raise BenchError(f"cannot start server: {e}") from None
        self.known[self.proc.pid] = (_proc_stat(self.proc.pid) or (0, 0))[1]
        return self

    def pids(self) -> list[int]:
        t = tree(self.proc.pid)
        self.known.update(t)
        return list(t)

    def rss_kb(self) -> int:
        return rss_kb(self.pids())

    def cpu_s(self) -> float:
        return cpu_s(self.pids())

    @property
    def uri(self):
        return f"ws://127.0.0.1:{self.port}"

    async def connect(self, timeout=30.0, name="conn") -> Conn:
        if self.transport == "stdio":
            return StdioConn(self.proc, self, name)
        return await WsConn.open(self.uri, timeout, name)

    async def wait_ws_ready(self, timeout=30.0) -> Conn:
        """Poll until the websocket handshake succeeds; return that connection."""
        deadline = time.perf_counter() + timeout
        last = None
        while time.perf_counter() < deadline:
            if self.proc.returncode is not None:
                raise BenchError("server exited before listening" + self.exit_note())
            try:
                return await WsConn.open(self.uri, timeout=max(1.0, deadline - time.perf_counter()))
            except (TimeoutError, OSError) as e:
                last = e
                await asyncio.sleep(0.005)
            except Exception as e:
                last = e
                await asyncio.sleep(0.02)
        raise BenchError(
            f"server not accepting websocket on {self.uri} after {timeout}s: {last!r}"
            + self.exit_note()
        )

    async def stop(self, grace=3.0):
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            self.pids()  # final snapshot of the tree
        if self.transport == "stdio" and self.proc.stdin and not self.proc.stdin.is_closing():
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
        self._signal_known(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), grace)
        await asyncio.sleep(0.05)
        self._signal_known(signal.SIGKILL)
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            log(f"warning: pid {self.proc.pid} did not exit after SIGKILL")
        for d in (self.home, self.cwd) + (() if self.keep_logs else (self.logdir,)):
            if d:
                shutil.rmtree(d, ignore_errors=True)

    def _signal_known(self, sig):
        for pid, start in list(self.known.items()):
            st = _proc_stat(pid)
            if st is None or st[1] != start or st[3] == "Z":
                continue  # gone, reaped zombie-only, or pid reused by someone else
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


class Session:
    """async context: a started server + one initialized connection."""

    def __init__(self, args):
        self.args = args
        self.server = Server(args.server, args.transport, args.keep_logs)
        self.conn: Conn | None = None

    async def __aenter__(self):
        await self.server.start()
        try:
            if self.args.transport == "ws":
                self.conn = await self.server.wait_ws_ready(self.args.timeout)
            else:
                self.conn = await self.server.connect()
            await self.conn.initialize(self.args.timeout)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc):
        if self.conn:
            await self.conn.aclose()
        await self.server.stop()


def make_file(dirpath, name, size):
    p = os.path.join(dirpath, name)
    with open(p, "wb") as f:
        f.write(os.urandom(size))
    return p


async def probe(conn, method, params, timeout):
    """First call of a scenario: turn an 'unknown method' error into Unsupported."""
    try:
        return await conn.request(method, params, timeout=timeout)
    except RpcError as e:
        if e.unsupported:
            raise Unsupported(f"server does not support {method}: {e}") from None
        raise


# --------------------------------------------------------------------------- scenarios


async def sc_startup(args):
    n = args.startup_n
    init_ms, ready_ms, listen_ms, rss_mb, nproc = [], [], [], [], []
    for _ in range(n):
        srv = Server(args.server, args.transport, args.keep_logs)
        conn = None
        try:
            await srv.start()
            if args.transport == "ws":
                conn = await srv.wait_ws_ready(args.timeout)
                listen_ms.append((time.perf_counter() - srv.t_spawn) * 1e3)
            else:
                conn = await srv.connect()
            await conn.initialize(args.timeout)
            t_init = time.perf_counter()
            init_ms.append((t_init - srv.t_spawn) * 1e3)
            # A server may answer initialize before it can serve anything else: the reply to
            # the first request after it is when a client can really start.
            await conn.request("thread/loaded/list", {}, timeout=args.timeout)
            ready_ms.append((time.perf_counter() - srv.t_spawn) * 1e3)
            await asyncio.sleep(max(0.0, args.settle - (time.perf_counter() - t_init)))
            pids = srv.pids()
            nproc.append(len(pids))
            rss_mb.append(rss_kb(pids) / 1024)
        finally:
            if conn:
                await conn.aclose()
            await srv.stop()
    out = {
        "n": n,
        "settle_s": args.settle,
        "init_ms_p50": r(statistics.median(init_ms)),
        "init_ms_min": r(min(init_ms)),
        "init_ms_max": r(max(init_ms)),
        "ready_ms_p50": r(statistics.median(ready_ms)),
        "rss_mb_p50": r(statistics.median(rss_mb)),
        "rss_mb_max": r(max(rss_mb)),
        "procs_p50": statistics.median(nproc),
    }
    if listen_ms:
        out["ws_handshake_ms_p50"] = r(statistics.median(listen_ms))
    return out


async def sc_rtt(args):
    async with Session(args) as s:
        c = s.conn
        c.keep_notifications = False
        path = make_file(s.server.cwd, "small.txt", 64)
        await probe(c, "fs/getMetadata", {"path": path}, args.timeout)
        for _ in range(args.warmup):
            await c.request("fs/getMetadata", {"path": path}, args.timeout)
        lat = []
        cpu0, ccpu0 = s.server.cpu_s(), client_cpu_s()
        t0 = time.perf_counter()
        for _ in range(args.rtt_n):
            dt, _res = await c.request("fs/getMetadata", {"path": path}, args.timeout)
            lat.append(dt)
        el = time.perf_counter() - t0
        scpu, ccpu = s.server.cpu_s() - cpu0, client_cpu_s() - ccpu0
        return {
            "n": args.rtt_n,
            "p50_us": r(pct(lat, 50) * 1e6, 1),
            "p90_us": r(pct(lat, 90) * 1e6, 1),
            "p99_us": r(pct(lat, 99) * 1e6, 1),
            "max_us": r(max(lat) * 1e6, 1),
            "rps": r(args.rtt_n / el, 1),
            "elapsed_s": r(el),
            "server_cpu_us_per_req": r(scpu / args.rtt_n * 1e6, 1),
            "client_cpu_us_per_req": r(ccpu / args.rtt_n * 1e6, 1),
        }


async def sc_pipelined(args):
    async with Session(args) as s:
        c = s.conn
        c.keep_notifications = False
        path = make_file(s.server.cwd, "small.txt", 64)
        await probe(c, "fs/getMetadata", {"path": path}, args.timeout)
        n, window = args.pipelined_n, args.window
        sem = asyncio.Semaphore(window)
        got: dict[int, dict] = {}
        sent: list[int] = []
        params = {"path": path}
        errors = 0

        def on_done(rid):
            def cb(fut):
                sem.release()
                if not fut.cancelled() and fut.exception() is None:
                    got[rid] = fut.result()[1]

            return cb

        futs = []
        cpu0, ccpu0 = s.server.cpu_s(), client_cpu_s()
        t0 = time.perf_counter()
        for _ in range(n):
            await sem.acquire()
            if c.closed_exc:
                raise c.closed_exc
            rid, fut = c.request_nowait("fs/getMetadata")
            fut.add_done_callback(on_done(rid))
            futs.append(fut)
            sent.append(rid)
            await c.send_obj({"id": rid, "method": "fs/getMetadata", "params": params})
        await c.flush()
        await asyncio.wait(futs, timeout=max(args.timeout, 60))
        el = time.perf_counter() - t0
        scpu, ccpu = s.server.cpu_s() - cpu0, client_cpu_s() - ccpu0
        missing = [rid for rid in sent if rid not in got]
        codes: dict[str, int] = {}
        sample = None
        for rid in sent:
            m = got.get(rid)
            if m is None:
                continue
            if m.get("id") != rid:
                errors += 1
                codes["wrong-id"] = codes.get("wrong-id", 0) + 1
            elif "error" in m:
                errors += 1
                code = str(m["error"].get("code"))
                codes[code] = codes.get(code, 0) + 1
                sample = sample or str(m["error"].get("message", ""))[:160]
            elif not isinstance(m.get("result"), dict):
                errors += 1
                codes["bad-result"] = codes.get("bad-result", 0) + 1
        if c.closed_exc:
            raise c.closed_exc
        return {
            "n": n,
            "window": window,
            "rps": r(n / el, 1),
            "ok_rps": r((n - errors - len(missing)) / el, 1),
            "elapsed_s": r(el),
            "missing": len(missing),
            "errors": errors,
            "error_codes": codes,
            "error_sample": sample,
            "unexpected_ids": c.unexpected,
            "all_answered": not missing and c.unexpected == 0 and "wrong-id" not in codes,
            "all_ok": not missing and errors == 0 and c.unexpected == 0,
            "server_cpu_us_per_req": r(scpu / n * 1e6, 1),
            "client_cpu_us_per_req": r(ccpu / n * 1e6, 1),
        }


async def sc_readfile(args):
    async with Session(args) as s:
        c = s.conn
        c.keep_notifications = False
        out = {}
        for label, size, reps in (
            ("1MiB", 1 << 20, args.readfile_reps_small),
            ("16MiB", 16 << 20, args.readfile_reps_big),
        ):
            path = make_file(s.server.cwd, f"f{label}.bin", size)
            with open(path, "rb") as f:
                want = f.read()
            _, res = await probe(c, "fs/readFile", {"path": path}, args.timeout)
            if not isinstance(res, dict) or "dataBase64" not in res:
                raise BenchError(f"fs/readFile result has no dataBase64: {str(res)[:200]}")
            if base64.b64decode(res["dataBase64"]) != want:
                raise BenchError(f"fs/readFile {label}: content mismatch")
            lat = []
            for _ in range(reps):
                dt, res = await c.request("fs/readFile", {"path": path}, args.timeout)
                lat.append(dt)
                if len(res.get("dataBase64", "")) != (size + 2) // 3 * 4:
                    raise BenchError(f"fs/readFile {label}: wrong length")
            med = statistics.median(lat)
            out[f"ms_{label}"] = r(med * 1e3)
            out[f"mbps_{label}"] = r(size / 1e6 / med, 1)
            out[f"mbps_{label}_best"] = r(size / 1e6 / min(lat), 1)
            out[f"reps_{label}"] = reps
        out["note"] = "MB/s = file bytes (1e6) / median request latency incl. client JSON parse"
        return out


async def sc_threads(args):
    async with Session(args) as s:
        c = s.conn
        c.keep_notifications = False  # skip thread/started etc.
        await probe(c, "thread/start", {}, args.timeout)
        lat = []
        rss0 = s.server.rss_kb()
        t0 = time.perf_counter()
        for _ in range(args.threads_n):
            dt, res = await c.request("thread/start", {}, args.timeout)
            if not isinstance(res, dict) or "thread" not in res:
                raise BenchError(f"thread/start result has no thread: {str(res)[:200]}")
            lat.append(dt)
        el = time.perf_counter() - t0
        rss1 = s.server.rss_kb()
        return {
            "n": args.threads_n,
            "p50_ms": r(pct(lat, 50) * 1e3),
            "p99_ms": r(pct(lat, 99) * 1e3),
            "max_ms": r(max(lat) * 1e3),
            "elapsed_s": r(el),
            "rss_growth_kb_per_thread": r((rss1 - rss0) / args.threads_n, 1),
        }


async def sc_ws_fanout(args):
    if args.transport != "ws":
        raise Unsupported("ws-fanout needs --transport ws")
    out = {"rtt_per_conn": args.fanout_rtt, "overload_retries": args.overload_retries}
    for c_n in args.fanout:
        async with Session(args) as s:
            path = make_file(s.server.cwd, "small.txt", 64)
            await probe(s.conn, "fs/getMetadata", {"path": path}, args.timeout)
            await asyncio.sleep(args.settle)
            rss0 = s.server.rss_kb()
            errors = 0
            overloaded = 0
            err_samples = []

            async def call(conn, method, params):
                # -32001 "Server overloaded; retry later" is retried with jittered backoff,
                # as a well-behaved client would; each such answer is counted in `overloaded`.
                nonlocal overloaded
                for attempt in range(args.overload_retries + 1):
                    try:
                        return await conn.request(method, params, args.timeout)
                    except RpcError as e:
                        if e.error.get("code") != -32001 or attempt == args.overload_retries:
                            raise
                        overloaded += 1
                        await asyncio.sleep(0.02 * 2**attempt * (0.5 + random.random()))

            t0 = time.perf_counter()

            async def one():
                t = time.perf_counter()
                conn = await WsConn.open(s.server.uri, timeout=args.timeout)
                conn.keep_notifications = False
                try:
                    await call(conn, "initialize", INIT_PARAMS)
                    await conn.notify("initialized")
                except BaseException:
                    await conn.aclose()
                    raise
                return conn, time.perf_counter() - t

            res = await asyncio.gather(*(one() for _ in range(c_n)), return_exceptions=True)
            t_conn = time.perf_counter() - t0
            conns, cl = [], []
            for x in res:
                if isinstance(x, BaseException):
                    errors += 1
                    if len(err_samples) < 3:
                        err_samples.append(repr(x)[:200])
                else:
                    conns.append(x[0])
                    cl.append(x[1])
            await asyncio.sleep(args.settle)
            rss1 = s.server.rss_kb()
            lat = []

            async def work(conn, path=path, lat=lat, err_samples=err_samples):
                nonlocal errors
                for _ in range(args.fanout_rtt):
                    try:
                        t = time.perf_counter()
                        await call(conn, "fs/getMetadata", {"path": path})
                        lat.append(time.perf_counter() - t)
                    except BenchError as e:
                        errors += 1
                        if len(err_samples) < 3:
                            err_samples.append(repr(e)[:200])
                        return

            t1 = time.perf_counter()
            await asyncio.gather(*(work(cn) for cn in conns))
            t_rtt = time.perf_counter() - t1
            total = time.perf_counter() - t0
            await asyncio.gather(*(cn.aclose() for cn in conns), return_exceptions=True)
            k = f"c{c_n}_"
            out.update(
                {
                    k + "connected": len(conns),
                    k + "connect_init_p50_ms": r(pct(cl, 50) * 1e3) if cl else None,
                    k + "connect_init_p99_ms": r(pct(cl, 99) * 1e3) if cl else None,
                    k + "connect_phase_s": r(t_conn),
                    k + "rtt_phase_s": r(t_rtt),
                    k + "rtt_p50_ms": r(pct(lat, 50) * 1e3) if lat else None,
                    k + "rtt_p99_ms": r(pct(lat, 99) * 1e3) if lat else None,
                    k + "total_s": r(total),
                    k + "errors": errors,
                    k + "overloaded_answers": overloaded,
                    k + "rss_before_mb": r(rss0 / 1024, 1),
                    k + "rss_after_mb": r(rss1 / 1024, 1),
                    k + "rss_per_conn_kb": r((rss1 - rss0) / max(1, len(conns)), 1),
                }
            )
            if err_samples:
                out[k + "error_samples"] = err_samples
    return out


async def sc_notify(args):
    async with Session(args) as s:
        c = s.conn
        d = tempfile.mkdtemp(prefix="watch-", dir=s.server.cwd)
        await probe(c, "fs/watch", {"watchId": "w1", "path": d}, args.timeout)
        await asyncio.sleep(0.3)
        lat, misses = [], 0
        for i in range(args.notify_n):
            await asyncio.sleep(args.notify_gap)
            p = os.path.join(d, f"f{i}.txt")
            start_idx = len(c.notifications)
            t0 = time.perf_counter()
            with open(p, "w") as f:
                f.write("x")

            def match(m, p=p):
                if m.get("method") != "fs/changed":
                    return False
                prm = m.get("params") or {}
                return prm.get("watchId") == "w1" and any(
                    str(x) == p or str(x).endswith("/" + os.path.basename(p))
                    for x in (prm.get("changedPaths") or [])
                )

            hit = await c.wait_notification(match, args.notify_timeout, start_idx)
            if hit is None:
                misses += 1
                if i == 0 and not any(m.get("method") == "fs/changed" for _, m in c.notifications):
                    raise Unsupported(
                        f"no fs/changed notification within {args.notify_timeout}s "
                        "(server accepted fs/watch but does not notify)"
                    )
                continue
            lat.append(hit[0] - t0)
        if not lat:
            raise BenchError("no fs/changed notifications received")
        return {
            "n": args.notify_n,
            "received": len(lat),
            "misses": misses,
            "p50_ms": r(pct(lat, 50) * 1e3),
            "p90_ms": r(pct(lat, 90) * 1e3),
            "p99_ms": r(pct(lat, 99) * 1e3),
            "min_ms": r(min(lat) * 1e3),
        }


SCENARIOS = {
    "startup": sc_startup,
    "rtt": sc_rtt,
    "pipelined": sc_pipelined,
    "readfile": sc_readfile,
    "threads": sc_threads,
    "ws-fanout": sc_ws_fanout,
    "notify": sc_notify,
}

# headline metrics for --report: (key, label, unit)
FANOUT_METRICS = [
    ("connect_init_p50_ms", "connect+init p50", "ms"),
    ("connect_init_p99_ms", "connect+init p99", "ms"),
    ("rtt_p50_ms", "fs/getMetadata RTT p50 under fan-out", "ms"),
    ("total_s", "total (connect + RTTs on every conn)", "s"),
    ("errors", "failed after retries", ""),
    ("overloaded_answers", "-32001 overloaded answers", ""),
    ("rss_per_conn_kb", "RSS per connection", "KiB"),
]
HEADLINE = {
    "startup": [
        ("init_ms_p50", "spawn→initialize p50", "ms"),
        ("ready_ms_p50", "spawn→first reply after initialize p50", "ms"),
        ("rss_mb_p50", "idle RSS after init", "MiB"),
        ("ws_handshake_ms_p50", "spawn→first ws handshake p50", "ms"),
    ],
    "rtt": [
        ("p50_us", "fs/getMetadata RTT p50", "µs"),
        ("p99_us", "RTT p99", "µs"),
        ("rps", "sequential", "req/s"),
        ("server_cpu_us_per_req", "server CPU per req", "µs"),
    ],
    "pipelined": [
        ("n", "requests sent", ""),
        ("rps", "pipelined, all answers", "req/s"),
        ("ok_rps", "pipelined, successful answers", "req/s"),
        ("errors", "error answers", ""),
        ("server_cpu_us_per_req", "server CPU per req", "µs"),
        ("all_answered", "every id answered once", ""),
    ],
    "readfile": [
        ("mbps_1MiB", "fs/readFile 1 MiB", "MB/s"),
        ("mbps_16MiB", "fs/readFile 16 MiB", "MB/s"),
    ],
    "threads": [
        ("p50_ms", "thread/start p50", "ms"),
        ("p99_ms", "thread/start p99", "ms"),
        ("rss_growth_kb_per_thread", "RSS growth per thread", "KiB"),
    ],
    "ws-fanout": [],  # filled per connection count found in the results, see headline()
    "notify": [("p50_ms", "write→fs/changed p50", "ms"), ("p99_ms", "write→fs/changed p99", "ms")],
}


def headline(scenario, rows):
    if scenario != "ws-fanout":
        return HEADLINE[scenario]
    counts = sorted(
        {
            int(k[1:].split("_", 1)[0])
            for row in rows
            for k in row
            if k.startswith("c") and k.endswith("_connected") and k[1:].split("_", 1)[0].isdigit()
        }
    )
    return [(f"c{c}_{k}", f"C={c} {lbl}", u) for c in counts for k, lbl, u in FANOUT_METRICS]


async def run_scenario(name, args):
    fn = SCENARIOS[name]
    base = {
        "scenario": name,
        "transport": args.transport,
        "label": args.label,
        "server": args.server,
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "loadavg_1m": os.getloadavg()[0],
    }
    t0 = time.perf_counter()
    try:
        res = await asyncio.wait_for(fn(args), args.scenario_timeout)
        base.update(ok=True, **res)
    except Unsupported as e:
        base.update(ok=False, unsupported=True, error=str(e))
    except TimeoutError:
        base.update(ok=False, error=f"scenario exceeded {args.scenario_timeout}s")
    except BenchError as e:
        base.update(ok=False, error=str(e))
    base["wall_s"] = r(time.perf_counter() - t0, 2)
    return base


# --------------------------------------------------------------------------- report


def _fmt(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def report(paths, out=sys.stdout):
    """One markdown table, one column per label: median over runs (min-max when runs > 1)."""
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    labels = list(dict.fromkeys(str(row.get("label")) for row in rows))  # first-seen order
    groups: dict[tuple, dict[str, list]] = {}
    for row in rows:
        groups.setdefault((row["transport"], row["scenario"]), {}).setdefault(
            str(row.get("label")), []
        ).append(row)
    print("| transport | scenario | metric | " + " | ".join(labels) + " |", file=out)
    print("| --- | --- | --- | " + " | ".join("---:" for _ in labels) + " |", file=out)
    for (tr, sc), by_label in sorted(
        groups.items(), key=lambda kv: (kv[0][0], ALL_SCENARIOS.index(kv[0][1]))
    ):
        all_rows = [x for rs in by_label.values() for x in rs if x.get("ok")]
        status = []
        for lb in labels:
            rs = by_label.get(lb, [])
            ok = [x for x in rs if x.get("ok")]
            if not rs:
                status.append("\N{EN DASH}")
            elif not ok:
                err = rs[-1].get("error", "failed")
                status.append(
                    ("unsupported: " if rs[-1].get("unsupported") else "failed: ") + err[:80]
                )
            else:
                status.append(f"{len(ok)}/{len(rs)} ok")
        print(f"| {tr} | {sc} | runs | " + " | ".join(status) + " |", file=out)
        for key, name, unit in headline(sc, all_rows):
            cells, any_val = [], False
            for lb in labels:
                vals = [
                    x[key] for x in by_label.get(lb, []) if x.get("ok") and x.get(key) is not None
                ]
                if not vals:
                    cells.append("")
                    continue
                any_val = True
                if isinstance(vals[0], bool):
                    cells.append(f"{sum(vals)}/{len(vals)}" if len(vals) > 1 else _fmt(vals[0]))
                    continue
                cell = _fmt(statistics.median(vals))
                if len(vals) > 1:
                    cell += f" ({_fmt(min(vals))}\N{EN DASH}{_fmt(max(vals))})"
                cells.append(cell)
            if any_val:
                u = f" ({unit})" if unit else ""
                print(f"| {tr} | {sc} | {name}{u} | " + " | ".join(cells) + " |", file=out)


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--server", help="server command; for ws it must contain {port}")
    ap.add_argument("--transport", choices=["stdio", "ws"], default="stdio")
    ap.add_argument(
        "--scenario",
        default="all",
        help="comma list of: " + ",".join(ALL_SCENARIOS) + " (default all that apply)",
    )
    ap.add_argument("--json", metavar="OUT", help="append each result line to this file")
    ap.add_argument(
        "--label", help="name for this server in results (default: first word of --server)"
    )
    ap.add_argument("--repeat", type=int, default=1, help="run each scenario this many times")
    ap.add_argument(
        "--report", nargs="+", metavar="JSONL", help="print a markdown table from result files"
    )
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s")
    ap.add_argument("--scenario-timeout", type=float, default=900.0)
    ap.add_argument("--settle", type=float, default=1.0, help="idle wait before RSS samples, s")
    ap.add_argument(
        "--keep-logs", action="store_true", help="keep server stderr logs (paths in errors)"
    )
    ap.add_argument("--startup-n", type=int, default=10)
    ap.add_argument("--rtt-n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--pipelined-n", type=int, default=20000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--readfile-reps-small", type=int, default=20)
    ap.add_argument("--readfile-reps-big", type=int, default=5)
    ap.add_argument("--threads-n", type=int, default=200)
    ap.add_argument(
        "--fanout", default="100,1000", help="comma list of concurrent connection counts"
    )
    ap.add_argument("--fanout-rtt", type=int, default=20)
    ap.add_argument(
        "--overload-retries",
        type=int,
        default=8,
        help="ws-fanout: retries of a -32001 'overloaded' answer (0 = count it as an error)",
    )
    ap.add_argument("--notify-n", type=int, default=50)
    ap.add_argument("--notify-gap", type=float, default=0.1, help="pause between writes, s")
    ap.add_argument("--notify-timeout", type=float, default=5.0)
    a = ap.parse_args(argv)
    if a.report:
        return a
    if not a.server:
        ap.error("--server is required")
    if a.transport == "ws" and ws_connect is None:
        ap.error("ws transport needs the `websockets` package (pip install websockets)")
    a.fanout = [int(x) for x in str(a.fanout).split(",") if x]
    if not a.label:
        a.label = os.path.basename(shlex.split(a.server)[0])
    if a.scenario == "all":
        a.scenarios = [s for s in ALL_SCENARIOS if a.transport == "ws" or s != "ws-fanout"]
    else:
        a.scenarios = [s.strip() for s in a.scenario.split(",") if s.strip()]
        bad = [s for s in a.scenarios if s not in SCENARIOS]
        if bad:
            ap.error(f"unknown scenario(s) {bad}; choose from {ALL_SCENARIOS}")
    return a


async def amain(args):
    nofile = raise_nofile()
    if "ws-fanout" in args.scenarios and nofile < 2 * max(args.fanout) + 64:
        log(f"warning: RLIMIT_NOFILE is {nofile}; ws-fanout may run out of descriptors")
    rc = 0
    for rep in range(args.repeat):
        for name in args.scenarios:
            log(f"{args.label} {args.transport} {name} run {rep + 1}/{args.repeat} ...")
            res = await run_scenario(name, args)
            res["run"] = rep + 1
            line = json.dumps(res, separators=(",", ":"))
            print(line, flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(line + "\n")
            if not res["ok"]:
                verdict = "UNSUPPORTED" if res.get("unsupported") else "FAILED"
                log(f"  {name}: {verdict}: {res['error']}")
                if not res.get("unsupported"):
                    rc = 1
    return rc


def main(argv=None):
    args = parse_args(argv)
    if args.report:
        report(args.report)
        return 0
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
