"""``[mcp_servers.NAME]`` tables of ``config.toml``, read into ``ServerConfig``.

A stdio server has ``command`` (with ``args``, ``env``, ``cwd``); a streamable HTTP server has
``url`` (with ``bearer_token_env_var``, ``http_headers``, ``env_http_headers``, and for OAuth
``scopes`` and ``oauth_resource``). Both take
``enabled``, ``startup_timeout_sec`` (or ``startup_timeout_ms``), ``tool_timeout_sec``,
``enabled_tools``, ``disabled_tools``, ``default_tools_approval_mode`` and
``tools.NAME.approval_mode``. A table that is neither is reported, not fatal. The top-level
``mcp_oauth_*`` keys are read into ``OAuthSettings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: The reference's defaults: 30 s to start (initialize + list tools), 120 s per tool call.
DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_TOOL_TIMEOUT = 120.0


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    bearer_token_env_var: str | None = None
    http_headers: dict[str, str] = field(default_factory=dict)
    env_http_headers: dict[str, str] = field(default_factory=dict)
    #: OAuth: the scopes a login asks for (else the server's advertised ones), and a
    #: ``resource`` to ask tokens for (else the server's).
    scopes: tuple[str, ...] | None = None
    oauth_resource: str | None = None
    enabled: bool = True
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT
    enabled_tools: tuple[str, ...] | None = None
    disabled_tools: tuple[str, ...] = ()
    #: ``auto`` (ask unless the tool says it is read-only), ``prompt`` (always ask) or
    #: ``approve`` (never ask): ``default_tools_approval_mode``, and per tool
    #: ``tools.NAME.approval_mode``.
    default_approval_mode: str = "auto"
    tool_approval_modes: dict[str, str] = field(default_factory=dict)
    #: Why the table cannot be used (``None`` when it can).
    problem: str | None = None

    def approval_mode(self, tool: str) -> str:
        return self.tool_approval_modes.get(tool, self.default_approval_mode)

    @property
    def transport(self) -> str:
        return "streamableHttp" if self.url else "stdio"

    def allows(self, tool: str) -> bool:
        """Whether ``enabled_tools`` / ``disabled_tools`` let the model see ``tool``."""
        if self.enabled_tools is not None and tool not in self.enabled_tools:
            return False
        return tool not in self.disabled_tools

    def static_headers(self) -> dict[str, str]:
        """``http_headers`` and ``env_http_headers``: what every request to the server (or to
        its OAuth endpoints) carries."""
        headers = dict(self.http_headers)
        for header, variable in self.env_http_headers.items():
            value = os.environ.get(variable)
            if value:
                headers[header] = value
        return headers

    def headers(self) -> dict[str, str]:
        """The transport's headers: ``static_headers`` and the bearer token.

        Raises ``ValueError`` when ``bearer_token_env_var`` names an unset variable.
        """
        headers = self.static_headers()
        if self.bearer_token_env_var:
            token = os.environ.get(self.bearer_token_env_var)
            if not token:
                raise ValueError(
                    f"Environment variable {self.bearer_token_env_var} for MCP server "
                    f"'{self.name}' is not set"
                )
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def http_origin(self) -> str | None:
        """``scheme://host[:port]`` of the URL, without credentials or path."""
        if not self.url:
            return None
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return tuple(value)


def _table(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a table")
    return {str(k): str(v) for k, v in value.items()}


def _seconds(table: dict[str, Any], key: str, default: float) -> float:
    value = table.get(f"{key}_sec")
    if value is None and table.get(f"{key}_ms") is not None:
        value = float(table[f"{key}_ms"]) / 1000
    return default if value is None else float(value)


APPROVAL_MODES = ("auto", "prompt", "approve")


def _approval_mode(value: Any) -> str:
    if value is None:
        return "auto"
    if value not in APPROVAL_MODES:
        raise ValueError(f"approval mode must be one of {', '.join(APPROVAL_MODES)}")
    return str(value)


def _tool_modes(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("`tools` must be a table")
    return {
        str(name): _approval_mode(spec.get("approval_mode"))
        for name, spec in value.items()
        if isinstance(spec, dict) and spec.get("approval_mode") is not None
    }


def parse_server(name: str, table: Any) -> ServerConfig:
    """One ``[mcp_servers.NAME]`` table; a bad one comes back with ``problem`` set."""
    if not isinstance(table, dict):
        return ServerConfig(name, problem=f"invalid MCP server `{name}`: not a table")
    try:
        command, url = table.get("command"), table.get("url")
        if bool(command) == bool(url):
            raise ValueError("set exactly one of `command` (stdio) or `url` (streamable HTTP)")
        return ServerConfig(
            name=name,
            command=str(command) if command else None,
            args=_strings(table.get("args")) or (),
            env=_table(table.get("env")),
            cwd=str(table["cwd"]) if table.get("cwd") else None,
            url=str(url) if url else None,
            bearer_token_env_var=table.get("bearer_token_env_var") or None,
            http_headers=_table(table.get("http_headers")),
            env_http_headers=_table(table.get("env_http_headers")),
            scopes=_strings(table.get("scopes")),
            oauth_resource=str(table["oauth_resource"]) if table.get("oauth_resource") else None,
            enabled=bool(table.get("enabled", True)),
            startup_timeout=_seconds(table, "startup_timeout", DEFAULT_STARTUP_TIMEOUT),
            tool_timeout=_seconds(table, "tool_timeout", DEFAULT_TOOL_TIMEOUT),
            enabled_tools=_strings(table.get("enabled_tools")),
            disabled_tools=_strings(table.get("disabled_tools")) or (),
            default_approval_mode=_approval_mode(table.get("default_tools_approval_mode")),
            tool_approval_modes=_tool_modes(table.get("tools")),
        )
    except (ValueError, TypeError) as exc:
        return ServerConfig(name, problem=f"invalid MCP server `{name}`: {exc}")


def parse_servers(config: dict[str, Any]) -> dict[str, ServerConfig]:
    """Every ``mcp_servers`` table of the effective config, in name order."""
    tables = config.get("mcp_servers") or {}
    if not isinstance(tables, dict):
        return {}
    return {name: parse_server(name, tables[name]) for name in sorted(tables)}


@dataclass(frozen=True)
class OAuthSettings:
    """The top-level ``mcp_oauth_*`` keys."""

    store_mode: str = "auto"
    callback_port: int | None = None
    callback_url: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OAuthSettings:
        port = config.get("mcp_oauth_callback_port")
        url = config.get("mcp_oauth_callback_url")
        return cls(
            store_mode=str(config.get("mcp_oauth_credentials_store") or "auto"),
            callback_port=int(port) if isinstance(port, int) else None,
            callback_url=str(url) if url else None,
        )
