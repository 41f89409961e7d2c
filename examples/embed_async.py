"""The async embedding API with an approval callback: docs/embedding.md's second example.

Usage: python examples/embed_async.py [CODEX_HOME] (a new temporary home without one).
"""

import sys
import tempfile

import anyio

from codex_core import AsyncCodex, CodexError
from codex_core.protocol.models import CommandExecutionRequestApprovalParams


async def approve(request):
    """Allow commands that delete nothing; refuse the rest, and every other request."""
    if isinstance(request, CommandExecutionRequestApprovalParams):
        print("asked to run:", request.command)
        return "decline" if "rm " in (request.command or "") else "accept"
    return "decline"


async def main(home: str) -> None:
    workdir = tempfile.mkdtemp(prefix="codex-work-")
    config = {"approval_policy": "on-request", "sandbox_mode": "read-only"}
    async with AsyncCodex(home=home, config=config, on_approval=approve) as codex:
        thread = await codex.start_thread(cwd=workdir)
        result = await thread.run("Create an empty file named made.txt.")
        print("answer:", result.text)

        again = await codex.resume_thread(thread.id)
        print("resumed:", again.id == thread.id)
        try:
            await codex.resume_thread("not-a-thread-id")
        except CodexError as error:
            print("error:", error.code, error.message)


home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="codex-home-")
anyio.run(main, home)
