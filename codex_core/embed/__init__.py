"""The high-level embedding API: a codex-core kernel in the host's process, typed, sync or async.

::

    from codex_core import Codex

    with Codex(home="/tmp/demo") as codex:
        thread = codex.start_thread(cwd=".")
        result = thread.run("Summarize README.md")
        print(result.text, result.usage)

``AsyncCodex`` has the same shape for async code. Requests are built from, and answers parsed
into, the generated protocol models (``codex_core.protocol.models``); ``codex.client`` is the
low-level client underneath. See docs/embedding.md.
"""

from codex_core.embed.asynchronous import AsyncCodex, AsyncThread
from codex_core.embed.blocking import Codex, Thread
from codex_core.embed.errors import CodexError, TurnFailedError
from codex_core.embed.results import RunResult

__all__ = [
    "AsyncCodex",
    "AsyncThread",
    "Codex",
    "CodexError",
    "RunResult",
    "Thread",
    "TurnFailedError",
]
