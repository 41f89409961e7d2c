"""PKCE (RFC 7636) codes and the OAuth ``state``, generated as the official login server does."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Pkce:
    """The verifier stays here; only the S256 challenge goes into the authorize URL."""

    verifier: str
    challenge: str

    @classmethod
    def generate(cls) -> Pkce:
        verifier = _b64(secrets.token_bytes(64))
        return cls(verifier, _b64(hashlib.sha256(verifier.encode()).digest()))


def new_state() -> str:
    """32 random bytes: the callback must bring it back unchanged."""
    return _b64(secrets.token_bytes(32))
