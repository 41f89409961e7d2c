"""The test kit's file keyring (``codex_core.testing.file_keyring``): a stand-in for the OS
keyring that only the processes naming it use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from codex_core.testing.file_keyring import FileKeyring, file_keyring_env


def test_viable_only_where_a_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CODEX_TEST_KEYRING_FILE", raising=False)
    assert FileKeyring not in set(KeyringBackend.get_viable_backends())
    monkeypatch.setenv("CODEX_TEST_KEYRING_FILE", str(tmp_path / "k.json"))
    assert FileKeyring in set(KeyringBackend.get_viable_backends())


def test_secrets_round_trip_through_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "keyring.json"
    env = file_keyring_env(secrets)
    assert env["PYTHON_KEYRING_BACKEND"] == "codex_core.testing.file_keyring.FileKeyring"
    monkeypatch.setenv("CODEX_TEST_KEYRING_FILE", env["CODEX_TEST_KEYRING_FILE"])
    ring = FileKeyring()
    assert ring.get_password("svc", "user") is None
    ring.set_password("svc", "user", "s3cret")
    assert json.loads(secrets.read_text()) == {"svc\0user": "s3cret"}
    assert ring.get_password("svc", "user") == "s3cret"
    ring.delete_password("svc", "user")
    assert json.loads(secrets.read_text()) == {}
    with pytest.raises(PasswordDeleteError):
        ring.delete_password("svc", "user")
