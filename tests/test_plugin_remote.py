"""The remote plugin catalog methods (``plugin/skill/read``, ``plugin/reconcile``,
``plugin/share/*``), end to end and against the reference.

As in ``test_account_backend.py``: both servers run the same requests, each in its own
CODEX_HOME (signed out, an API key or a ChatGPT ``auth.json``), with ``chatgpt_base_url`` at one
loopback stand-in of the backend that records what it is asked; results (errors included) and
the requests the catalog saw must be the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_account_backend import (  # the fixtures too: same stand-in, same homes
    API_KEY_AUTH,
    CHATGPT_AUTH,
    TOKEN,
    Backend,
    Differ,
    backend,
    both,
    free_port,
)

from codex_core.testing import Reply
from codex_core.testing.pytest_plugin import StdioServer, needs_reference
from codex_core.testing.session import NO_PARAMS

__all__ = ["backend", "both"]  # fixtures this module's tests use


def plugin_folder(tmp_path: Path) -> str:
    folder = tmp_path / "my-plugin"
    (folder / ".codex-plugin").mkdir(parents=True, exist_ok=True)
    (folder / ".codex-plugin" / "plugin.json").write_text('{"name": "my-plugin"}')
    return str(folder)


def requests_for(tmp_path: Path) -> list[tuple[str, Any]]:
    return [
        (
            "plugin/skill/read",
            {"remoteMarketplaceName": "m", "remotePluginId": "p", "skillName": "s"},
        ),
        ("plugin/share/save", {"pluginPath": plugin_folder(tmp_path)}),
        ("plugin/share/save", {"pluginPath": str(tmp_path / "absent")}),
        (
            "plugin/share/updateTargets",
            {
                "remotePluginId": "rp-1",
                "discoverability": "PRIVATE",
                "shareTargets": [{"principalId": "u1", "principalType": "user", "role": "editor"}],
            },
        ),
        ("plugin/share/list", {}),
        ("plugin/share/checkout", {"remotePluginId": "rp-1"}),
        ("plugin/share/delete", {"remotePluginId": "rp-1"}),
        ("plugin/reconcile", {}),
        ("plugin/reconcile", {"reason": "startup"}),
    ]


#: Malformed params, refused before anything else.
MALFORMED: list[tuple[str, Any]] = [
    ("plugin/skill/read", {}),
    ("plugin/share/save", {"pluginPath": "relative"}),
    ("plugin/share/checkout", {}),
    ("plugin/share/delete", {}),
    ("plugin/share/updateTargets", {"remotePluginId": "x"}),
    ("plugin/share/list", NO_PARAMS),
    ("plugin/reconcile", NO_PARAMS),
]


def catalog_requests(backend: Backend) -> list[tuple[str, str, dict[str, str], Any]]:
    """What the methods asked the catalog. Installed plugins are left out: the reference also
    reconciles them in the background at startup (see ``reconciled``). An upload request is
    kept without its bundle's name and size, which differ with the packer."""
    seen = []
    for request in backend.server.requests:
        if request.path.endswith(("/wham/accounts/check", "/ps/plugins/installed")):
            continue
        assert request.headers.get("authorization") == f"Bearer {TOKEN}"
        assert request.headers.get("chatgpt-account-id") == "acct-1"
        body = request.json if request.body else None
        if request.path.endswith("/upload-url"):
            body = {"mime_type": body["mime_type"], "fields": sorted(body)}
        seen.append((request.method, request.path, request.query, body))
    return seen


def reconciled(backend: Backend) -> int:
    """How many times the installed plugins were read with their download URLs."""
    return sum(
        request.path.endswith("/ps/plugins/installed")
        and request.query == {"limit": "200", "includeDownloadUrls": "true"}
        for request in backend.server.requests
    )


@needs_reference
@pytest.mark.parametrize("auth", [None, API_KEY_AUTH], ids=["signed-out", "api-key"])
def test_without_a_chatgpt_login(both: Differ, backend: Backend, auth: Any, tmp_path: Path) -> None:
    """Refused (reconciliation finds nothing to do); the catalog is never asked."""
    ours, theirs = both(requests_for(tmp_path) + MALFORMED, backend.url, auth)
    assert ours.results == theirs.results
    suffix = "" if auth is None else "; api key auth is not supported"
    assert ours.results[4] == {
        "error": {
            "code": -32600,
            "message": "list remote plugin shares: chatgpt authentication required for remote "
            f"plugin catalog{suffix}",
        }
    }
    assert ours.results[7] == {
        "changedPlugins": [],
        "failedRemotePluginIds": [],
        "failedMaterializationRemotePluginIds": [],
    }
    assert catalog_requests(backend) == []


