"""``[mcp_servers.NAME]`` tables: what is read, what is refused, and tool names."""

from __future__ import annotations

import pytest
from codex_plugin_mcp import parse_servers, qualified_name


def test_stdio_and_http_tables() -> None:
    servers = parse_servers(
        {
            "mcp_servers": {
                "files": {
                    "command": "npx",
                    "args": ["-y", "x"],
                    "env": {"A": "1"},
                    "cwd": "/tmp",
                    "startup_timeout_sec": 5,
                    "tool_timeout_sec": 7.5,
                    "enabled_tools": ["read", "list"],
                    "disabled_tools": ["list"],
                },
                "web": {
                    "url": "https://user:pw@example.com:8443/mcp?x=1",
                    "enabled": False,
                    "http_headers": {"X-A": "b"},
                    "startup_timeout_ms": 2500,
                },
            }
        }
    )
    files, web = servers["files"], servers["web"]
    assert (files.transport, files.args, files.env, files.cwd) == (
        "stdio",
        ("-y", "x"),
        {"A": "1"},
        "/tmp",
    )
    assert (files.startup_timeout, files.tool_timeout) == (5.0, 7.5)
    assert files.allows("read") and not files.allows("list") and not files.allows("write")
    assert web.transport == "streamableHttp" and not web.enabled
    assert web.startup_timeout == 2.5 and web.headers() == {"X-A": "b"}
    assert web.http_origin() == "https://example.com:8443"
    assert files.problem is None and web.problem is None


def test_bearer_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    (server,) = parse_servers(
        {
            "mcp_servers": {
                "s": {
                    "url": "http://127.0.0.1:1/mcp",
                    "bearer_token_env_var": "MCP_TOKEN_X",
                    "env_http_headers": {"X-Key": "MCP_KEY_X"},
                }
            }
        }
    ).values()
    monkeypatch.delenv("MCP_TOKEN_X", raising=False)
    with pytest.raises(ValueError, match="MCP_TOKEN_X"):
        server.headers()
    monkeypatch.setenv("MCP_TOKEN_X", "t0k")
    monkeypatch.setenv("MCP_KEY_X", "k")
    assert server.headers() == {"X-Key": "k", "Authorization": "Bearer t0k"}


def test_unusable_tables_are_reported_not_fatal() -> None:
    servers = parse_servers(
        {
            "mcp_servers": {
                "both": {"command": "x", "url": "http://h"},
                "none": {},
                "args": {"command": "x", "args": "not-a-list"},
                "scalar": 3,
            }
        }
    )
    assert all(config.problem for config in servers.values())
    assert "exactly one of" in str(servers["none"].problem)


def test_tool_names_are_namespaced_like_the_reference() -> None:
    assert qualified_name("files", "read") == "mcp__files__read"
    assert qualified_name("my.server", "do it") == "mcp__my_server__do_it"
    long = qualified_name("s" * 40, "t" * 40)
    assert len(long) == 64 and long.startswith("mcp__sss")
