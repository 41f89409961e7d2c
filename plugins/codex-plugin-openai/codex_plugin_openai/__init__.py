"""codex-plugin-openai: the OpenAI Responses API and Chat Completions as model providers."""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_plugin_openai.provider import StreamingProvider

__version__ = "0.1.0"

_SERVICE = "openai.providers"


@hookimpl
def codex_model_providers(kernel: Kernel) -> list[StreamingProvider]:
    # The providers (and the model contract they speak) load when the kernel collects them,
    # not when the plugin is imported (``--help``).
    from codex_plugin_openai.chat import ChatProvider
    from codex_plugin_openai.provider import BASE_URL_DEPRECATED, LEGACY_BASE_URL_VARIABLE
    from codex_plugin_openai.responses import ResponsesProvider

    providers = [ResponsesProvider(kernel), ChatProvider(kernel)]
    kernel.services[_SERVICE] = providers
    if os.environ.get(LEGACY_BASE_URL_VARIABLE) and not kernel.config.get("openai_base_url"):
        kernel.startup_notices.append(("deprecationNotice", BASE_URL_DEPRECATED))
    return providers


@hookimpl
def codex_shutdown(kernel: Kernel) -> Awaitable[None] | None:
    providers: list[StreamingProvider] = kernel.services.get(_SERVICE) or []
    return _close(providers) if providers else None


async def _close(providers: list[StreamingProvider]) -> None:
    import anyio

    async with anyio.create_task_group() as group:
        for provider in providers:
            group.start_soon(provider.aclose)
