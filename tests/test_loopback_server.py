"""The test kit's loopback server (``codex_core.testing.loopback``), which the tests of remote
services (issuers, the usage API, catalog hosts) stand on."""

from __future__ import annotations

import http.client
from pathlib import Path

import httpx
import pytest

from codex_core.testing import LoopbackRequest, LoopbackServer, Reply, serve_files
from codex_core.testing.pytest_plugin import LoopbackFactory


def echo(request: LoopbackRequest) -> Reply:
    return Reply(201, {"path": request.path, "query": request.query}, {"x-fake": "yes"})


def test_requests_are_recorded_and_json_replies_encoded(
    codex_loopback_factory: LoopbackFactory,
) -> None:
    server = codex_loopback_factory(echo)
    form = httpx.post(f"{server.url}/oauth/token?a=1&a=2&b=", data={"grant": "code", "x": ""})
    assert form.status_code == 201
    assert form.headers["content-type"] == "application/json"
    assert form.headers["x-fake"] == "yes"
    assert form.json() == {"path": "/oauth/token", "query": {"a": "1", "b": ""}}
    httpx.put(f"{server.url}/j", json={"k": [1]}, headers={"X-Trace": "t-1"})

    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/oauth/token")
    assert first.form == {"grant": "code", "x": ""}
    assert first.text == "grant=code&x="
    assert (second.method, second.json, second.headers["x-trace"]) == ("PUT", {"k": [1]}, "t-1")
    with pytest.raises(ValueError):
        first.json  # noqa: B018 (the property is what is tested)


def test_bytes_redirects_and_header_overrides(codex_loopback_factory: LoopbackFactory) -> None:
    def handle(request: LoopbackRequest) -> Reply:
        if request.path == "/raw":
            return Reply(200, b"\x00bytes", {"Content-Type": "application/x-thing"})
        if request.path == "/typed":
            return Reply(200, [1], {"Content-Type": "application/problem+json"})
        return Reply.redirect("/raw")

    server = codex_loopback_factory(handle)
    moved = httpx.get(f"{server.url}/old")
    assert (moved.status_code, moved.headers["location"], moved.content) == (302, "/raw", b"")
    raw = httpx.get(f"{server.url}/old", follow_redirects=True)
    assert (raw.content, raw.headers["content-type"]) == (b"\x00bytes", "application/x-thing")
    assert raw.headers["content-length"] == "6"
    typed = httpx.get(f"{server.url}/typed")
    assert typed.headers.get_list("content-type") == ["application/problem+json"]
    assert typed.json() == [1]


def test_a_handler_that_raises_answers_500(codex_loopback_factory: LoopbackFactory) -> None:
    def handle(request: LoopbackRequest) -> Reply:
        raise KeyError("state")

    server = codex_loopback_factory(handle)
    answer = httpx.get(f"{server.url}/oauth/authorize")
    assert answer.status_code == 500
    assert answer.json() == {"error": "loopback server: the handler raised KeyError('state')"}
    assert [r.path for r in server.requests] == ["/oauth/authorize"]


def test_files_are_served_from_the_folder_only(
    codex_loopback_factory: LoopbackFactory, tmp_path: Path
) -> None:
    root = tmp_path / "www"
    (root / "sub dir").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("no")
    server = codex_loopback_factory(serve_files(root))
    (root / "sub dir" / "marketplace.json").write_text('{"name": "m"}')  # after the start

    catalog = httpx.get(f"{server.url}/sub%20dir/marketplace.json")
    assert catalog.status_code == 200
    assert catalog.headers["content-type"] == "application/json"
    assert catalog.json() == {"name": "m"}
    assert httpx.get(f"{server.url}/missing.whl").status_code == 404
    assert httpx.get(f"{server.url}/sub%20dir").status_code == 404
    assert httpx.post(f"{server.url}/sub%20dir/marketplace.json").status_code == 404
    # httpx would normalize the dots away: send the target as is.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/../secret.txt")
    assert connection.getresponse().status == 404
    connection.close()


def test_the_context_manager_stops_the_server() -> None:
    with LoopbackServer(echo) as server:
        url = server.url
        assert httpx.get(url).status_code == 201
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
    with pytest.raises(RuntimeError, match="not running"):
        LoopbackServer(echo).url  # noqa: B018
