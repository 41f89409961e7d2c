"""ChatGPT browser login: ``account/login/start {"type": "chatgpt"}``.

The result comes at once (``loginId``, ``authUrl``); the person opens the URL, signs in, and
the issuer sends the browser back to a callback server this plugin runs on loopback. The
login ends with ``account/login/completed`` (and ``account/updated`` on success).

Configuration (``config.toml``)::

    [plugins.chatgpt-login]
    issuer = "https://auth.openai.com"        # also: CODEX_APP_SERVER_LOGIN_ISSUER
    client_id = "app_EMoamEEZ73f0CkXaXp7hrann"
    port = 1455                               # 0: any free port
    timeout_seconds = 600
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from codex_core.kernel import Kernel


@hookimpl
def codex_auth_providers(kernel: Kernel) -> list[object]:
    from codex_plugin_chatgpt_login.login import BrowserLoginProvider  # at collection, not import

    return [BrowserLoginProvider(kernel)]
