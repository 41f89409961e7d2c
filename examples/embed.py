"""Run a turn from plain (not async) Python: docs/embedding.md's first example.

Usage: python examples/embed.py [CODEX_HOME]. Without an argument it uses a new temporary
CODEX_HOME, never your real ~/.codex; the model provider comes from that home's config.toml
(or set OPENAI_API_KEY for the default one).
"""

import sys
import tempfile

from codex_core import Codex
from codex_core.protocol.models import AgentMessageDeltaNotification, TurnCompletedNotification

home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="codex-home-")
workdir = tempfile.mkdtemp(prefix="codex-work-")

with Codex(home=home, config={"approval_policy": "never"}) as codex:
    thread = codex.start_thread(cwd=workdir)

    result = thread.run("Say hello.")
    print("answer:", result.text)
    print("items:", [item.type for item in result.items])
    if result.usage is not None:
        print("tokens:", result.usage.total.total_tokens)

    for event in thread.stream("And now in French?"):
        if isinstance(event, AgentMessageDeltaNotification):
            print(event.delta, end="", flush=True)
        elif isinstance(event, TurnCompletedNotification):
            print("\nturn", event.turn.status)

    print("threads:", [stored.id for stored in codex.list_threads().data])
