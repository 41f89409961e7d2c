"""Transports built into the kernel (stdio) and the in-process one used by embedding hosts."""
