"""A keyring backend standing in for the OS keyring in tests: secrets in a JSON file.

Tests of credential storage (``cli_auth_credentials_store``, ``mcp_oauth_credentials_store``)
start the server subprocess with ``env=file_keyring_env(path)`` and read what it stored from
the file, which maps ``"<service>\\0<username>"`` to the password.

A backend class that is imported takes part in keyring's choice of the default backend; this
one is viable only where ``$CODEX_TEST_KEYRING_FILE`` is set, so importing it (for
``file_keyring_env``) changes nothing in the test process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jaraco.classes.properties import classproperty
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

__all__ = ["FileKeyring", "file_keyring_env"]

FILE_VARIABLE = "CODEX_TEST_KEYRING_FILE"


def file_keyring_env(path: Path) -> dict[str, str]:
    """The environment of a server whose keyring is ``FileKeyring`` writing to ``path``."""
    return {"PYTHON_KEYRING_BACKEND": f"{__name__}.FileKeyring", FILE_VARIABLE: str(path)}


class FileKeyring(KeyringBackend):
    """Secrets in the JSON file named by ``$CODEX_TEST_KEYRING_FILE``."""

    @classproperty
    def priority(cls) -> float:
        if FILE_VARIABLE not in os.environ:
            raise RuntimeError(f"${FILE_VARIABLE} is not set")
        return 1

    def _load(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self._file().read_text())
        except FileNotFoundError:
            return {}
        return data

    def _dump(self, data: dict[str, str]) -> None:
        self._file().write_text(json.dumps(data))

    @staticmethod
    def _file() -> Path:
        return Path(os.environ[FILE_VARIABLE])

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\0{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\0{username}"] = password
        self._dump(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}\0{username}", None) is None:
            raise PasswordDeleteError(username)
        self._dump(data)
