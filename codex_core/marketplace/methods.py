"""The kernel plugin for ``plugin/list``, ``plugin/read``, ``plugin/installed``,
``plugin/install`` and ``plugin/uninstall``.

Catalogs come from ``codex_core.marketplace.catalog.configured_sources`` and are re-read on
every request (they are small, and a catalog that changed must not need a restart). Installs
run in a worker thread; after one the kernel reloads its plugins (``Kernel.reload_plugins``),
so the new plugin's methods answer from the next request on, and every client gets a
``codexCore/plugins/changed`` notification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from codex_core.hookspecs import hookimpl
from codex_core.marketplace import catalog as catalogs
from codex_core.marketplace import install as installer
from codex_core.rpc import RpcMethod
from codex_core.rpc.errors import INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.marketplace.catalog import Catalog, CatalogError, Entry
    from codex_core.rpc import RequestContext

#: Serializes installs and uninstalls: two pip runs in one environment at once corrupt it.
_LOCK = anyio.Lock()


def load_catalogs(kernel: Kernel) -> tuple[list[Catalog], list[CatalogError]]:
    return catalogs.load_all(catalogs.configured_sources(kernel.config.effective))


def summary(catalog: Catalog, entry: Entry) -> dict[str, Any]:
    """A ``PluginSummary`` in wire shape."""
    distribution = installer.distribution_name(catalog, entry)
    version = installer.installed_version(distribution)
    source: dict[str, Any] = {"type": "remote"}
    if isinstance(entry.source, catalogs.LocalSource) and catalog.path is not None:
        source = {"type": "local", "path": catalog.resolve(entry.source.path)}
    interface = None
    if entry.category or entry.description or entry.default_prompt:
        interface = {
            "displayName": entry.name,
            "shortDescription": entry.description,
            "category": entry.category,
            "defaultPrompt": entry.default_prompt,
            "capabilities": [],
            "screenshots": [],
            "screenshotUrls": [],
        }
    return {
        "id": f"{entry.name}@{catalog.name}",
        "name": entry.name,
        "source": source,
        "installed": version is not None,
        "enabled": version is not None,
        "installPolicy": entry.policy.installation,
        "authPolicy": entry.policy.authentication,
        "availability": "AVAILABLE",
        "interface": interface,
        "keywords": entry.keywords,
        "localVersion": version,
        "version": entry.version,
    }


def marketplace_entry(catalog: Catalog, plugins: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": catalog.name,
        "path": catalog.path,
        "interface": {"displayName": catalog.display_name} if catalog.display_name else None,
        "plugins": plugins,
    }


def load_error(error: CatalogError) -> dict[str, Any]:
    return {"marketplacePath": error.location, "message": error.message}


def find(
    found: list[Catalog], name: str, marketplace_path: str | None = None
) -> tuple[Catalog, Entry]:
    """The entry ``name`` (or ``name@marketplace``), optionally in the catalog at a path."""
    plugin, _, marketplace = name.partition("@")
    for catalog in found:
        if marketplace and catalog.name != marketplace:
            continue
        if marketplace_path and catalog.location != str(marketplace_path):
            continue
        entry = catalog.entry(plugin)
        if entry is not None:
            return catalog, entry
    raise RpcError(INVALID_REQUEST, f"plugin `{name}` was not found in any marketplace")


async def plugin_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    found, errors = await anyio.to_thread.run_sync(load_catalogs, ctx.kernel)

    def listing() -> list[dict[str, Any]]:
        return [
            marketplace_entry(catalog, [summary(catalog, entry) for entry in catalog.entries])
            for catalog in found
        ]

    return {
        "marketplaces": await anyio.to_thread.run_sync(listing),
        "marketplaceLoadErrors": [load_error(error) for error in errors],
        "featuredPluginIds": [],
    }


async def plugin_installed(ctx: RequestContext, params: Any) -> dict[str, Any]:
    result = await plugin_list(ctx, params)
    for marketplace in result["marketplaces"]:
        marketplace["plugins"] = [p for p in marketplace["plugins"] if p["installed"]]
    result["marketplaces"] = [m for m in result["marketplaces"] if m["plugins"]]
    del result["featuredPluginIds"]
    return result


async def plugin_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    found, _errors = await anyio.to_thread.run_sync(load_catalogs, ctx.kernel)
    catalog, entry = find(found, params.plugin_name, params.marketplace_path)
    detail = await anyio.to_thread.run_sync(summary, catalog, entry)
    return {
        "plugin": {
            "marketplaceName": catalog.name,
            "marketplacePath": catalog.path,
            "summary": detail,
            "description": entry.description,
            "skills": [],
            "hooks": [],
            "apps": [],
            "appTemplates": [],
            "mcpServers": [],
        }
    }


async def plugin_install(ctx: RequestContext, params: Any) -> dict[str, Any]:
    found, _errors = await anyio.to_thread.run_sync(load_catalogs, ctx.kernel)
    catalog, entry = find(found, params.plugin_name, params.marketplace_path)
    async with _LOCK:
        try:
            await anyio.to_thread.run_sync(installer.install, catalog, entry)
        except installer.InstallError as exc:
            raise RpcError(INVALID_REQUEST, f"failed to install {entry.name}: {exc}") from None
        ctx.kernel.reload_plugins()
    return {"authPolicy": entry.policy.authentication, "appsNeedingAuth": []}


async def plugin_uninstall(ctx: RequestContext, params: Any) -> dict[str, Any]:
    found, _errors = await anyio.to_thread.run_sync(load_catalogs, ctx.kernel)
    catalog, entry = find(found, params.plugin_id)
    distribution = installer.distribution_name(catalog, entry)
    async with _LOCK:
        try:
            await anyio.to_thread.run_sync(installer.uninstall, distribution)
        except installer.InstallError as exc:
            raise RpcError(INVALID_REQUEST, f"failed to uninstall {entry.name}: {exc}") from None
        ctx.kernel.reload_plugins()
    return {}


@hookimpl
def codex_rpc_methods() -> list[RpcMethod]:
    return [
        RpcMethod("plugin/list", plugin_list),
        RpcMethod("plugin/installed", plugin_installed),
        RpcMethod("plugin/read", plugin_read),
        RpcMethod("plugin/install", plugin_install),
        RpcMethod("plugin/uninstall", plugin_uninstall),
    ]
