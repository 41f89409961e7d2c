"""ChatGPT device-code login: ``account/login/start {"type": "chatgptDeviceCode"}``.

The result comes at once (``loginId``, ``verificationUrl``, ``userCode``); the plugin then polls
the issuer in the background. Success stores ordinary ``chatgpt`` auth through the accounts
service and ends with ``account/login/completed`` + ``account/updated``; failure, timeout and
``account/login/cancel`` end with a failed ``account/login/completed`` only.

Configuration (``config.toml``)::

    [plugins.device-code]
    issuer = "https://auth.openai.com"        # also: CODEX_APP_SERVER_LOGIN_ISSUER
    client_id = "app_EMoamEEZ73f0CkXaXp7hrann"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl
from codex_plugin_device_code.login import DeviceCodeProvider

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = ["DeviceCodeProvider"]


@hookimpl
def codex_auth_providers(kernel: Kernel) -> list[object]:
    return [DeviceCodeProvider(kernel)]
