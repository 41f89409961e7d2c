"""Where stored logins live, per ``cli_auth_credentials_store``: file, keyring, auto, ephemeral.

Every mode stores the same document, the official server's ``auth.json`` layout::

    {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-..."}
    {"auth_mode": "chatgpt", "OPENAI_API_KEY": null,
     "tokens": {"id_token": "<jwt>", "access_token": "<jwt>", "refresh_token": "...",
                "account_id": "..."},
     "last_refresh": "2025-01-01T00:00:00Z"}

so a login made by either server is read by the other. The keyring entry is the official one
too: service ``Codex Auth``, account ``cli|<first 16 hex digits of sha256(CODEX_HOME)>``.
The stores are synchronous (they touch files and the OS keyring); callers run them in a worker
thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

KEYRING_SERVICE = "Codex Auth"
STORE_MODES = ("file", "keyring", "auto", "ephemeral")


class AuthStoreError(OSError):
    """The store could not be read or written; the message is shown to the client."""


class AuthStore(Protocol):
    mode: str

    def load(self) -> dict[str, Any] | None: ...

    def save(self, auth: dict[str, Any]) -> None: ...

    def delete(self) -> bool: ...


def auth_file(codex_home: Path) -> Path:
    return codex_home / "auth.json"


class FileAuthStore:
    """``$CODEX_HOME/auth.json``, mode 0600, replaced atomically (write a temp file, rename)."""

    mode = "file"

    def __init__(self, codex_home: Path) -> None:
        self.codex_home = codex_home

    def load(self) -> dict[str, Any] | None:
        path = auth_file(self.codex_home)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuthStoreError(f"failed to read {path}: {exc}") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise AuthStoreError(f"failed to parse {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise AuthStoreError(f"failed to parse {path}: not a JSON object")
        return data

    def save(self, auth: dict[str, Any]) -> None:
        from codex_core.fs import atomic

        # A secret: owner-only, whatever mode an older file had.
        atomic.write(auth_file(self.codex_home), json.dumps(auth, indent=2), mode=0o600)

    def delete(self) -> bool:
        try:
            auth_file(self.codex_home).unlink()
        except FileNotFoundError:
            return False
        return True


def keyring_account(codex_home: Path) -> str:
    """The keyring account the official server uses for this ``CODEX_HOME``."""
    try:
        canonical = codex_home.resolve(strict=True)
    except OSError:
        canonical = codex_home
    return "cli|" + hashlib.sha256(str(canonical).encode()).hexdigest()[:16]


def _keyring() -> Any:
    try:
        import keyring
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise AuthStoreError(
            "the `keyring` library is not installed: pip install 'codex-core[keyring]'"
        ) from exc
    return keyring


class KeyringAuthStore:
    """The OS keyring through the ``keyring`` library (``PYTHON_KEYRING_BACKEND`` picks one)."""

    mode = "keyring"

    def __init__(self, codex_home: Path) -> None:
        self.codex_home = codex_home
        self.file = FileAuthStore(codex_home)

    def load(self) -> dict[str, Any] | None:
        try:
            raw = _keyring().get_password(KEYRING_SERVICE, keyring_account(self.codex_home))
        except AuthStoreError as exc:
            raise AuthStoreError(f"failed to load CLI auth from keyring: {exc}") from exc
        except Exception as exc:
            raise AuthStoreError(f"failed to load CLI auth from keyring: {exc}") from exc
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise AuthStoreError(f"failed to deserialize CLI auth from keyring: {exc}") from exc
        return data if isinstance(data, dict) else None

    def save(self, auth: dict[str, Any]) -> None:
        try:
            _keyring().set_password(
                KEYRING_SERVICE,
                keyring_account(self.codex_home),
                json.dumps(auth, separators=(",", ":")),
            )
        except Exception as exc:
            raise AuthStoreError(f"failed to write OAuth tokens to keyring: {exc}") from exc
        # The keyring holds it now: a stale fallback file must not shadow it.
        try:
            self.file.delete()
        except OSError as exc:
            log.warning("failed to remove CLI auth fallback file: %s", exc)

    def delete(self) -> bool:
        removed = False
        try:
            keyring = _keyring()
            try:
                keyring.delete_password(KEYRING_SERVICE, keyring_account(self.codex_home))
                removed = True
            except keyring.errors.PasswordDeleteError:
                pass
        except AuthStoreError:
            pass
        except Exception as exc:
            raise AuthStoreError(f"failed to delete auth from keyring: {exc}") from exc
        return self.file.delete() or removed


class AutoAuthStore:
    """The keyring when it works, else the file (reads fall back the same way)."""

    mode = "auto"

    def __init__(self, codex_home: Path) -> None:
        self.keyring = KeyringAuthStore(codex_home)
        self.file = FileAuthStore(codex_home)

    def load(self) -> dict[str, Any] | None:
        try:
            found = self.keyring.load()
        except AuthStoreError as exc:
            log.warning("%s; falling back to file storage", exc)
            found = None
        return found if found is not None else self.file.load()

    def save(self, auth: dict[str, Any]) -> None:
        try:
            self.keyring.save(auth)
        except AuthStoreError as exc:
            log.warning("%s; falling back to file storage", exc)
            self.file.save(auth)

    def delete(self) -> bool:
        try:
            return self.keyring.delete()
        except AuthStoreError as exc:
            log.warning("%s", exc)
            return self.file.delete()


class EphemeralAuthStore:
    """In memory only, for this server process."""

    mode = "ephemeral"

    def __init__(self) -> None:
        self._auth: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        return None if self._auth is None else dict(self._auth)

    def save(self, auth: dict[str, Any]) -> None:
        self._auth = dict(auth)

    def delete(self) -> bool:
        existed, self._auth = self._auth is not None, None
        return existed


def create_store(codex_home: Path, mode: str | None) -> AuthStore:
    """The store for a ``cli_auth_credentials_store`` value (``file`` when unset)."""
    if mode == "keyring":
        return KeyringAuthStore(codex_home)
    if mode == "auto":
        return AutoAuthStore(codex_home)
    if mode == "ephemeral":
        return EphemeralAuthStore()
    return FileAuthStore(codex_home)
