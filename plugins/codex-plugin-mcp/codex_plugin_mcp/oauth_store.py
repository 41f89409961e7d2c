"""Where MCP servers' OAuth tokens live, per ``mcp_oauth_credentials_store``: ``auto`` (the OS
keyring, else the file), ``file`` or ``keyring``, in the official server's layouts so the two
servers share logins.

Each server's tokens are keyed ``NAME|<16 hex digits>``: the first digits of the SHA-256 of
``{"type":"http","url":URL,"headers":{}}``. The keyring entry (service ``Codex MCP
Credentials``, account the key) holds ``{"server_name", "url", "client_id", "token_response":
{"access_token", "token_type", "expires_in", "refresh_token", "scope"}, "expires_at"}``; the
fallback file ``$CODEX_HOME/.credentials.json`` (mode 0600) maps each key to ``{"server_name",
"server_url", "issuer", "client_id", "access_token", "expires_at", "refresh_token",
"scopes"}``. ``expires_at`` is in Unix milliseconds.

The functions are synchronous (files, the OS keyring): callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KEYRING_SERVICE = "Codex MCP Credentials"
FALLBACK_FILE = ".credentials.json"
STORE_MODES = ("auto", "file", "keyring")
#: Tokens this close to their expiry are refreshed before use (the reference's skew).
REFRESH_SKEW_MS = 30_000


class CredentialStoreError(OSError):
    """The store could not be read or written; the message says which and why."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def store_key(server_name: str, url: str) -> str:
    payload = json.dumps({"type": "http", "url": url, "headers": {}}, separators=(",", ":"))
    return f"{server_name}|{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


