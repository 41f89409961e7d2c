"""Command output as text, decoded the way the reference decodes it (``bytes_to_string_smart``).

UTF-8 is taken as is. Anything else is a legacy encoding more often than garbage (a Latin-1
file in a ``git diff``, a CP1251 console): the reference guesses which with Mozilla's
``chardetng`` (here its Python binding, imported only when output is not UTF-8) and decodes
with ``encoding_rs``, whose ``decode`` honours a byte order mark first; where that decoding
fails, it falls back to UTF-8 with replacement characters.
"""

from __future__ import annotations

import codecs
import functools

#: Windows-1252 bytes for curly quotes, bullet, dashes and ™, which IBM866 reads as Cyrillic.
WINDOWS_1252_PUNCTUATION = frozenset(b"\x91\x92\x93\x94\x95\x96\x97\x99")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))  # fmt: skip


def text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode(data[len(bom) :], encoding) or data.decode("utf-8", "replace")
    return _decode(data, _guess(data)) or data.decode("utf-8", "replace")


def _guess(data: bytes) -> str:
    from chardetng_py import detect  # type: ignore[import-untyped]  # ships no py.typed

    encoding = str(detect(data, allow_utf8=True)).lower()
    if encoding == "ibm866" and _looks_like_windows_1252_punctuation(data):
        return "windows-1252"
    return encoding


def _looks_like_windows_1252_punctuation(data: bytes) -> bool:
    """ASCII words around CP1252 smart punctuation, which chardetng may take for IBM866."""
    punctuation = word = False
    for byte in data:
        if byte >= 0xA0 or (0x80 <= byte <= 0x9F and byte not in WINDOWS_1252_PUNCTUATION):
            return False
        punctuation = punctuation or 0x80 <= byte <= 0x9F
        word = word or (chr(byte).isascii() and chr(byte).isalpha())
    return punctuation and word


def _decode(data: bytes, encoding: str) -> str | None:
    """``data`` in ``encoding`` as the WHATWG decoders read it; None when it does not decode.

    WHATWG's windows-1252 maps the five bytes Python's ``cp1252`` leaves undefined to the C1
    controls of the same value, and its GBK decoder is GB18030's."""
    if encoding in ("gbk", "gb2312"):
        encoding = "gb18030"
    try:
        if encoding == "windows-1252":
            return data.decode("latin-1").translate(_windows_1252())
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


@functools.cache
def _windows_1252() -> dict[int, str]:
    """WHATWG windows-1252 as a table over Latin-1 (both are one byte a character)."""
    undefined = b"\x81\x8d\x8f\x90\x9d"
    return {
        byte: chr(byte) if byte in undefined else bytes([byte]).decode("cp1252")
        for byte in range(0x80, 0xA0)
    }
