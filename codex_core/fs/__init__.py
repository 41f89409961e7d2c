"""The built-in ``fs/*`` methods (see ``codex_core.fs.methods``)."""
