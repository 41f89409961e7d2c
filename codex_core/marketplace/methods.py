"""The methods of the kernel plugin for ``plugin/*`` and ``marketplace/*`` (its hooks are in
``codex_core.marketplace.plugin``).

Catalogs come from ``codex_core.marketplace.catalog.configured_sources`` and are re-read on
every request (they are small, and a catalog that changed must not need a restart). Installs
run in a worker thread; after one the kernel reloads its plugins (``Kernel.reload_plugins``),
so the new plugin's methods answer from the next request on, and every client that opted in
gets a ``codexCore/plugins/changed`` notification. The other servers running from the same
environment, and every server after a ``codex-app-server plugin install``, are told to reload
through ``codex_core.marketplace.control``.

``features.plugins = false`` gates these methods as the official server does: ``plugin/list``
and ``plugin/installed`` answer with nothing, ``plugin/read`` is refused, and ``plugin/install``,
``plugin/uninstall`` and ``marketplace/*`` still work.

Install progress goes to the requesting connection only, and only when it sent an
``installAttemptId`` (the protocol's own way to correlate one attempt), as
``codexCore/plugins/installProgress``: a notification of ours, outside the official schema,
which a client that does not ask for it never receives. Sending an ``installAttemptId`` is how
a client opts in to our notifications outside the schema: from then on it also receives
``codexCore/plugins/changed`` (a client generated from the official schema never sees either).

The catalog, installer and sources modules (pydantic models, dataclasses) are imported by the
functions that use them: a server start needs none of them (``tests/test_startup_imports.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
from pydantic import BaseModel, ConfigDict

from codex_core.rpc import RpcMethod
from codex_core.rpc.errors import INVALID_REQUEST, RpcError

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.marketplace import install as installer
    from codex_core.marketplace.catalog import Catalog, CatalogError, Entry
    from codex_core.rpc import RequestContext

#: Serializes installs and uninstalls: two pip runs in one environment at once corrupt it.
_LOCK = anyio.Lock()
PROGRESS = "codexCore/plugins/installProgress"
_INTERFACE_NULLS = (
    "longDescription",
    "developerName",
    "websiteUrl",
    "privacyPolicyUrl",
    "termsOfServiceUrl",
    "brandColor",
    "composerIcon",
    "composerIconUrl",
    "logo",
    "logoDark",
    "logoUrl",
    "logoUrlDark",
)


def load_catalogs(kernel: Kernel) -> tuple[list[Catalog], list[CatalogError]]:
    from codex_core.marketplace import catalog as catalogs

    return catalogs.load_all(
        catalogs.configured_sources(kernel.config.effective, kernel.codex_home)
    )


def plugins_enabled(kernel: Kernel) -> bool:
    return kernel.config.get("features.plugins") is not False


#: A Codex plugin's manifest, in its folder: where the official server reads what a plugin
#: shows (its ``interface``) and its ``description``.
MANIFEST = Path(".codex-plugin") / "plugin.json"
#: The ``PluginInterface`` fields a manifest's ``interface`` carries over as they are.
_MANIFEST_INTERFACE = (
    "displayName",
    "shortDescription",
    "longDescription",
    "developerName",
    "category",
    "websiteUrl",
    "privacyPolicyUrl",
    "termsOfServiceUrl",
    "brandColor",
)


def manifest(catalog: Catalog, entry: Entry) -> dict[str, Any] | None:
    """The Codex manifest of a local plugin folder, or None (a Python plugin, a remote source,
    a manifest that is not a JSON object)."""
    from codex_core.marketplace import catalog as catalogs

    if not isinstance(entry.source, catalogs.LocalSource) or catalog.path is None:
        return None
    path = Path(catalog.resolve(entry.source.path)) / MANIFEST
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def manifest_interface(entry: Entry, found: dict[str, Any]) -> dict[str, Any] | None:
    """A Codex plugin's ``PluginInterface``, as the official server builds it: the manifest's
    ``interface``, with the catalog entry's ``category`` where the manifest has none; None when
    neither says anything. The entry's ``description`` and ``defaultPrompt`` are not used."""
    from codex_core.marketplace import catalog as catalogs

    declared = found.get("interface")
    declared = declared if isinstance(declared, dict) else {}
    interface: dict[str, Any] = {
        key: value if isinstance(value := declared.get(key), str) else None
        for key in _MANIFEST_INTERFACE
    }
    interface["category"] = interface["category"] or entry.category
    capabilities = declared.get("capabilities")
    interface["capabilities"] = [c for c in capabilities or [] if isinstance(c, str)]
    interface["defaultPrompt"] = catalogs.normalize_default_prompt(declared.get("defaultPrompt"))
    if not any(interface.values()):
        return None
    return {
        **dict.fromkeys(_INTERFACE_NULLS),
        **interface,
        "screenshots": [],
        "screenshotUrls": [],
    }


