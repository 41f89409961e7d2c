"""codex-plugin-openai: the OpenAI Responses API as a codex-core model provider."""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from codex_core.hookspecs import hookimpl
from codex_plugin_openai.provider import (
    BASE_URL_DEPRECATED,
    LEGACY_BASE_URL_VARIABLE,
    ModelError,
    ProviderConfig,
    ResponsesProvider,
    parse_sse,
)

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

__all__ = ["ModelError", "ProviderConfig", "ResponsesProvider", "parse_sse"]
__version__ = "0.1.0"

_SERVICE = "openai.responses"


@hookimpl
def codex_model_providers(kernel: Kernel) -> list[ResponsesProvider]:
    provider = ResponsesProvider(kernel)
    kernel.services[_SERVICE] = provider
    if os.environ.get(LEGACY_BASE_URL_VARIABLE) and not kernel.config.get("openai_base_url"):
        kernel.startup_notices.append(("deprecationNotice", BASE_URL_DEPRECATED))
    return [provider]


@hookimpl
def codex_shutdown(kernel: Kernel) -> Awaitable[None] | None:
    provider: ResponsesProvider | None = kernel.services.get(_SERVICE)
    return provider.aclose() if provider is not None else None
