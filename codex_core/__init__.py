"""codex-core: a kernel for the Codex app-server protocol whose features come from plugins."""

__version__ = "0.1.0"
