"""Base64 decoding that accepts and rejects exactly what the official server does.

The reference decodes ``fs/writeFile``'s ``dataBase64`` with the Rust ``base64`` crate (0.22,
``STANDARD`` engine): standard alphabet, canonical ``=`` padding required, no whitespace, and
no stray bits in the last symbol. Python's decoders are more lenient (``aGl=`` decodes to
``hi``), and the crate's error text (``Invalid symbol 64, offset 0.``) reaches the client, so
valid input takes the fast C path and only rejected input is re-scanned, the way the crate
scans it, to name the same problem at the same offset.
"""

from __future__ import annotations

import binascii

__all__ = ["Base64Error", "decode"]

_PAD = ord("=")
_VALUES = {
    symbol: value
    for value, symbol in enumerate(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    )
}


class Base64Error(ValueError):
    """Input the reference rejects; ``str()`` is the crate's ``DecodeError`` Display."""


def decode(text: str) -> bytes:
    """Decode ``text`` or raise ``Base64Error`` worded like the reference."""
    try:
        encoded = text.encode("ascii")
    except UnicodeEncodeError:
        pass
    else:
        try:
            data = binascii.a2b_base64(encoded, strict_mode=True)
        except binascii.Error:
            pass
        else:
            # Canonical input is exactly what re-encodes to itself.
            if binascii.b2a_base64(data, newline=False) == encoded:
                return data
    raw = text.encode("utf-8", "surrogatepass")
    error = _first_error(raw)
    if error is None:  # unreachable: the crate accepts only canonical input
        return binascii.a2b_base64(raw)
    raise Base64Error(error)


def _first_error(data: bytes) -> str | None:
    """The error the crate reports for ``data``, in the order it checks; None if it is valid.

    The crate decodes every complete 4-byte quad except the last one strictly (padding there
    is just an invalid symbol), then inspects the last, possibly partial, quad for padding
    and trailing bits.
    """
    length = len(data)
    rem = length % 4
    if rem == 1:
        # A lone trailing byte: the crate names it first when it is junk such as a newline.
        last = data[-1]
        if last != _PAD and last not in _VALUES:
            return _invalid_symbol(last, length - 1)
    body = max(length - rem - (4 if rem == 0 else 0), 0)
    for offset in range(body):
        if data[offset] not in _VALUES:
            return _invalid_symbol(data[offset], offset)

    morsels: list[int] = []
    padding = 0
    first_padding = 0
    last_symbol = 0
    for index, byte in enumerate(data[body:]):
        if byte == _PAD:
            if index < 2:
                return _invalid_symbol(byte, body + index)
            if padding == 0:
                first_padding = index
            padding += 1
            continue
        if padding:
            return _invalid_symbol(_PAD, body + first_padding)
        last_symbol = byte
        value = _VALUES.get(byte)
        if value is None:
            return _invalid_symbol(byte, body + index)
        morsels.append(value)

    count = len(morsels)
    if length and count < 2:
        return f"Invalid input length: {body + count}"
    if (padding + count) % 4:
        return "Invalid padding"
    bits = 0
    for value in morsels:
        bits = (bits << 6) | value
    unused = count * 6 - (count * 6 // 8) * 8
    if bits & ((1 << unused) - 1):
        return f"Invalid last symbol {last_symbol}, offset {body + count - 1}."
    return None


def _invalid_symbol(byte: int, offset: int) -> str:
    return f"Invalid symbol {byte}, offset {offset}."
