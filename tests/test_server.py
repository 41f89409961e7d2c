"""The connection and router through a real server process over stdio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codex_core.testing.pytest_plugin import StdioServer

CLIENT_INFO = {"clientInfo": {"name": "pytest", "version": "1.0"}}


def test_initialize_result_and_handshake_rules(raw_server: StdioServer, codex_home: Path) -> None:
    assert raw_server.error("thread/list", {}) == {"code": -32600, "message": "Not initialized"}
    result = raw_server.result("initialize", CLIENT_INFO)
    assert result["codexHome"] == str(codex_home)
    assert result["platformFamily"] == "unix"
    assert result["platformOs"] == "linux"
    assert result["userAgent"].startswith("pytest/")
    assert result["userAgent"].endswith("(pytest; 1.0)")
    assert raw_server.error("initialize", CLIENT_INFO) == {
        "code": -32600,
        "message": "Already initialized",
    }
    raw_server.send({"method": "initialized"})
    raw_server.send({"method": "initialized"})  # a repeat is ignored
    assert raw_server.result("account/read", {})["account"] is None


def test_ids_are_echoed_with_their_type(raw_server: StdioServer) -> None:
    raw_server.send({"id": "init-1", "method": "initialize", "params": CLIENT_INFO})
    assert raw_server.wait_response("init-1")["result"]["platformOs"] == "linux"
    raw_server.send({"id": 7, "method": "config/read", "params": {}})
    raw_server.send({"id": "7", "method": "account/read", "params": {}})
    assert "config" in raw_server.wait_response(7)["result"]
    assert "account" in raw_server.wait_response("7")["result"]


def test_unknown_method_lists_the_known_ones(server: StdioServer) -> None:
    error = server.error("no/such", {})
    assert error["code"] == -32600
    assert error["message"].startswith(
        "Invalid request: unknown variant `no/such`, expected one of"
    )
    assert "`initialize`" in error["message"] and "`fs/readFile`" in error["message"]


def test_bad_params_get_actionable_errors(server: StdioServer) -> None:
    cases: list[tuple[str, Any, str]] = [
        (
            "thread/read",
            {"threadId": 5},
            "Invalid request: invalid type: integer `5`, expected a string",
        ),
        ("thread/read", {}, "Invalid request: missing field `threadId`"),
        ("thread/read", None, "Invalid request: missing field `params`"),
        (
            "thread/list",
            ["not", "an", "object"],
            "Invalid request: invalid type: sequence, expected a map",
        ),
        (
            "fs/readFile",
            {"path": "relative/file.txt"},
            "Invalid request: AbsolutePathBuf deserialized without a base path",
        ),
        (
            "account/read",
            {"refreshToken": "x"},
            'Invalid request: invalid type: string "x", expected a boolean',
        ),
        ("configRequirements/read", [1], "Invalid request: invalid type: sequence, expected unit"),
        # tagged unions: the tag is not part of the field path
        ("account/login/start", {"type": "apiKey"}, "Invalid request: missing field `apiKey`"),
        (
            "account/login/start",
            {"type": "nope"},
            "Invalid request: unknown variant `nope`, expected one of `apiKey`, `chatgpt`, "
            "`chatgptDeviceCode`, `chatgptAuthTokens`, `amazonBedrock`, `amazonBedrockAccessKeys`",
        ),
        (
            "turn/start",
            {"threadId": "x", "input": [{"type": "text", "text": 5}]},
            "Invalid request: invalid type: integer `5`, expected a string at `input.0.text`",
        ),
    ]
    for method, params, message in cases:
        assert server.error(method, params) == {"code": -32600, "message": message}, method
    missing = server.request("fs/readFile")
    assert missing["error"] == {
        "code": -32600,
        "message": "Invalid request: missing field `params`",
    }


def test_params_less_methods_accept_absent_null_and_empty(server: StdioServer) -> None:
    for params in ({}, None):
        assert server.result("configRequirements/read", params)["requirements"] is None
    assert server.result("configRequirements/read")["supportsIndependentSpeedModes"] is True


def test_unknown_params_fields_are_ignored(server: StdioServer) -> None:
    assert server.result("account/read", {"foo": 1, "bar": [1]})["account"] is None


def test_experimental_methods_and_fields_need_the_capability(start_server: Any) -> None:
    stable = start_server()
    stable.initialize()
    assert stable.error("server/diagnostics", {}) == {
        "code": -32600,
        "message": "server/diagnostics requires experimentalApi capability",
    }
    assert stable.error("thread/start", {"dynamicTools": []}) == {
        "code": -32600,
        "message": "thread/start.dynamicTools requires experimentalApi capability",
    }
    # null means "not set", which needs no capability
    assert "thread" in stable.result("thread/start", {"dynamicTools": None})

    experimental = start_server()
    experimental.initialize(experimentalApi=True)
    error = experimental.error("server/diagnostics", {})
    assert error["code"] == -32601
    assert (
        "`server/diagnostics` is part of the protocol but no installed plugin implements it"
        in error["message"]
    )
    assert "thread" in experimental.result("thread/start", {"dynamicTools": []})


def test_opted_out_notifications_are_not_sent(start_server: Any) -> None:
    server = start_server()
    server.initialize(optOutNotificationMethods=["thread/started"])
    server.result("thread/start", {})
    server.barrier()  # thread/started would have been queued right after the reply
    assert [n for n in server.notifications if n["method"] == "thread/started"] == []

    other = start_server()
    other.initialize()
    other.result("thread/start", {})
    notification = other.wait_notification("thread/started")
    assert isinstance(notification["emittedAtMs"], int)


def test_thread_started_follows_the_thread_start_response(server: StdioServer) -> None:
    server.send({"id": "start", "method": "thread/start", "params": {}})
    server.wait_notification("thread/started")
    assert "start" in server.unanswered(), "thread/started came before the thread/start reply"
    result = server.wait_response("start")["result"]
    thread_id = result["thread"]["id"]
    assert server.result("thread/read", {"threadId": thread_id})["thread"]["id"] == thread_id
    assert server.result("thread/loaded/list", {})["data"] == [thread_id]


def test_malformed_input_is_dropped_without_reply(server: StdioServer) -> None:
    garbage = [
        "{this is not json",
        '{"id": 5, "method": "config/read"',
        "[1, 2, 3]",
        "42",
        '"just a string"',
        '[{"id": 9, "method": "config/read", "params": {}}]',
        '{"id": 9.5, "method": "config/read", "params": {}}',
        '{"id": null, "method": "config/read", "params": {}}',
        '{"id": true, "method": "config/read", "params": {}}',
        '{"method": "no/such/notification"}',
        '{"id": 424242, "result": {}}',
        "",
    ]
    for line in garbage:
        server.send_raw(line)
    server.send_raw(b'{"id": 77, "method": "config/read", "params": {"cwd": "\xff\xfe"}}')
    assert "account" in server.result("account/read", {})
    server.result("config/read", {})  # a later request of the kind hidden in the garbage
    server.barrier()
    assert server.unanswered() == {}, "malformed input got a reply"


def test_a_thousand_malformed_messages_in_a_row(server: StdioServer) -> None:
    assert server.process.stdin is not None
    server.process.stdin.write(b"".join(b"{nope %d\n" % i for i in range(1000)))
    server.process.stdin.flush()
    assert "account" in server.result("account/read", {}, timeout=30)
    assert server.unanswered() == {}


def test_flood_meets_overload_and_every_request_is_answered_once(
    probe_plugin: Path, start_server: Any
) -> None:
    server = start_server()
    server.initialize()
    assert server.process.stdin is not None
    total = 400
    frames = [
        json.dumps({"id": i, "method": "probe/sleep", "params": {"seconds": 3}}).encode()
        for i in range(total)
    ]
    server.process.stdin.write(b"\n".join(frames) + b"\n")
    server.process.stdin.flush()
    overloaded = [server.wait_response(i, timeout=30) for i in range(256, total)]
    assert all(
        r["error"] == {"code": -32001, "message": "Server overloaded; retry later."}
        for r in overloaded
    )
    answered = [server.wait_response(i, timeout=30) for i in range(256)]
    assert all(r["result"] == {"slept": 3} for r in answered)
    assert "account" in server.result("account/read", {})  # capacity is back
    server.barrier()
    assert server.unanswered() == {}, "a request was answered twice"


def test_client_error_reply_reaches_the_caller(probe_plugin: Path, start_server: Any) -> None:
    server = start_server()
    server.initialize()
    server.send(
        {
            "id": "ask",
            "method": "probe/askClient",
            "params": {
                "method": "account/chatgptAuthTokens/refresh",
                "params": {"reason": "unauthorized"},
            },
        }
    )
    request = server.wait_server_request("account/chatgptAuthTokens/refresh")
    assert request["id"] == 0
    server.send({"id": request["id"], "error": {"code": -32000, "message": "refresh failed"}})
    outcome = server.wait_response("ask")["result"]
    assert outcome["outcome"] == "error"
    assert (outcome["code"], outcome["message"]) == (-32000, "refresh failed")
    assert (
        outcome["text"]
        == "account/chatgptAuthTokens/refresh request failed: code=-32000 message=refresh failed"
    )

    server.send(
        {
            "id": "ask2",
            "method": "probe/askClient",
            "params": {"method": "attestation/generate", "params": {}},
        }
    )
    second = server.wait_server_request("attestation/generate")
    assert second["id"] == 1
    server.send({"id": 1, "result": {"token": "t"}})
    assert server.wait_response("ask2")["result"] == {"outcome": "result", "result": {"token": "t"}}

    server.send(
        {
            "id": "ask3",
            "method": "probe/askClient",
            "params": {"method": "attestation/generate", "timeout": 0.2},
        }
    )
    assert server.wait_response("ask3")["result"] == {"outcome": "timeout"}
    server.send({"id": 2, "result": {}})  # a late answer is dropped quietly
    assert "account" in server.result("account/read", {})


def test_a_crashing_handler_answers_with_an_internal_error(
    probe_plugin: Path, start_server: Any
) -> None:
    server = start_server()
    server.initialize()
    error = server.error("probe/crash", {})
    assert error["code"] == -32603
    assert "probe/crash failed in plugin probe" in error["message"]
    assert "account" in server.result("account/read", {})


def test_plugin_methods_can_be_experimental(probe_plugin: Path, start_server: Any) -> None:
    server = start_server()
    server.initialize()
    assert server.error("probe/experimental", {})["message"] == (
        "probe/experimental requires experimentalApi capability"
    )