def summary(catalog: Catalog, entry: Entry) -> dict[str, Any]:
    """A ``PluginSummary`` in wire shape, with every key the official server sends.

    A Codex plugin (a local folder with ``.codex-plugin/plugin.json``) shows what its manifest
    declares, as on the official server; a Python plugin shows its catalog entry.
    """
    from codex_core.marketplace import catalog as catalogs
    from codex_core.marketplace import install as installer

    distribution = installer.distribution_name(catalog, entry)
    version = installer.installed_version(distribution)
    source: dict[str, Any] = {"type": "remote"}
    if isinstance(entry.source, catalogs.LocalSource) and catalog.base is None and catalog.path:
        source = {"type": "local", "path": catalog.resolve(entry.source.path)}
    found = manifest(catalog, entry)
    interface = None
    if found is not None:
        interface = manifest_interface(entry, found)
    elif entry.category or entry.description or entry.default_prompt:
        # Without a manifest the reference shows no name or description of the entry's own.
        interface = {
            "displayName": None,
            "shortDescription": None,
            "category": entry.category,
            "defaultPrompt": entry.default_prompt,
            "capabilities": [],
            "screenshots": [],
            "screenshotUrls": [],
            **dict.fromkeys(_INTERFACE_NULLS),
        }
    return {
        "id": f"{entry.name}@{catalog.name}",
        "remotePluginId": None,
        "version": entry.version,
        "localVersion": version,
        "name": entry.name,
        "shareContext": None,
        "source": source,
        "installed": version is not None,
        "installedAt": None,
        "enabled": version is not None,
        "installPolicy": entry.policy.installation,
        "installPolicySource": None,
        "mustShowInstallationInterstitial": None,
        "authPolicy": entry.policy.authentication,
        "availability": "AVAILABLE",
        "disabledReason": None,
        "eligiblePlanTypes": None,
        "interface": interface,
        "keywords": entry.keywords,
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


def find(kernel: Kernel, method: str, params: Any) -> tuple[Catalog, Entry]:
    """The entry ``params.plugin_name`` of the catalog that ``marketplacePath`` (a file) or
    ``remoteMarketplaceName`` (a configured catalog's name) designates, exactly one of them."""
    from codex_core.marketplace import catalog as catalogs

    path, name = params.marketplace_path, params.remote_marketplace_name
    if (path is None) == (name is None):
        raise RpcError(
            INVALID_REQUEST,
            f"{method} requires exactly one of marketplacePath or remoteMarketplaceName",
        )
    if method == "plugin/read" and not plugins_enabled(kernel):
        raise RpcError(INVALID_REQUEST, "plugins feature is disabled")
    found, _errors = load_catalogs(kernel)
    if path is not None:
        path = str(path)
        catalog = next((c for c in found if c.path == path), None)
        if catalog is None:
            if not Path(path).is_file():
                raise RpcError(INVALID_REQUEST, f"marketplace file `{path}` does not exist")
            try:
                catalog = catalogs.load(path)
            except catalogs.CatalogError as exc:
                raise RpcError(INVALID_REQUEST, exc.message) from None
    else:
        catalog = next((c for c in found if c.name == name), None)
        if catalog is None:
            raise RpcError(INVALID_REQUEST, f"marketplace `{name}` was not found")
    entry = catalog.entry(params.plugin_name)
    if entry is None:
        raise RpcError(
            INVALID_REQUEST,
            f"plugin `{params.plugin_name}` was not found in marketplace `{catalog.name}`",
        )
    return catalog, entry


def listing(kernel: Kernel) -> dict[str, Any]:
    if not plugins_enabled(kernel):
        return {"marketplaces": [], "marketplaceLoadErrors": [], "featuredPluginIds": []}
    found, errors = load_catalogs(kernel)
    return {
        "marketplaces": [
            marketplace_entry(catalog, [summary(catalog, entry) for entry in catalog.entries])
            for catalog in found
        ],
        "marketplaceLoadErrors": [load_error(error) for error in errors],
        "featuredPluginIds": [],
    }


#: ``marketplaceKinds`` served from ChatGPT's remote plugin catalog, which codex-core does not
#: have: asking for them needs a ChatGPT login, as with the reference, and finds nothing.
REMOTE_KINDS = frozenset({"workspace-directory", "shared-with-me", "created-by-me-remote"})


async def plugin_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Local marketplaces, unless ``marketplaceKinds`` leaves ``local`` out: clients ask once
    per kind and would otherwise show every local plugin once per kind."""
    kinds = {str(getattr(kind, "value", kind)) for kind in params.marketplace_kinds or ()}
    if kinds & REMOTE_KINDS:
        from codex_core.accounts.service import accounts_service

        credentials = await accounts_service(ctx.kernel).credentials()
        if credentials is None or credentials.auth_mode not in ("chatgpt", "chatgptAuthTokens"):
            raise RpcError(
                INVALID_REQUEST,
                "list remote plugin catalog: chatgpt authentication required for remote plugin "
                "catalog",
            )
    if kinds and "local" not in kinds:
        return {"marketplaces": [], "marketplaceLoadErrors": [], "featuredPluginIds": []}
    return await anyio.to_thread.run_sync(listing, ctx.kernel)


async def plugin_installed(ctx: RequestContext, params: Any) -> dict[str, Any]:
    result = await anyio.to_thread.run_sync(listing, ctx.kernel)
    for marketplace in result["marketplaces"]:
        marketplace["plugins"] = [p for p in marketplace["plugins"] if p["installed"]]
    result["marketplaces"] = [m for m in result["marketplaces"] if m["plugins"]]
    del result["featuredPluginIds"]
    return result


def detail(kernel: Kernel, params: Any) -> dict[str, Any]:
    catalog, entry = find(kernel, "plugin/read", params)
    found = manifest(catalog, entry)
    description = entry.description if found is None else found.get("description")
    return {
        "plugin": {
            "marketplaceName": catalog.name,
            "marketplacePath": catalog.path,
            "summary": summary(catalog, entry),
            "shareUrl": None,
            "description": description if isinstance(description, str) else None,
            "skills": [],
            "onboardingSkill": None,
            "hooks": [],
            "apps": [],
            "appTemplates": [],
            "mcpServers": [],
            "scheduledTasks": None,
        }
    }


async def plugin_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(detail, ctx.kernel, params)


def progress_reporter(ctx: RequestContext, params: Any) -> installer.ProgressFn:
    """Notifications for the caller's ``installAttemptId``; called from the install's thread."""
    from codex_core.marketplace import install as installer

    attempt = params.install_attempt_id
    if attempt is None:
        return installer.quiet
    connection = ctx.connection
    connection.wants_extensions = True  # it asked for our notifications: plugins/changed too

    def report(step: installer.Progress) -> None:
        body = {
            "installAttemptId": attempt,
            "pluginName": params.plugin_name,
            "stage": step.stage,
            "message": step.message,
            "done": step.done,
            "total": step.total,
        }
        anyio.from_thread.run_sync(connection.notify, PROGRESS, body)

    return installer.milestones(report)


async def plugin_install(ctx: RequestContext, params: Any) -> dict[str, Any]:
    from codex_core.marketplace import install as installer

    catalog, entry = await anyio.to_thread.run_sync(find, ctx.kernel, "plugin/install", params)
    report = progress_reporter(ctx, params)
    async with _LOCK:
        try:
            await anyio.to_thread.run_sync(installer.install, catalog, entry, report)
        except installer.InstallError as exc:
            raise RpcError(INVALID_REQUEST, f"failed to install {entry.name}: {exc}") from None
        ctx.kernel.reload_plugins()
        await reload_other_servers(ctx.kernel)
    return {"authPolicy": entry.policy.authentication, "appsNeedingAuth": []}


async def plugin_uninstall(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Uninstall ``NAME@MARKETPLACE``; a plugin that is not installed is already uninstalled
    (``{}``, as the official server answers)."""
    from codex_core.marketplace import install as installer

    plugin, _, marketplace = params.plugin_id.rpartition("@")
    if not plugin or not marketplace:
        raise RpcError(
            INVALID_REQUEST,
            f"invalid plugin key `{params.plugin_id}`; expected <plugin>@<marketplace>",
        )
    found, _errors = await anyio.to_thread.run_sync(load_catalogs, ctx.kernel)
    catalog = next((c for c in found if c.name == marketplace), None)
    entry = catalog.entry(plugin) if catalog else None
    if catalog is None or entry is None:
        return {}
    distribution = installer.distribution_name(catalog, entry)
    async with _LOCK:
        if installer.installed_version(distribution) is None:
            return {}
        try:
            await anyio.to_thread.run_sync(installer.uninstall, distribution)
        except installer.InstallError as exc:
            raise RpcError(INVALID_REQUEST, f"failed to uninstall {entry.name}: {exc}") from None
        ctx.kernel.reload_plugins()
        await reload_other_servers(ctx.kernel)
    return {}


# --------------------------------------------------------------------------- marketplace/*


async def marketplace_add(ctx: RequestContext, params: Any) -> dict[str, Any]:
    from codex_core.marketplace import sources

    if params.sparse_paths:
        raise RpcError(INVALID_REQUEST, "--sparse is only supported for git marketplace sources")
    if params.ref_name is not None:
        raise RpcError(INVALID_REQUEST, "--ref is only supported for git marketplace sources")
    try:
        added = await sources.add(ctx.kernel, params.source)
    except sources.SourceError as exc:
        raise RpcError(INVALID_REQUEST, str(exc)) from None
    return {
        "marketplaceName": added.name,
        "installedRoot": str(added.root),
        "alreadyAdded": added.already,
    }


async def marketplace_remove(ctx: RequestContext, params: Any) -> dict[str, Any]:
    from codex_core.marketplace import sources

    try:
        removed = await sources.remove(ctx.kernel, params.marketplace_name)
    except sources.SourceError as exc:
        raise RpcError(INVALID_REQUEST, str(exc)) from None
    return {
        "marketplaceName": params.marketplace_name,
        "installedRoot": None if removed is None else str(removed),
    }


async def marketplace_upgrade(ctx: RequestContext, params: Any) -> dict[str, Any]:
    from codex_core.marketplace import sources

    try:
        outcome = await sources.upgrade(ctx.kernel, params.marketplace_name)
    except sources.SourceError as exc:
        raise RpcError(INVALID_REQUEST, str(exc)) from None
    return {
        "selectedMarketplaces": outcome.selected,
        "upgradedRoots": [str(root) for root in outcome.roots],
        "errors": [{"marketplaceName": name, "message": text} for name, text in outcome.errors],
    }


class MarketplaceSettings(BaseModel):
    """``[marketplace]``: ``default = false`` leaves the repository's own catalog out."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    default: bool = True


async def reload_other_servers(kernel: Kernel) -> None:
    """After an install over the protocol, the environment's other servers reload too."""
    from codex_core.marketplace import control

    skip = kernel.services.get(control.SERVICE)
    await anyio.to_thread.run_sync(lambda: control.reload_servers(skip=skip))


def rpc_methods() -> list[RpcMethod]:
    """The methods of the ``marketplace`` plugin (``codex_core.marketplace.plugin``)."""
    return [
        RpcMethod("plugin/list", plugin_list),
        RpcMethod("plugin/installed", plugin_installed),
        RpcMethod("plugin/read", plugin_read),
        RpcMethod("plugin/install", plugin_install),
        RpcMethod("plugin/uninstall", plugin_uninstall),
        RpcMethod("marketplace/add", marketplace_add),
        RpcMethod("marketplace/remove", marketplace_remove),
        RpcMethod("marketplace/upgrade", marketplace_upgrade),
    ]
