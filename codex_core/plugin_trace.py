"""``CODEX_CORE_TRACE_PLUGINS=1``: every plugin hook call, as it happens, on stderr.

What datasette's ``DATASETTE_TRACE_PLUGINS`` does, for the same reason: to see which plugin
answered which hook with what, and how long it took, without a debugger. It is a pluggy hook
call monitor (``add_hookcall_monitoring``), so it sees exactly what pluggy runs; the kernel
calls each plugin's implementation separately, so each call is one plugin's. Only stderr is
written: over stdio, stdout is the JSON-RPC stream. Loaded only when the variable is set.
"""

from __future__ import annotations

import pprint
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

import pluggy

#: Wider than a terminal is fine; deeper structures are elided (``...``) to keep lines readable.
WIDTH = 100
DEPTH = 3


class HookTracer:
    """Writes one block per hook call: hook, plugin, time, arguments, then result or error."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        #: Start times of the calls in progress (a hook may call another hook).
        self._started: list[float] = []

    def before(
        self, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]
    ) -> None:
        self._started.append(time.perf_counter())

    def after(
        self,
        outcome: pluggy.Result[Any],
        hook_name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, object],
    ) -> None:
        elapsed = time.perf_counter() - self._started.pop()
        plugins = [impl.plugin_name for impl in impls if not (impl.wrapper or impl.hookwrapper)]
        wrappers = [
            impl.plugin_name
            for impl in impls
            if (impl.wrapper or impl.hookwrapper) and impl.plugin is not None
        ]
        heading = f"{hook_name}: plugin {', '.join(plugins)}"
        if wrappers:
            heading += f" (wrapped by {', '.join(wrappers)})"
        arguments = {name: _argument(value) for name, value in kwargs.items()}
        lines = [f"{heading}, {elapsed * 1000:.3f} ms", f"    arguments: {_shown(arguments)}"]
        if outcome.exception is not None:
            error = outcome.exception
            lines.append(f"    raised: {type(error).__name__}: {error}")
        else:
            # The kernel calls one implementation at a time: pluggy's list then holds its result,
            # or nothing for None.
            results = outcome.get_result()
            single = isinstance(results, list) and len(results) <= 1
            result = (results or [None])[0] if single else results
            lines.append(f"    result: {_shown(result)}")
        self._write(lines)

    def awaited(self, hook_name: str, plugin: str, seconds: float, error: str | None) -> None:
        """What the awaitable a plugin's hook returned did (the call itself only made it)."""
        outcome = f"raised {error}" if error is not None else "done"
        self._write([f"{hook_name}: plugin {plugin}, awaited {seconds * 1000:.3f} ms: {outcome}"])

    def _write(self, lines: list[str]) -> None:
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()


def _shown(value: object) -> str:
    text = pprint.pformat(value, width=WIDTH, depth=DEPTH, compact=True)
    return text.replace("\n", "\n" + " " * 8)


class _Summary:
    """Stands in for a mapping argument in the trace: its size, not its contents."""

    def __init__(self, value: Mapping[Any, Any]) -> None:
        self._text = f"<{type(value).__name__} of {len(value)} keys>"

    def __repr__(self) -> str:
        return self._text


def _argument(value: object) -> object:
    """A mapping argument (the effective config of ``codex_config_loaded``) is shown by its
    size only: it may hold secrets (a provider's bearer token, an MCP server's headers), and
    a trace is meant to be pasted into bug reports."""
    return _Summary(value) if isinstance(value, Mapping) else value
