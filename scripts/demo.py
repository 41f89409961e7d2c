"""A short scripted client session against ``codex-app-server`` over stdio.

Run by ``python3 dev.py demo``. It starts the server exactly as an IDE extension would (a
subprocess speaking newline-delimited JSON-RPC), talks to it through ``codex_core.client``,
and prints what happens at each step, ending with a turn in which the agent runs a command
after the client approves it. The model is the scripted model server from the test kit,
unless ``OPENAI_API_KEY`` is set: then it is the real OpenAI API (``DEMO_MODEL`` picks the
model, default gpt-5.5).
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from codex_core.cli import server_command
from codex_core.client import Client
from codex_core.rpc import RpcError
from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message

PROMPT = "Show me that you can run commands here: say hello from the shell."


def step(title: str, detail: Any = "") -> None:
    print(f"\n== {title}")
    if detail:
        print(f"   {detail}")


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="codex-demo-") as scratch:
        home = Path(scratch) / "codex-home"
        home.mkdir()
        env = {**os.environ, "CODEX_HOME": str(home)}
        listing = subprocess.run(
            server_command("plugins", "list"), env=env, capture_output=True, text=True
        )
        step("Installed plugins (codex-app-server plugins list)")
        print("   " + listing.stdout.strip().replace("\n", "\n   "))

        with contextlib.ExitStack() as stack:
            args = ["-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="read-only"']
            if os.environ.get("OPENAI_API_KEY"):
                args += ["-c", f'model="{os.environ.get("DEMO_MODEL", "gpt-5.5")}"']
            else:
                model = stack.enter_context(ScriptedModelServer())
                model.add(
                    ModelResponse([function_call("exec_command", {
                        "cmd": "echo hello from the shell", "sandbox_permissions":
                        "require_escalated", "justification": "the demo runs a command"})]),
                    message("The shell says: hello from the shell.",
                            chunks=["The shell says: ", "hello from ", "the shell."]),
                )  # fmt: skip
                args += model.config_args()
                env.update(model.env)
            await session(env, args, scratch)
        step("Done", "the server exited when the client closed stdin")


async def session(env: dict[str, str], args: list[str], scratch: str) -> None:
    async with await Client.spawn(server_command(*args), env=env, cwd=scratch) as client:
        info = await client.initialize("codex-core-demo", "1.0")
        step("initialize", f"userAgent={info['userAgent']!r} codexHome={info['codexHome']}")

        models = await client.request("model/list", {"limit": 3})
        names = ", ".join(model["displayName"] for model in models["data"])
        step("model/list (first page of 3)", f"{names}; nextCursor={models['nextCursor']!r}")

        started = await client.request("thread/start", {"cwd": scratch})
        event = await client.wait_for("thread/started")
        step(
            "thread/start",
            f"thread {started['thread']['id']} model={started['model']} "
            f"sandbox={started['sandbox']['type']}; thread/started notification received "
            f"for {event['thread']['id']}",
        )

        path = str(Path(scratch) / "hello.txt")
        data = base64.b64encode(b"hello from codex-core\n").decode()
        await client.request("fs/writeFile", {"path": path, "dataBase64": data})
        read = await client.request("fs/readFile", {"path": path})
        meta = await client.request("fs/getMetadata", {"path": path})
        text = base64.b64decode(read["dataBase64"]).decode().strip()
        step(
            "fs/writeFile -> fs/readFile -> fs/getMetadata",
            f"{text!r}, isFile={meta['isFile']}",
        )

        await client.send_raw("{this is not json")
        try:
            await client.request("fs/readFile", {"path": "relative.txt"})
        except RpcError as exc:
            step(
                "Bad input gets a clear error (and malformed JSON is dropped)",
                f"{exc.code}: {exc.message}",
            )

        config = await client.request("config/read", {"includeLayers": True})
        layers = [layer["name"]["type"] for layer in config["layers"]]
        step("config/read", f"layers (highest first): {layers}")

        await turn(client, started["thread"]["id"])


async def turn(client: Client, thread_id: str) -> None:
    """One turn: the model asks to run a command, this client approves, the answer streams."""

    async def approve(params: dict[str, object]) -> dict[str, str]:
        step("Approval request from the server", f"run {params.get('command')!r}? -> accept")
        return {"decision": "accept"}

    client.on_request("item/commandExecution/requestApproval", approve)
    step("turn/start", PROMPT)
    text = [{"type": "text", "text": PROMPT, "text_elements": []}]
    await client.request("turn/start", {"threadId": thread_id, "input": text})
    with anyio.fail_after(120):
        async for method, params in client.notifications():
            if method == "item/completed" and params["item"]["type"] == "commandExecution":
                item = params["item"]
                step("Command finished", f"exit {item['exitCode']}: {item['aggregatedOutput']!r}")
            elif method == "item/agentMessage/delta":
                print(params["delta"], end="", flush=True)
            elif method == "item/started" and params["item"]["type"] == "agentMessage":
                print("\n== Agent (streaming)\n   ", end="")
            elif method == "turn/completed":
                step("turn/completed", f"status={params['turn']['status']}")
                return


if __name__ == "__main__":
    try:
        anyio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
