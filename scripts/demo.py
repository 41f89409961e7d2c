"""A short scripted client session against ``codex-app-server`` over stdio.

Run by ``python3 dev.py demo``. It starts the server exactly as an IDE extension would (a
subprocess speaking newline-delimited JSON-RPC), talks to it through ``codex_core.client``,
and prints what happens at each step.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from codex_core.client import Client
from codex_core.rpc import RpcError


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
            ["codex-app-server", "plugins", "list"], env=env, capture_output=True, text=True
        )
        step("Installed plugins (codex-app-server plugins list)")
        print("   " + listing.stdout.strip().replace("\n", "\n   "))

        async with await Client.spawn(["codex-app-server"], env=env, cwd=scratch) as client:
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
        step("Done", "the server exited when the client closed stdin")


if __name__ == "__main__":
    try:
        anyio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