@dataclass
class StoredTokens:
    """One server's OAuth login."""

    server_name: str
    url: str
    client_id: str
    access_token: str
    refresh_token: str | None = None
    #: Unix milliseconds; ``None`` when the server did not say.
    expires_at: int | None = None
    scopes: list[str] = field(default_factory=list)
    issuer: str | None = None

    @property
    def key(self) -> str:
        return store_key(self.server_name, self.url)

    def needs_refresh(self) -> bool:
        return self.expires_at is not None and now_ms() + REFRESH_SKEW_MS >= self.expires_at

    def usable(self) -> bool:
        """Whether these tokens can authorize a request, possibly after a refresh."""
        if not self.client_id.strip():
            return False
        if self.needs_refresh():
            return bool(self.refresh_token and self.refresh_token.strip())
        return bool(self.access_token.strip())

    def file_entry(self) -> dict[str, Any]:
        return {
            "server_name": self.server_name, "server_url": self.url, "issuer": self.issuer,
            "client_id": self.client_id, "access_token": self.access_token,
            "expires_at": self.expires_at, "refresh_token": self.refresh_token,
            "scopes": self.scopes,
        }  # fmt: skip

    @classmethod
    def from_file_entry(cls, entry: dict[str, Any]) -> StoredTokens:
        return cls(
            server_name=str(entry["server_name"]), url=str(entry["server_url"]),
            client_id=str(entry["client_id"]), access_token=str(entry["access_token"]),
            refresh_token=entry.get("refresh_token"), expires_at=entry.get("expires_at"),
            scopes=list(entry.get("scopes") or []), issuer=entry.get("issuer"),
        )  # fmt: skip

    def keyring_document(self) -> dict[str, Any]:
        response: dict[str, Any] = {"access_token": self.access_token, "token_type": "bearer"}
        if self.expires_at is not None:
            response["expires_in"] = max(0, (self.expires_at - now_ms()) // 1000)
        if self.refresh_token:
            response["refresh_token"] = self.refresh_token
        if self.scopes:
            response["scope"] = " ".join(self.scopes)
        return {"server_name": self.server_name, "url": self.url, "client_id": self.client_id,
                "token_response": response, "expires_at": self.expires_at}  # fmt: skip

    @classmethod
    def from_keyring_document(cls, document: dict[str, Any]) -> StoredTokens:
        response = document["token_response"]
        return cls(
            server_name=str(document["server_name"]), url=str(document["url"]),
            client_id=str(document["client_id"]), access_token=str(response["access_token"]),
            refresh_token=response.get("refresh_token"), expires_at=document.get("expires_at"),
            scopes=str(response.get("scope") or "").split(),
        )  # fmt: skip


class FileStore:
    """``$CODEX_HOME/.credentials.json``: every server's tokens, mode 0600, replaced atomically.

    Servers refresh concurrently (each in a worker thread): one lock keeps their
    read-modify-write cycles from losing each other's entries."""

    _lock = threading.Lock()

    def __init__(self, codex_home: Path) -> None:
        self.path = codex_home / FALLBACK_FILE

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            message = f"failed to read credentials file at {self.path}: {exc}"
            raise CredentialStoreError(message) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CredentialStoreError(
                f"failed to parse credentials file at {self.path}: {exc}"
            ) from None
        if not isinstance(data, dict):
            raise CredentialStoreError(f"failed to parse credentials file at {self.path}")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        if not data:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        from codex_core.fs import atomic

        # Tokens: owner-only, whatever mode an older file had.
        atomic.write(self.path, json.dumps(data, separators=(",", ":")), mode=0o600)

    def load(self, server_name: str, url: str) -> StoredTokens | None:
        entry = self._read().get(store_key(server_name, url))
        if not isinstance(entry, dict):
            return None
        try:
            return StoredTokens.from_file_entry(entry)
        except KeyError as exc:
            raise CredentialStoreError(
                f"failed to parse credentials file at {self.path}: missing {exc}"
            ) from None

    def save(self, tokens: StoredTokens) -> None:
        with self._lock:
            data = self._read()
            data[tokens.key] = tokens.file_entry()
            self._write(data)

    def delete(self, server_name: str, url: str) -> bool:
        with self._lock:
            data = self._read()
            removed = data.pop(store_key(server_name, url), None) is not None
            if removed:
                self._write(data)
        return removed


class KeyringStore:
    """The OS keyring through the ``keyring`` library (``PYTHON_KEYRING_BACKEND`` picks one)."""

    def load(self, server_name: str, url: str) -> StoredTokens | None:
        import keyring

        try:
            raw = keyring.get_password(KEYRING_SERVICE, store_key(server_name, url))
        except Exception as exc:
            raise CredentialStoreError(f"failed to read OAuth tokens from keyring: {exc}") from exc
        if raw is None:
            return None
        try:
            return StoredTokens.from_keyring_document(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise CredentialStoreError(
                f"failed to deserialize OAuth tokens from keyring: {exc}"
            ) from None

    def save(self, tokens: StoredTokens) -> None:
        import keyring

        document = json.dumps(tokens.keyring_document(), separators=(",", ":"))
        try:
            keyring.set_password(KEYRING_SERVICE, tokens.key, document)
        except Exception as exc:
            raise CredentialStoreError(f"failed to write OAuth tokens to keyring: {exc}") from exc


class CredentialStore:
    """The store for one ``mcp_oauth_credentials_store`` mode (``auto`` when unset)."""

    def __init__(self, codex_home: Path, mode: str = "auto") -> None:
        self.mode = mode if mode in STORE_MODES else "auto"
        self.file = FileStore(codex_home)
        self.keyring = KeyringStore()

    def load(self, server_name: str, url: str) -> StoredTokens | None:
        if self.mode == "file":
            return self.file.load(server_name, url)
        if self.mode == "keyring":
            return self.keyring.load(server_name, url)
        try:
            found = self.keyring.load(server_name, url)
        except CredentialStoreError as exc:
            log.warning("%s; falling back to %s", exc, self.file.path)
            found = None
        return found if found is not None else self.file.load(server_name, url)

    def save(self, tokens: StoredTokens) -> None:
        if self.mode == "file":
            self.file.save(tokens)
            return
        try:
            self.keyring.save(tokens)
        except CredentialStoreError as exc:
            if self.mode == "keyring":
                raise
            log.warning("%s; falling back to %s", exc, self.file.path)
            self.file.save(tokens)
            return
        # The keyring holds them now: a stale fallback entry must not shadow them.
        try:
            self.file.delete(tokens.server_name, tokens.url)
        except OSError as exc:
            log.warning("failed to remove OAuth tokens from fallback storage: %s", exc)
