"""OS errors worded the way the official server words them.

The reference server is a Rust binary statically linked against musl. It reports a failed system
call as Rust's ``io::Error`` Display, ``"<strerror> (os error <errno>)"``, and the strerror text
comes from musl, which differs from glibc for many codes (``Filename too long`` against glibc's
``File name too long``, ``I/O error`` against ``Input/output error``). Clients show these messages
to people and tests compare them, so on Linux we use musl's table (read out of the reference
binary, Codex 0.169.0); on other platforms the official build uses the platform's own strerror,
and so do we.
"""

from __future__ import annotations

import errno
import os
import sys

__all__ = ["os_error_message", "strerror"]

# musl's messages in musl's order (src/errno/__strerror.h); a name missing on this platform is
# skipped, and an errno that is not listed gets musl's catch-all.
_MUSL_MESSAGES = (
    ("EILSEQ", "Illegal byte sequence"),
    ("EDOM", "Domain error"),
    ("ERANGE", "Result not representable"),
    ("ENOTTY", "Not a tty"),
    ("EACCES", "Permission denied"),
    ("EPERM", "Operation not permitted"),
    ("ENOENT", "No such file or directory"),
    ("ESRCH", "No such process"),
    ("EEXIST", "File exists"),
    ("EOVERFLOW", "Value too large for data type"),
    ("ENOSPC", "No space left on device"),
    ("ENOMEM", "Out of memory"),
    ("EBUSY", "Resource busy"),
    ("EINTR", "Interrupted system call"),
    ("EAGAIN", "Resource temporarily unavailable"),
    ("ESPIPE", "Invalid seek"),
    ("EXDEV", "Cross-device link"),
    ("EROFS", "Read-only file system"),
    ("ENOTEMPTY", "Directory not empty"),
    ("ECONNRESET", "Connection reset by peer"),
    ("ETIMEDOUT", "Operation timed out"),
    ("ECONNREFUSED", "Connection refused"),
    ("EHOSTDOWN", "Host is down"),
    ("EHOSTUNREACH", "Host is unreachable"),
    ("EADDRINUSE", "Address in use"),
    ("EPIPE", "Broken pipe"),
    ("EIO", "I/O error"),
    ("ENXIO", "No such device or address"),
    ("ENOTBLK", "Block device required"),
    ("ENODEV", "No such device"),
    ("ENOTDIR", "Not a directory"),
    ("EISDIR", "Is a directory"),
    ("ETXTBSY", "Text file busy"),
    ("ENOEXEC", "Exec format error"),
    ("EINVAL", "Invalid argument"),
    ("E2BIG", "Argument list too long"),
    ("ELOOP", "Symbolic link loop"),
    ("ENAMETOOLONG", "Filename too long"),
    ("ENFILE", "Too many open files in system"),
    ("EMFILE", "No file descriptors available"),
    ("EBADF", "Bad file descriptor"),
    ("ECHILD", "No child process"),
    ("EFAULT", "Bad address"),
    ("EFBIG", "File too large"),
    ("EMLINK", "Too many links"),
    ("ENOLCK", "No locks available"),
    ("EDEADLK", "Resource deadlock would occur"),
    ("ENOTRECOVERABLE", "State not recoverable"),
    ("EOWNERDEAD", "Previous owner died"),
    ("ECANCELED", "Operation canceled"),
    ("ENOSYS", "Function not implemented"),
    ("ENOMSG", "No message of desired type"),
    ("EIDRM", "Identifier removed"),
    ("ENOSTR", "Device not a stream"),
    ("ENODATA", "No data available"),
    ("ETIME", "Device timeout"),
    ("ENOSR", "Out of streams resources"),
    ("ENOLINK", "Link has been severed"),
    ("EPROTO", "Protocol error"),
    ("EBADMSG", "Bad message"),
    ("EBADFD", "File descriptor in bad state"),
    ("ENOTSOCK", "Not a socket"),
    ("EDESTADDRREQ", "Destination address required"),
    ("EMSGSIZE", "Message too large"),
    ("EPROTOTYPE", "Protocol wrong type for socket"),
    ("ENOPROTOOPT", "Protocol not available"),
    ("EPROTONOSUPPORT", "Protocol not supported"),
    ("ESOCKTNOSUPPORT", "Socket type not supported"),
    ("ENOTSUP", "Not supported"),
    ("EPFNOSUPPORT", "Protocol family not supported"),
    ("EAFNOSUPPORT", "Address family not supported by protocol"),
    ("EADDRNOTAVAIL", "Address not available"),
    ("ENETDOWN", "Network is down"),
    ("ENETUNREACH", "Network unreachable"),
    ("ENETRESET", "Connection reset by network"),
    ("ECONNABORTED", "Connection aborted"),
    ("ENOBUFS", "No buffer space available"),
    ("EISCONN", "Socket is connected"),
    ("ENOTCONN", "Socket not connected"),
    ("ESHUTDOWN", "Cannot send after socket shutdown"),
    ("EALREADY", "Operation already in progress"),
    ("EINPROGRESS", "Operation in progress"),
    ("ESTALE", "Stale file handle"),
    ("EREMOTEIO", "Remote I/O error"),
    ("EDQUOT", "Quota exceeded"),
    ("ENOMEDIUM", "No medium found"),
    ("EMEDIUMTYPE", "Wrong medium type"),
    ("EMULTIHOP", "Multihop attempted"),
    ("ENOKEY", "Required key not available"),
    ("EKEYEXPIRED", "Key has expired"),
    ("EKEYREVOKED", "Key has been revoked"),
    ("EKEYREJECTED", "Key was rejected by service"),
)
_MUSL_UNKNOWN = "No error information"

_MUSL: dict[int, str] = {
    getattr(errno, name): message for name, message in _MUSL_MESSAGES if hasattr(errno, name)
}
_USE_MUSL = sys.platform.startswith("linux")


def strerror(code: int) -> str:
    """The reference server's text for ``code``: musl's on Linux, the platform's elsewhere."""
    if _USE_MUSL:
        return _MUSL.get(code, _MUSL_UNKNOWN)
    return os.strerror(code)


def os_error_message(exc: OSError) -> str:
    """Rust's ``io::Error`` Display, the message the reference puts in its -32603 errors.

    An ``OSError`` raised by Python itself (no errno) has no Rust counterpart; its own text is
    the most useful thing to show.
    """
    if exc.errno is None:
        return str(exc)
    return f"{strerror(exc.errno)} (os error {exc.errno})"
