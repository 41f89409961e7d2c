"""``command/exec`` and its controls, ours against the official server, value by value.

The same script runs against both servers: buffered commands (stdout, stderr, exit codes,
caps, timeouts, cwd and env), a streaming command fed through ``command/exec/write``, a PTY
that is resized, a terminated command, and every refusal a client can reach (codes and
messages). What the servers answer and the bytes they stream are compared whole.

Both run with ``sandbox_mode = "danger-full-access"``: the pinned reference's sandbox needs its
``codex-linux-sandbox`` helper next to the binary, which an npm install started directly does
not have (every sandboxed command fails with ``bwrap: execvp codex-linux-sandbox``), so the
sandbox itself is tested on our side only (``plugins/codex-plugin-shell/tests``).
"""

from __future__ import annotations

import base64
import functools
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing.pytest_plugin import StdioServer, server_command
from codex_core.testing.reference import reference_server_command

REFERENCE = reference_server_command()

pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="the official server is not installed (python -m codex_core.testing.reference)",
)

FULL_ACCESS = ["-c", 'sandbox_mode="danger-full-access"']

BUFFERED: list[dict[str, Any]] = [
    {"command": ["echo", "hi"]},
    {"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]},
    {"command": ["sh", "-c", "basename \"$(pwd)\""], "cwd": "sub"},
    {"command": ["sh", "-c", 'echo "$FOO/${HOME-unset}"'], "env": {"FOO": "bar", "HOME": None}},
    {"command": ["sh", "-c", "echo before; sleep 30"], "timeoutMs": 300},
    {"command": ["sh", "-c", "head -c 3000 /dev/zero | tr '\\0' a; echo e >&2"],
     "outputBytesCap": 10},
    {"command": ["echo", "hi"], "outputBytesCap": 0},
    {"command": ["sh", "-c", "head -c 2000000 /dev/zero | tr '\\0' a | wc -c"]},
    {"command": ["printf", "\\377\\376abc"]},
    # output that is not UTF-8: a legacy encoding is guessed, as the reference guesses it
    {"command": ["printf", "\\351t\\351 caf\\351 na\\357ve"]},
    {"command": ["printf", "\\223quoted\\224 \\226 \\200 \\201"]},
    {"command": ["printf", "\\317\\360\\350\\342\\345\\362"]},
    {"command": ["printf", "\\217\\220\\210 test"]},
    {"command": ["printf", "\\320\\237\\321\\200 \\317\\360\\350"]},
    {"command": ["printf", "\\357\\273\\277bom \\351"]},
    {"command": ["echo", "named"], "processId": "buffered"},
    {"command": ["echo", "x"], "sandboxPolicy": {"type": "dangerFullAccess"}},
    {"command": ["echo", "x"], "sandboxPolicy": {"type": "externalSandbox"}},
    # refusals
    {"command": []},
    {"command": ["true"], "size": {"rows": 1, "cols": 1}},
    {"command": ["true"], "tty": True},
    {"command": ["true"], "streamStdin": True},
    {"command": ["true"], "streamStdoutStderr": True},
    {"command": ["true"], "disableOutputCap": True, "outputBytesCap": 1},
    {"command": ["true"], "disableTimeout": True, "timeoutMs": 1},
    {"command": ["true"], "timeoutMs": -5},
    {"command": ["true"], "tty": True, "processId": "t", "size": {"rows": 0, "cols": 80}},
    {"command": ["true"], "env": {"A": 1}},
    {"command": ["true"], "env": {"A": True}},
    {"command": [], "env": {"A": [1]}},
    {"command": ["/no/such/program"]},
    {"command": ["true"], "cwd": "no/such/dir"},
    {"command": ["true"], "permissionProfile": ":danger-full-access"},
]  # fmt: skip

CONTROL_REFUSALS: list[tuple[str, dict[str, Any]]] = [
    ("command/exec/write", {"processId": "x"}),
    ("command/exec/write", {"processId": "x", "deltaBase64": "!!"}),
    ("command/exec/write", {"processId": "x", "deltaBase64": "aGk="}),
    ("command/exec/write", {"processId": "x", "closeStdin": True}),
    ("command/exec/resize", {"processId": "x", "size": {"rows": 0, "cols": 1}}),
    ("command/exec/resize", {"processId": 'a"b', "size": {"rows": 1, "cols": 1}}),
    ("command/exec/terminate", {"processId": "1"}),
]


def answer(response: dict[str, Any]) -> Any:
    """A response without its id: the result, or the error's code and message."""
    if "error" in response:
        return {"error": [response["error"]["code"], response["error"]["message"]]}
    return response["result"]


def take_stream(server: StdioServer, process_id: str) -> dict[str, str]:
    """Everything streamed for ``process_id`` so far, per stream (out of the inbox)."""
    out: dict[str, bytes] = {}
    for note in list(server.notifications):
        params = note.get("params") or {}
        if note["method"] == "command/exec/outputDelta" and params["processId"] == process_id:
            server.notifications.remove(note)
            data = base64.b64decode(params["deltaBase64"])
            out[params["stream"]] = out.get(params["stream"], b"") + data
            if params["capReached"]:
                out[params["stream"] + " capReached"] = b"yes"
    return {stream: data.decode(errors="replace") for stream, data in sorted(out.items())}


def wait_streamed(server: StdioServer, process_id: str, text: str) -> None:
    def arrived() -> bool:
        return any(
            note["method"] == "command/exec/outputDelta"
            and note["params"]["processId"] == process_id
            and text.encode() in base64.b64decode(note["params"]["deltaBase64"])
            for note in server.notifications
        )

    server.wait_until(arrived, what=f"{text!r} from {process_id}")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def session(argv: list[str], home: Path, cwd: Path) -> dict[str, Any]:
    """The whole script against one server: what it answered and streamed, step by step."""
    home.mkdir(parents=True)
    (cwd / "sub").mkdir(parents=True)
    server = StdioServer([*argv, *FULL_ACCESS], {**os.environ, "CODEX_HOME": str(home)}, cwd)
    seen: dict[str, Any] = {}
    try:
        server.initialize()
        for index, params in enumerate(BUFFERED):
            seen[f"exec {index} {params}"] = answer(server.request("command/exec", params, 30))
        for method, params in CONTROL_REFUSALS:
            seen[f"{method} {params}"] = answer(server.request(method, params))

        def start(params: dict[str, Any]) -> str:
            request_id = f"{params['processId']}-exec"
            server.send({"id": request_id, "method": "command/exec", "params": params})
            return request_id

        # pipes: stdin written, then closed; the reply after the last delta
        script = "echo ready; read line; echo got:$line; echo done >&2; cat"
        pipe = start({"command": ["sh", "-c", script], "processId": "p1",
                      "streamStdin": True, "streamStdoutStderr": True})  # fmt: skip
        wait_streamed(server, "p1", "ready")
        seen["write p1"] = answer(
            server.request("command/exec/write", {"processId": "p1", "deltaBase64": b64("hi\n")})
        )
        wait_streamed(server, "p1", "got:hi")
        last = {"processId": "p1", "deltaBase64": b64("tail"), "closeStdin": True}
        seen["write+close p1"] = answer(server.request("command/exec/write", last))
        seen["p1 exit"] = answer(server.wait_response(pipe))
        seen["p1 streamed"] = take_stream(server, "p1")
        # writes are queued for a child that reads later, or never (it closed its stdin)
        big = base64.b64encode(b"x" * 1_000_000).decode()
        for process_id, script in [
            ("w1", "sleep 1; head -c 5; echo; cat >/dev/null; echo end"),
            ("w2", "exec 0<&-; sleep 1; echo ok"),
        ]:
            queued = start({"command": ["sh", "-c", script], "processId": process_id,
                            "streamStdin": True})  # fmt: skip
            for close in (False, True):
                write = {"processId": process_id, "deltaBase64": big, "closeStdin": close}
                seen[f"write {process_id} {close}"] = answer(
                    server.request("command/exec/write", write)
                )
            seen[f"{process_id} exit"] = answer(server.wait_response(queued))
        # stdin closed twice, then written to, while the command still runs
        closing = start({"command": ["sleep", "30"], "processId": "c1", "streamStdin": True})
        for write in ({"closeStdin": True}, {"closeStdin": True}, {"deltaBase64": b64("x")}):
            seen[f"c1 {write}"] = answer(
                server.request("command/exec/write", {"processId": "c1", **write})
            )
        server.request("command/exec/terminate", {"processId": "c1"})
        seen["c1 exit"] = answer(server.wait_response(closing))
        # a PTY, resized
        script = "[ -t 0 ] && echo isatty; stty size; read x; stty size; echo got:$x"
        tty = start({"command": ["sh", "-c", script], "processId": "t1", "tty": True,
                     "size": {"rows": 30, "cols": 100}})  # fmt: skip
        wait_streamed(server, "t1", "30 100")
        resize = {"processId": "t1", "size": {"rows": 40, "cols": 120}}
        seen["resize t1"] = answer(server.request("command/exec/resize", resize))
        seen["write t1"] = answer(
            server.request("command/exec/write", {"processId": "t1", "deltaBase64": b64("hi\n")})
        )
        seen["t1 exit"] = answer(server.wait_response(tty))
        seen["t1 streamed"] = take_stream(server, "t1")
        # a running command's controls, then terminate
        running = start({"command": ["sh", "-c", "echo up; sleep 30"], "processId": "p2",
                         "streamStdoutStderr": True})  # fmt: skip
        wait_streamed(server, "p2", "up")
        for method, params in [
            ("command/exec/write", {"processId": "p2", "deltaBase64": b64("x")}),
            ("command/exec/resize", {"processId": "p2", "size": {"rows": 5, "cols": 5}}),
            ("command/exec", {"command": ["true"], "processId": "p2"}),
            ("command/exec/terminate", {"processId": "p2"}),
        ]:
            seen[f"running: {method} {params}"] = answer(server.request(method, params))
        seen["p2 exit"] = answer(server.wait_response(running))
        seen["p2 streamed"] = take_stream(server, "p2")
        # a streamed stream that reaches its cap
        flood = ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a"]
        capped = start({"command": flood, "processId": "cap", "streamStdoutStderr": True,
                        "outputBytesCap": 10})  # fmt: skip
        seen["cap exit"] = answer(server.wait_response(capped))
        seen["cap streamed"] = take_stream(server, "cap")
    finally:
        server.close()
    return seen


def test_command_exec_agrees_with_the_reference(tmp_path: Path) -> None:
    assert REFERENCE is not None
    ours = session(server_command(), tmp_path / "ours-home", tmp_path / "ours-cwd")
    theirs = session(REFERENCE, tmp_path / "ref-home", tmp_path / "ref-cwd")
    differing = {
        key: (ours.get(key), theirs.get(key)) for key in theirs if ours.get(key) != theirs[key]
    }
    assert not differing, differing
    assert ours.keys() == theirs.keys()


@functools.cache
def _can_overlay_etc() -> bool:
    """Whether a private mount namespace can be made here (root, Linux), for ``/etc`` files."""
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"]
    return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0


def with_requirements(argv: list[str], workdir: Path, text: str) -> list[str]:
    """``argv`` seeing ``text`` as ``/etc/codex/requirements.toml``, through an overlay on
    ``/etc`` in a private mount namespace (the machine's ``/etc`` is never touched)."""
    upper = workdir / "upper" / "codex"
    upper.mkdir(parents=True)
    (upper / "requirements.toml").write_text(text)
    (workdir / "work").mkdir()
    mount = (
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={workdir / 'upper'},"
        f"workdir={workdir / 'work'} /etc"
    )
    return ["unshare", "-m", "sh", "-c", f"{mount} && exec {shlex.join(argv)}"]


REQUIRED: list[dict[str, Any]] = [
    {"command": ["true"], "sandboxPolicy": {"type": "dangerFullAccess"}},
    {"command": ["true"], "sandboxPolicy": {"type": "workspaceWrite"}},
    {"command": ["true"], "sandboxPolicy": {"type": "externalSandbox"}},
    {"command": ["true"], "permissionProfile": ":danger-full-access"},
    {"command": ["true"], "permissionProfile": ":workspace"},
    {"command": ["true"], "permissionProfile": ":workspace-write"},
    {"command": ["true"], "permissionProfile": "mine"},
]


@pytest.mark.skipif(not _can_overlay_etc(), reason="cannot overlay /etc for the requirements")
def test_requirements_refusals_agree_with_the_reference(tmp_path: Path) -> None:
    """``allowed_sandbox_modes`` refuses a looser sandbox or profile, word for word."""
    assert REFERENCE is not None
    answers = []
    for name, argv in (("ours", server_command()), ("reference", REFERENCE)):
        home = tmp_path / name / "home"
        home.mkdir(parents=True)
        wrapped = with_requirements(
            argv, tmp_path / name, 'allowed_sandbox_modes = ["read-only"]\n'
        )
        server = StdioServer(wrapped, {**os.environ, "CODEX_HOME": str(home)}, tmp_path)
        try:
            server.initialize(experimentalApi=True)
            answers.append([answer(server.request("command/exec", p)) for p in REQUIRED])
        finally:
            server.close()
    assert answers[0] == answers[1]
    assert all("error" in refused for refused in answers[0])
