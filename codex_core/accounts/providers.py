"""The login types that ship with the kernel: ``apiKey`` and ``chatgptAuthTokens``.

Both finish within the ``account/login/start`` request; the accounts plugin then sends
``account/login/completed`` (``loginId: null``) and ``account/updated`` after the result, as
the official server does. Browser and device-code logins are plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_core.accounts.service import accounts_service
from codex_core.accounts.tokens import InvalidToken
from codex_core.fs.oserror import os_error_message
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.rpc.connection import Connection


class ApiKeyProvider:
    """``{"type": "apiKey", "apiKey": "sk-..."}``: stores the key (``auth_mode: apikey``)."""

    login_type = "apiKey"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def start_login(self, params: dict[str, Any], connection: Connection) -> dict[str, Any]:
        service = accounts_service(self.kernel)
        if service.config("forced_login_method") == "chatgpt":
            raise RpcError(INVALID_REQUEST, "API key login is disabled. Use ChatGPT login instead.")
        service.cancel_active_login()
        try:
            await service.save_api_key(str(params["apiKey"]))
        except OSError as exc:  # AuthStoreError included
            raise RpcError(
                INTERNAL_ERROR, f"failed to save api key: {os_error_message(exc)}"
            ) from None
        return {"type": "apiKey"}

    async def cancel_login(self, login_id: str) -> bool:
        return False


class ChatgptAuthTokensProvider:
    """``{"type": "chatgptAuthTokens", "accessToken", "chatgptAccountId", ...}``.

    The tokens stay in memory; when the model API refuses them the server asks the client that
    logged in for new ones (``account/chatgptAuthTokens/refresh``).
    """

    login_type = "chatgptAuthTokens"

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def start_login(self, params: dict[str, Any], connection: Connection) -> dict[str, Any]:
        service = accounts_service(self.kernel)
        if service.config("forced_login_method") == "api":
            raise RpcError(
                INVALID_REQUEST, "External ChatGPT auth is disabled. Use API key login instead."
            )
        service.cancel_active_login()
        account_id = str(params["chatgptAccountId"])
        problem = service.workspace_error(account_id)
        if problem is not None:
            raise RpcError(INVALID_REQUEST, problem)
        plan = params.get("chatgptPlanType")
        try:
            service.set_external_tokens(
                connection, str(params["accessToken"]), account_id, plan if plan else None
            )
        except InvalidToken as exc:
            raise RpcError(INTERNAL_ERROR, f"failed to set external auth: {exc}") from None
        return {"type": "chatgptAuthTokens"}

    async def cancel_login(self, login_id: str) -> bool:
        return False
