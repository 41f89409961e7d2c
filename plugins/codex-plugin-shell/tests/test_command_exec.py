"""``command/exec`` and its controls, over stdio against a real server and real processes."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from codex_plugin_shell import sandbox

from codex_core.testing.pytest_plugin import StdioServer

FULL_ACCESS = ("-c", 'sandbox_mode="danger-full-access"')


def start(factory: Any, *args: str, **capabilities: Any) -> StdioServer:
    server: StdioServer = factory(*args)
    server.initialize(**capabilities)
    return server


def submit(server: StdioServer, method: str, params: dict[str, Any]) -> str:
    """Send a request without waiting for its reply (``command/exec`` replies at the exit)."""
    request_id = f"req-{time.monotonic_ns()}"
    server.send({"id": request_id, "method": method, "params": params})
    return request_id


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def streamed(server: StdioServer, process_id: str, stream: str = "stdout") -> bytes:
    """Every byte streamed so far for ``process_id`` on ``stream`` (taken out of the inbox)."""
    mine = [
        note
        for note in server.notifications
        if note["method"] == "command/exec/outputDelta"
        and note["params"]["processId"] == process_id
        and note["params"]["stream"] == stream
    ]
    for note in mine:
        server.notifications.remove(note)
    return b"".join(base64.b64decode(note["params"]["deltaBase64"]) for note in mine)


def wait_output(server: StdioServer, process_id: str, text: bytes, stream: str = "stdout") -> bytes:
    seen = b""

    def arrived() -> bool:
        nonlocal seen
        seen += streamed(server, process_id, stream)
        return text in seen

    server.wait_until(arrived, what=f"{text!r} on {process_id}'s {stream}")
    return seen


# ---------------------------------------------------------------------- buffered


def test_buffered_command_replies_with_both_streams_and_its_exit_code(
    codex_server_factory: Any, tmp_path: Path
) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    result = server.result(
        "command/exec", {"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}
    )
    assert result == {"exitCode": 3, "stdout": "out\n", "stderr": "err\n"}
    # the cwd is relative to the server's; env overrides are merged, null unsets
    (tmp_path / "cwd" / "sub").mkdir()
    result = server.result(
        "command/exec",
        {"command": ["sh", "-c", 'pwd; echo "$FOO/${HOME-unset}"'], "cwd": "sub",
         "env": {"FOO": "bar", "HOME": None}},
    )  # fmt: skip
    assert result["stdout"] == f"{tmp_path / 'cwd' / 'sub'}\nbar/unset\n"
    # output that is not UTF-8 is read in the legacy encoding it looks like (Latin-1, CP1251,
    # CP1252 quotes...) and, where none fits, with replacement characters
    decoded = {
        "\\351t\\351 caf\\351": "été café",
        "\\317\\360\\350\\342\\345\\362": "Привет",
        "\\223quoted\\224": "\u201cquoted\u201d",
        "\\377\\376abc": "\ufffd\ufffdabc",
    }
    for raw, text in decoded.items():
        assert server.result("command/exec", {"command": ["printf", raw]})["stdout"] == text
    server.barrier()
    assert not [n for n in server.notifications if n["method"] == "command/exec/outputDelta"]


def test_timeout_kills_the_command_and_keeps_its_output(codex_server_factory: Any) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    began = time.monotonic()
    result = server.result(
        "command/exec", {"command": ["sh", "-c", "echo before; sleep 30"], "timeoutMs": 300}
    )
    assert result == {"exitCode": 124, "stdout": "before\n", "stderr": ""}
    assert time.monotonic() - began < 10


def test_output_is_capped_per_stream_and_the_rest_is_drained(codex_server_factory: Any) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    script = "head -c 3000000 /dev/zero | tr '\\0' a; echo err >&2"
    result = server.result("command/exec", {"command": ["sh", "-c", script], "outputBytesCap": 10})
    assert result == {"exitCode": 0, "stdout": "a" * 10, "stderr": "err\n"}
    default = server.result("command/exec", {"command": ["sh", "-c", script]}, timeout=30)
    assert len(default["stdout"]) == 1024 * 1024
    whole = server.result(
        "command/exec", {"command": ["sh", "-c", script], "disableOutputCap": True}, timeout=30
    )
    assert len(whole["stdout"]) == 3_000_000


# ---------------------------------------------------------------------- streaming


def test_streaming_pipes_take_stdin_and_reply_after_the_last_delta(
    codex_server_factory: Any,
) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    script = "echo ready; read line; echo got:$line; echo done >&2; cat"
    request = submit(
        server,
        "command/exec",
        {"command": ["sh", "-c", script], "processId": "p1",
         "streamStdin": True, "streamStdoutStderr": True},
    )  # fmt: skip
    wait_output(server, "p1", b"ready\n")
    assert (
        server.result("command/exec/write", {"processId": "p1", "deltaBase64": b64("hi\n")}) == {}
    )
    wait_output(server, "p1", b"got:hi\n")
    done = {"processId": "p1", "deltaBase64": b64("tail"), "closeStdin": True}
    assert server.result("command/exec/write", done) == {}
    response = server.wait_response(request)
    # streamed bytes are not repeated in the reply, which comes after all of them
    assert response["result"] == {"exitCode": 0, "stdout": "", "stderr": ""}
    assert streamed(server, "p1") == b"tail" and streamed(server, "p1", "stderr") == b"done\n"


def test_writes_are_answered_before_the_child_reads_them(
    codex_server_factory: Any, tmp_path: Path
) -> None:
    """A megabyte (more than a pipe holds) to a child that is not reading yet: the write is
    queued and answered, and the child gets all of it, in order, once it reads."""
    server = start(codex_server_factory, *FULL_ACCESS)
    go = tmp_path / "go"
    script = f"while [ ! -e {go} ]; do sleep 0.01; done; wc -c"
    request = submit(
        server,
        "command/exec",
        {"command": ["sh", "-c", script], "processId": "w", "streamStdin": True},
    )
    chunk = base64.b64encode(b"x" * 1_000_000).decode()
    assert server.result("command/exec/write", {"processId": "w", "deltaBase64": chunk}) == {}
    last = {"processId": "w", "deltaBase64": b64("tail"), "closeStdin": True}
    assert server.result("command/exec/write", last) == {}
    go.touch()
    response = server.wait_response(request)
    assert response["result"] == {"exitCode": 0, "stdout": "1000004\n", "stderr": ""}


def test_a_streamed_stream_stops_at_the_cap_with_cap_reached(codex_server_factory: Any) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    script = "head -c 100000 /dev/zero | tr '\\0' a"
    server.result(
        "command/exec",
        {"command": ["sh", "-c", script], "processId": "cap",
         "streamStdoutStderr": True, "outputBytesCap": 10},
    )  # fmt: skip
    deltas = [
        n["params"] for n in server.notifications if n["method"] == "command/exec/outputDelta"
    ]
    assert b"".join(base64.b64decode(d["deltaBase64"]) for d in deltas) == b"a" * 10
    assert deltas[-1]["capReached"] is True and all(not d["capReached"] for d in deltas[:-1])


def test_a_tty_command_runs_on_a_resizable_terminal(codex_server_factory: Any) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    script = "[ -t 0 ] && echo isatty; stty size; read x; stty size; echo got:$x"
    request = submit(
        server,
        "command/exec",
        {"command": ["sh", "-c", script], "processId": "t1", "tty": True,
         "size": {"rows": 30, "cols": 100}},
    )  # fmt: skip
    wait_output(server, "t1", b"isatty\r\n30 100\r\n")
    resize = {"processId": "t1", "size": {"rows": 40, "cols": 120}}
    assert server.result("command/exec/resize", resize) == {}
    assert (
        server.result("command/exec/write", {"processId": "t1", "deltaBase64": b64("hi\n")}) == {}
    )
    response = server.wait_response(request)
    assert response["result"] == {"exitCode": 0, "stdout": "", "stderr": ""}
    # the terminal echoes what was typed; both streams arrive as stdout
    assert streamed(server, "t1") == b"hi\r\n40 120\r\ngot:hi\r\n"
    # without a size a PTY is 24x80
    server.result("command/exec", {"command": ["stty", "size"], "processId": "t2", "tty": True})
    assert streamed(server, "t2") == b"24 80\r\n"


# ---------------------------------------------------------------------- controls


def test_terminate_kills_the_command(codex_server_factory: Any) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    request = submit(
        server,
        "command/exec",
        {"command": ["sh", "-c", "trap '' TERM; echo up; sleep 30"], "processId": "b1",
         "streamStdoutStderr": True},
    )  # fmt: skip
    wait_output(server, "b1", b"up\n")
    assert server.result("command/exec/terminate", {"processId": "b1"}) == {}
    response = server.wait_response(request)
    assert response["result"] == {"exitCode": 137, "stdout": "", "stderr": ""}
    unknown = server.error("command/exec/terminate", {"processId": "b1"})
    assert unknown == {"code": -32600, "message": 'no active command/exec for process id "b1"'}


def test_controls_refuse_what_the_command_was_not_started_for(codex_server_factory: Any) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    request = submit(
        server,
        "command/exec",
        {"command": ["sh", "-c", "echo up; sleep 30"], "processId": "p2",
         "streamStdoutStderr": True},
    )  # fmt: skip
    wait_output(server, "p2", b"up\n")
    write = {"processId": "p2", "deltaBase64": b64("x")}
    assert server.error("command/exec/write", write) == {
        "code": -32600, "message": "stdin streaming is not enabled for this command/exec"
    }  # fmt: skip
    resize = {"processId": "p2", "size": {"rows": 5, "cols": 5}}
    assert server.error("command/exec/resize", resize) == {
        "code": -32600, "message": "failed to resize PTY: process is not attached to a PTY"
    }  # fmt: skip
    again = server.error("command/exec", {"command": ["true"], "processId": "p2"})
    assert again == {"code": -32600, "message": 'duplicate active command/exec process id: "p2"'}
    server.result("command/exec/terminate", {"processId": "p2"})
    assert server.wait_response(request)["result"]["exitCode"] == 137
    # stdin closed, then written to
    request = submit(
        server, "command/exec", {"command": ["sleep", "30"], "processId": "c", "streamStdin": True}
    )
    server.result("command/exec/write", {"processId": "c", "closeStdin": True})
    closed = server.error("command/exec/write", {"processId": "c", "deltaBase64": b64("x")})
    assert closed == {"code": -32600, "message": "stdin is already closed"}
    assert server.result("command/exec/write", {"processId": "c", "closeStdin": True}) == {}
    server.result("command/exec/terminate", {"processId": "c"})
    server.wait_response(request)


@pytest.mark.parametrize(
    ("method", "params", "error"),
    [
        ("command/exec", {"command": []}, (-32600, "command must not be empty")),
        ("command/exec", {"command": ["true"], "size": {"rows": 1, "cols": 1}},
         (-32602, "command/exec size requires tty: true")),
        ("command/exec", {"command": ["true"], "disableOutputCap": True, "outputBytesCap": 1},
         (-32602, "command/exec cannot set both outputBytesCap and disableOutputCap")),
        ("command/exec", {"command": ["true"], "disableTimeout": True, "timeoutMs": 1},
         (-32602, "command/exec cannot set both timeoutMs and disableTimeout")),
        ("command/exec", {"command": ["true"], "timeoutMs": -1},
         (-32602, "command/exec timeoutMs must be non-negative, got -1")),
        ("command/exec", {"command": ["true"], "tty": True, "processId": "t",
                          "size": {"rows": 0, "cols": 80}},
         (-32602, "command/exec size rows and cols must be greater than 0")),
        ("command/exec", {"command": ["true"], "streamStdoutStderr": True},
         (-32600, "command/exec tty or streaming requires a client-supplied processId")),
        ("command/exec", {"command": ["true"], "env": {"A": 1}},
         (-32600, "Invalid request: invalid type: integer `1`, expected a string")),
        ("command/exec", {"command": ["/no/such/program"]},
         (-32603, "failed to spawn command: No such file or directory (os error 2)")),
        ("command/exec", {"command": ["true"], "cwd": "no/such/dir"},
         (-32603, "failed to spawn command: No such file or directory (os error 2)")),
        ("command/exec/write", {"processId": "x"},
         (-32602, "command/exec/write requires deltaBase64 or closeStdin")),
        ("command/exec/write", {"processId": "x", "deltaBase64": "!!"},
         (-32602, "invalid deltaBase64: Invalid symbol 33, offset 0.")),
        ("command/exec/write", {"processId": "x", "deltaBase64": "aGk="},
         (-32600, 'no active command/exec for process id "x"')),
        ("command/exec/resize", {"processId": "x", "size": {"rows": 0, "cols": 1}},
         (-32602, "command/exec size rows and cols must be greater than 0")),
        ("command/exec/resize", {"processId": 'a"b', "size": {"rows": 1, "cols": 1}},
         (-32600, 'no active command/exec for process id "a\\"b"')),
        ("command/exec/terminate", {"processId": "1"},
         (-32600, 'no active command/exec for process id "1"')),
    ],
)  # fmt: skip
def test_refusals(
    codex_server_factory: Any, method: str, params: dict[str, Any], error: tuple[int, str]
) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    assert server.error(method, params) == {"code": error[0], "message": error[1]}


def test_permission_profile_is_experimental(codex_server_factory: Any) -> None:
    server = start(codex_server_factory)
    params = {"command": ["true"], "permissionProfile": ":danger-full-access"}
    refused = server.error("command/exec", params)
    assert (
        refused["message"] == "command/exec.permissionProfile requires experimentalApi capability"
    )
    server = start(codex_server_factory, experimentalApi=True)
    assert server.result("command/exec", params)["exitCode"] == 0
    # the built-in profiles are the sandbox modes; :workspace may write in the cwd
    touch = {"command": ["sh", "-c", "touch made && echo made"]}
    made = server.result("command/exec", {**touch, "permissionProfile": ":workspace"})
    assert made == {"exitCode": 0, "stdout": "made\n", "stderr": ""}
    if sandbox.bwrap() is not None:
        refused = server.result("command/exec", {**touch, "permissionProfile": ":read-only"})
        assert "Read-only file system" in refused["stderr"]
    for profile, reason in [
        (":workspace-write", "default_permissions refers to unknown built-in profile "
                             "`:workspace-write`"),
        ("mine", "default_permissions requires a `[permissions]` table"),
    ]:  # fmt: skip
        refused = server.error("command/exec", {**params, "permissionProfile": profile})
        assert refused == {"code": -32600, "message": f"invalid permission profile: {reason}"}
    both = {**params, "sandboxPolicy": {"type": "dangerFullAccess"}}
    assert server.error("command/exec", both) == {
        "code": -32600, "message": "`permissionProfile` cannot be combined with `sandboxPolicy`"
    }  # fmt: skip


# ---------------------------------------------------------------------- sandbox, lifetime


@pytest.mark.skipif(sandbox.bwrap() is None, reason="bubblewrap cannot run here")
def test_commands_run_in_the_configured_sandbox(codex_server_factory: Any, tmp_path: Path) -> None:
    server = start(codex_server_factory)  # read-only by default
    touch = ["sh", "-c", "touch made && echo made"]
    refused = server.result("command/exec", {"command": touch})
    assert refused["exitCode"] == 1 and "Read-only file system" in refused["stderr"]
    assert not (tmp_path / "cwd" / "made").exists()
    # reading still works: /diff's git commands run read-only
    assert server.result("command/exec", {"command": ["cat", "/etc/hostname"]})["exitCode"] == 0
    for policy in ({"type": "workspaceWrite"}, {"type": "dangerFullAccess"}):
        made = server.result("command/exec", {"command": touch, "sandboxPolicy": policy})
        assert made == {"exitCode": 0, "stdout": "made\n", "stderr": ""}


def test_a_client_leaving_ends_its_commands(codex_server_factory: Any, tmp_path: Path) -> None:
    server = start(codex_server_factory, *FULL_ACCESS)
    pidfile = tmp_path / "pid"
    submit(
        server,
        "command/exec",
        {"command": ["sh", "-c", f"echo $$ > {pidfile}; echo up; sleep 60"], "processId": "bg",
         "streamStdoutStderr": True, "disableTimeout": True},
    )  # fmt: skip
    wait_output(server, "bg", b"up\n")
    pid = int(pidfile.read_text())
    server.close()
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the command outlived its client"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie nobody reaped yet is gone too
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class WsClient:
    """One websocket client, read synchronously: replies by id, notifications kept in order."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.notifications: list[dict[str, Any]] = []
        self.replies: dict[Any, dict[str, Any]] = {}
        self.send("init", "initialize", {"clientInfo": {"name": "pytest", "version": "1"}})
        self.reply("init")
        self.ws.send(json.dumps({"method": "initialized"}))

    def send(self, request_id: str, method: str, params: dict[str, Any]) -> None:
        self.ws.send(json.dumps({"id": request_id, "method": method, "params": params}))

    def _take(self, deadline: float) -> None:
        message = json.loads(self.ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        if "id" in message and "method" not in message:
            self.replies[message["id"]] = message
        elif "method" in message:
            self.notifications.append(message)

    def reply(self, request_id: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while request_id not in self.replies:
            self._take(deadline)
        return self.replies.pop(request_id)

    def wait_delta(self, process_id: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not any(
            note["method"] == "command/exec/outputDelta"
            and note["params"]["processId"] == process_id
            for note in self.notifications
        ):
            self._take(deadline)


def test_process_ids_belong_to_their_connection(
    codex_ws_server_factory: Any, tmp_path: Path
) -> None:
    """Two clients may use the same id at once, neither reaches the other's command, and a
    client that disconnects takes its commands with it while the server goes on."""
    server = codex_ws_server_factory(*FULL_ACCESS)
    with server.connect() as first_ws, server.connect() as second_ws:
        check_connection_scoping(WsClient(first_ws), WsClient(second_ws), tmp_path)


def check_connection_scoping(first: WsClient, second: WsClient, tmp_path: Path) -> None:
    pids = {}
    for name, client in (("first", first), ("second", second)):
        script = f"echo $$ > {tmp_path / name}; echo up; sleep 60"
        client.send(
            f"{name}-exec", "command/exec",
            {"command": ["sh", "-c", script], "processId": "same",
             "streamStdoutStderr": True, "disableTimeout": True},
        )  # fmt: skip
        client.wait_delta("same")
        pids[name] = int((tmp_path / name).read_text())
    # the second terminates its own "same"; the first's is untouched
    second.send("kill", "command/exec/terminate", {"processId": "same"})
    assert second.reply("kill")["result"] == {}
    assert second.reply("second-exec")["result"]["exitCode"] == 137
    assert _alive(pids["first"])
    first.ws.close()
    deadline = time.monotonic() + 10
    while _alive(pids["first"]):
        assert time.monotonic() < deadline, "the command outlived its client's connection"
        time.sleep(0.05)
    second.send("after", "command/exec", {"command": ["echo", "still serving"]})
    assert second.reply("after")["result"]["stdout"] == "still serving\n"


def test_requirements_limit_the_sandbox_a_client_may_ask_for(
    codex_server_factory: Any, tmp_path: Path
) -> None:
    """``allowed_sandbox_modes`` in the administrator's requirements.toml refuses a looser
    ``sandboxPolicy`` or ``permissionProfile``, in the reference's words."""
    system = tmp_path / "etc-codex"
    system.mkdir()
    (system / "requirements.toml").write_text('allowed_sandbox_modes = ["read-only"]\n')
    server: StdioServer = codex_server_factory(env={"CODEX_CORE_SYSTEM_CONFIG_DIR": str(system)})
    server.initialize(experimentalApi=True)
    source = f"(set by {system / 'requirements.toml'})"
    for kind, name in [("dangerFullAccess", "DangerFullAccess"),
                       ("workspaceWrite", "WorkspaceWrite"),
                       ("externalSandbox", "ExternalSandbox")]:  # fmt: skip
        refused = server.error(
            "command/exec", {"command": ["true"], "sandboxPolicy": {"type": kind}}
        )
        assert refused == {
            "code": -32600,
            "message": f"invalid sandbox policy: invalid value for `sandbox_mode`: `{name}` is "
            f"not in the allowed set [ReadOnly] {source}",
        }
    profile = {"command": ["true"], "permissionProfile": ":danger-full-access"}
    refused = server.error("command/exec", profile)
    assert refused["code"] == -32600
    assert refused["message"].startswith(
        "invalid permission profile: Configured value for `permission_profile` is disallowed by "
        "requirements; falling back to required value Managed {"
    )
    assert refused["message"].endswith(
        "Details: invalid value for `sandbox_mode`: `DangerFullAccess` is not in the allowed set "
        f"[ReadOnly] {source}"
    )
    read_only = {"command": ["echo", "ok"], "sandboxPolicy": {"type": "readOnly"}}
    assert server.result("command/exec", read_only)["stdout"] == "ok\n"
