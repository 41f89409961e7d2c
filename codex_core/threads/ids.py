"""Thread and turn ids: UUIDv7 strings, time-ordered like the official server's."""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    """A version-7 UUID (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (random >> 68) << 64  # 12 random bits (rand_a)
    value |= 0b10 << 62  # variant
    value |= random & ((1 << 62) - 1)  # 62 random bits (rand_b)
    return str(uuid.UUID(int=value))


def parse_thread_id(text: str) -> str:
    """The canonical form of a client-supplied id, or ``ValueError`` worded like the reference."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValueError(f"invalid thread id: {text!r} is not a UUID") from None


def reference_uuid_error(text: str) -> str | None:
    """Why ``text`` is no UUID, in the words of the reference's UUID parser (its two common
    complaints: a wrong length, else the first character that is no hex digit); ``None`` for a
    UUID. The methods that take an optional thread id as a filter word refusals this way."""
    try:
        uuid.UUID(text)
    except ValueError:
        bad = [i for i, char in enumerate(text) if char not in "0123456789abcdefABCDEF-"]
        if len(text) in (32, 36) and bad:
            return (
                "invalid character: expected an optional prefix of `urn:uuid:` followed by "
                f"[0-9a-fA-F-], found `{text[bad[0]]}` at {bad[0] + 1}"
            )
        return f"invalid length: expected length 32 for simple format, found {len(text)}"
    return None
