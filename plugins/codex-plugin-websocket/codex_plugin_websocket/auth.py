"""``--ws-auth``: who may open a websocket, checked on the upgrade request before any JSON-RPC.

Two modes, spelled and worded as the official server's:

- ``capability-token``: the client sends ``Authorization: Bearer <token>``; the server keeps
  only the token's SHA-256 (``--ws-token-file`` is hashed at startup, ``--ws-token-sha256`` is
  given directly) and compares digests in constant time.
- ``signed-bearer-token``: the bearer is an HS256 JWT signed with the secret in
  ``--ws-shared-secret-file`` (at least 32 bytes); ``exp`` is required, ``nbf``, ``iss``
  (``--ws-issuer``) and ``aud`` (``--ws-audience``) are checked with
  ``--ws-max-clock-skew-seconds`` of tolerance (default 30).

Failures are HTTP 401 with a short ``text/plain`` reason. PyJWT (and the ``cryptography`` it
loads) is imported on the first signed token, not at startup.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CAPABILITY_TOKEN = "capability-token"
SIGNED_BEARER_TOKEN = "signed-bearer-token"
MODES = (CAPABILITY_TOKEN, SIGNED_BEARER_TOKEN)
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 30
MIN_SHARED_SECRET_BYTES = 32

MISSING_TOKEN = "missing websocket bearer token"
INVALID_HEADER = "invalid authorization header"
INVALID_TOKEN = "invalid websocket bearer token"
INVALID_JWT = "invalid websocket jwt"
EXPIRED_JWT = "expired websocket jwt"
IMMATURE_JWT = "websocket jwt is not valid yet"
ISSUER_MISMATCH = "websocket jwt issuer mismatch"
AUDIENCE_MISMATCH = "websocket jwt audience mismatch"


class AuthConfigError(ValueError):
    """A ``--ws-*`` flag problem, worded for the operator."""


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """How upgrade requests are authenticated; ``mode`` ``None`` lets everyone in."""

    mode: str | None = None
    token_sha256: bytes = b""
    shared_secret: bytes = b""
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> AuthPolicy:
        """Build the policy from the parsed ``--ws-*`` flags; raises ``AuthConfigError``."""
        mode = options.get("ws_auth")
        token_file = options.get("ws_token_file")
        token_sha256 = options.get("ws_token_sha256")
        secret_file = options.get("ws_shared_secret_file")
        issuer = options.get("ws_issuer")
        audience = options.get("ws_audience")
        skew = options.get("ws_max_clock_skew_seconds")
        jwt_flags = (secret_file, issuer, audience, skew)
        if mode is None:
            if any(value is not None for value in (token_file, token_sha256, *jwt_flags)):
                raise AuthConfigError(
                    "websocket auth flags require `--ws-auth capability-token` or "
                    "`--ws-auth signed-bearer-token`"
                )
            return cls()
        if mode == CAPABILITY_TOKEN:
            if any(value is not None for value in jwt_flags):
                raise AuthConfigError(
                    "`--ws-shared-secret-file`, `--ws-issuer`, `--ws-audience`, and "
                    "`--ws-max-clock-skew-seconds` require `--ws-auth signed-bearer-token`"
                )
            if token_file is not None and token_sha256 is not None:
                raise AuthConfigError(
                    "`--ws-token-file` and `--ws-token-sha256` are mutually exclusive"
                )
            if token_file is not None:
                digest = hashlib.sha256(read_secret(token_file)).digest()
            elif token_sha256 is not None:
                digest = parse_sha256(token_sha256)
            else:
                raise AuthConfigError(
                    "`--ws-token-file` or `--ws-token-sha256` is required when "
                    "`--ws-auth capability-token` is set"
                )
            return cls(mode=mode, token_sha256=digest)
        if mode == SIGNED_BEARER_TOKEN:
            if token_file is not None or token_sha256 is not None:
                raise AuthConfigError(
                    "`--ws-token-file` and `--ws-token-sha256` require "
                    "`--ws-auth capability-token`, not `signed-bearer-token`"
                )
            if secret_file is None:
                raise AuthConfigError(
                    "`--ws-shared-secret-file` is required when "
                    "`--ws-auth signed-bearer-token` is set"
                )
            secret = read_secret(secret_file)
            if len(secret) < MIN_SHARED_SECRET_BYTES:
                raise AuthConfigError(
                    f"signed websocket bearer secret {_absolute(secret_file)} must be at least "
                    f"{MIN_SHARED_SECRET_BYTES} bytes"
                )
            return cls(
                mode=mode,
                shared_secret=secret,
                issuer=_normalize(issuer),
                audience=_normalize(audience),
                max_clock_skew_seconds=DEFAULT_MAX_CLOCK_SKEW_SECONDS if skew is None else skew,
            )
        raise AuthConfigError(f"unknown --ws-auth mode {mode!r}; expected one of {MODES}")

    def authorize(self, authorization: str | None, *, now: float | None = None) -> str | None:
        """``None`` when the upgrade may proceed, else the reason for a 401."""
        if self.mode is None:
            return None
        if authorization is None:
            return MISSING_TOKEN
        token = bearer_token(authorization)
        if token is None:
            return INVALID_HEADER
        if self.mode == CAPABILITY_TOKEN:
            digest = hashlib.sha256(token.encode()).digest()
            return None if hmac.compare_digest(self.token_sha256, digest) else INVALID_TOKEN
        return self._check_jwt(token, time.time() if now is None else now)

    def _check_jwt(self, token: str, now: float) -> str | None:
        import jwt

        try:
            claims = jwt.decode(
                token,
                self.shared_secret,
                algorithms=["HS256"],
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "require": [],
                },
            )
        except jwt.PyJWTError:
            return INVALID_JWT
        exp, nbf = claims.get("exp"), claims.get("nbf")
        iss, aud = claims.get("iss"), claims.get("aud")
        # The claims' types, as the reference deserializes them (``exp`` is required).
        if not isinstance(exp, int) or isinstance(exp, bool):
            return INVALID_JWT
        if nbf is not None and not _is_int(nbf):
            return INVALID_JWT
        if iss is not None and not isinstance(iss, str):
            return INVALID_JWT
        audiences = [aud] if isinstance(aud, str) else aud
        if audiences is not None and not (
            isinstance(audiences, list) and all(isinstance(a, str) for a in audiences)
        ):
            return INVALID_JWT
        skew = self.max_clock_skew_seconds
        if int(now) > exp + skew:
            return EXPIRED_JWT
        if nbf is not None and int(now) < nbf - skew:
            return IMMATURE_JWT
        if self.issuer is not None and iss != self.issuer:
            return ISSUER_MISMATCH
        if self.audience is not None and self.audience not in (audiences or []):
            return AUDIENCE_MISMATCH
        return None


def bearer_token(header: str) -> str | None:
    """The token of ``Bearer <token>`` (scheme case-insensitive), or ``None`` when malformed."""
    if not header.isascii() or not header.isprintable():
        return None
    scheme, space, token = header.partition(" ")
    token = token.strip()
    if not space or scheme.lower() != "bearer" or not token:
        return None
    return token


def read_secret(path: str | Path) -> bytes:
    """A secret file's content without surrounding whitespace; empty is an error."""
    absolute = _absolute(path)
    try:
        text = absolute.read_text()
    except OSError as exc:
        reason = f"{exc.strerror} (os error {exc.errno})" if exc.strerror else str(exc)
        raise AuthConfigError(
            f"failed to read websocket auth secret {absolute}: {reason}"
        ) from None
    except UnicodeDecodeError as exc:
        raise AuthConfigError(f"failed to read websocket auth secret {absolute}: {exc}") from None
    secret = text.strip()
    if not secret:
        raise AuthConfigError(f"websocket auth secret {absolute} must not be empty")
    return secret.encode()


def parse_sha256(value: str) -> bytes:
    text = value.strip()
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(text) != 64 or len(digest) != 32:
        raise AuthConfigError("--ws-token-sha256 must be a 64-character hex SHA-256 digest")
    return digest


def _absolute(path: str | Path) -> Path:
    return Path(path).expanduser().absolute()


def _normalize(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.strip()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
