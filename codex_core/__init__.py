"""codex-core: a kernel for the Codex app-server protocol whose features come from plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from codex_core.embed import AsyncCodex, Codex, CodexError

#: The embedding API, imported on first use: ``import codex_core`` stays as cheap as the server's
#: startup needs it to be (tests/test_startup_imports.py).
_EMBED = ("AsyncCodex", "Codex", "CodexError")


def __getattr__(name: str) -> Any:
    if name in _EMBED:
        import codex_core.embed

        return getattr(codex_core.embed, name)
    raise AttributeError(f"module 'codex_core' has no attribute {name!r}")


__all__ = ["AsyncCodex", "Codex", "CodexError", "__version__"]