@needs_reference
def test_catalog_refusals(both: Differ, backend: Backend, tmp_path: Path) -> None:
    """A 404, then a 500, from every catalog path: the error names the URL and the status;
    the save of a missing folder is refused before the catalog is asked."""
    requests = requests_for(tmp_path)
    ours, theirs = both(requests + MALFORMED, backend.url, CHATGPT_AUTH)
    assert ours.results == theirs.results
    url = backend.url.rstrip("/")
    assert ours.results[6]["error"] == {
        "code": -32600,
        "message": f"delete remote plugin share: remote plugin catalog request to "
        f'{url}/public/plugins/workspace/rp-1 failed with status 404 Not Found: {{"detail": '
        '"Not Found"}',
    }
    assert ours.results[2]["error"]["message"].endswith("expected a plugin directory")
    seen = catalog_requests(backend)
    half = len(seen) // 2
    assert seen[:half] == seen[half:]
    assert [(method, path) for method, path, *_ in seen[:half]] == [
        ("POST", "/backend-api/public/plugins/workspace/upload-url"),
        ("PUT", "/backend-api/ps/plugins/rp-1/shares"),
        ("GET", "/backend-api/ps/plugins/workspace/created"),
        ("GET", "/backend-api/ps/plugins/rp-1"),
        ("DELETE", "/backend-api/public/plugins/workspace/rp-1"),
    ]
    assert seen[0][3] == {
        "mime_type": "application/gzip",
        "fields": ["filename", "mime_type", "size_bytes"],
    }
    for path in (
        "/public/plugins/workspace/upload-url",
        "/ps/plugins/rp-1/shares",
        "/ps/plugins/workspace/created",
        "/ps/plugins/rp-1",
        "/public/plugins/workspace/rp-1",
        "/ps/plugins/installed",
    ):
        backend.answer(path, Reply(500, {"detail": "boom"}))
    ours, theirs = both(requests[3:], backend.url, CHATGPT_AUTH)
    assert ours.results == theirs.results
    assert [result["error"]["code"] for result in ours.results] == [-32603] * 6


@needs_reference
def test_catalog_answers(both: Differ, backend: Backend, tmp_path: Path) -> None:
    """What the catalog can answer without a plugin bundle: targets changed, a deletion, no
    shares, nothing installed; and answers missing what they must hold."""
    principals = [
        {"principal_type": "user", "principal_id": "u1", "role": "editor", "name": "Ann", "x": 1},
        {"principal_type": "workspace", "principal_id": "w", "role": "owner", "name": "W"},
    ]
    backend.answer(
        "/ps/plugins/rp-1/shares",
        Reply(200, {"principals": principals, "discoverability": "PRIVATE", "extra": True}),
        Reply(200, {}),
    )
    backend.answer("/public/plugins/workspace/rp-1", Reply(204, b""), Reply(200, {}))
    backend.answer("/ps/plugins/workspace/created", Reply(200, {"plugins": [], "pagination": {}}))
    backend.answer("/ps/plugins/installed", Reply(200, {"plugins": [], "pagination": {}}))
    update = requests_for(tmp_path)[3]
    requests = [
        update,
        update,
        ("plugin/share/delete", {"remotePluginId": "rp-1"}),
        ("plugin/share/delete", {"remotePluginId": "rp-1"}),
        ("plugin/share/list", {}),
        ("plugin/reconcile", {"reason": "manual"}),
    ]
    ours, theirs = both(requests, backend.url, CHATGPT_AUTH)
    assert ours.results == theirs.results
    assert ours.results[0] == {
        "principals": [
            {"principalType": "user", "principalId": "u1", "role": "editor", "name": "Ann"},
            {"principalType": "workspace", "principalId": "w", "role": "owner", "name": "W"},
        ],
        "discoverability": "PRIVATE",
    }
    assert ours.results[1]["error"]["code"] == -32603
    assert ours.results[2] == {}
    assert "failed with status 200 OK" in ours.results[3]["error"]["message"]
    assert ours.results[4] == {"data": []}
    seen = catalog_requests(backend)
    half = len(seen) // 2
    assert seen[:half] == seen[half:]
    assert seen[0] == (
        "PUT",
        "/backend-api/ps/plugins/rp-1/shares",
        {},
        {
            "discoverability": "PRIVATE",
            "targets": [{"principal_type": "user", "principal_id": "u1", "role": "editor"}],
        },
    )
    assert reconciled(backend) >= 2  # ours once, the reference at least once


@needs_reference
def test_unreachable_catalog(both: Differ, tmp_path: Path) -> None:
    ours, theirs = both(
        requests_for(tmp_path), f"http://127.0.0.1:{free_port()}/backend-api", CHATGPT_AUTH
    )
    assert ours.results == theirs.results
    assert ours.results[4]["error"]["message"].startswith(
        "list remote plugin shares: failed to send remote plugin catalog request to "
    )


def test_what_codex_core_cannot_do_yet_says_so(
    backend: Backend, codex_home: Path, start_server: Any, tmp_path: Path
) -> None:
    """Where the reference goes on to move a plugin bundle (upload, download, install), ours
    stops with an internal error naming what it does not do yet."""
    (codex_home / "config.toml").write_text(f'chatgpt_base_url = "{backend.url}"\n')
    (codex_home / "auth.json").write_text(json.dumps(CHATGPT_AUTH))
    listed = {"plugins": [{"id": "rp-1"}], "pagination": {}}
    backend.answer("/ps/plugins/workspace/created", Reply(200, listed))
    backend.answer("/ps/plugins/installed", Reply(200, listed))
    backend.answer("/ps/plugins/rp-1", Reply(200, {"id": "rp-1"}))
    backend.answer("/public/plugins/workspace/upload-url", Reply(200, {"file_id": "f-1"}))
    backend.rewind()
    server: StdioServer = start_server()
    server.initialize()
    expected = {
        ("plugin/share/list", "{}"): "list remote plugin shares: codex-core does not read "
        "remote plugin shares yet",
        ("plugin/reconcile", "{}"): "failed to reconcile remote installed plugins: codex-core "
        "does not install remote plugin bundles yet",
        ("plugin/share/checkout", '{"remotePluginId": "rp-1"}'): "checkout plugin share: "
        "codex-core does not download plugin bundles yet",
        ("plugin/share/save", json.dumps({"pluginPath": plugin_folder(tmp_path)})): "save "
        "remote plugin share: codex-core does not upload plugin bundles yet",
    }
    for (method, params), message in expected.items():
        assert server.error(method, json.loads(params)) == {"code": -32603, "message": message}
