"""The ``plugin/*`` methods backed by ChatGPT's remote plugin catalog: ``plugin/skill/read``,
``plugin/reconcile`` and ``plugin/share/save|updateTargets|list|checkout|delete``.

They answer as the reference does signed out, with an API key, and signed in wherever the
catalog's answer needs no remote plugin bundle: the refusals, every failure of the catalog
call, deleting a share, changing its targets, an empty share list and an empty installed set.
Uploading a plugin (``save`` stops after asking for the upload URL), downloading one
(``checkout``), listing non-empty shares and
installing remote plugins during reconciliation are not done yet; they end with an internal
error saying so (docs/marketplace.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from codex_core.marketplace.remote_catalog import (
    catalog_call,
    catalog_object,
    chatgpt_login,
    missing,
    not_yet,
)
from codex_core.rpc import INTERNAL_ERROR, INVALID_REQUEST, RpcError, RpcMethod

if TYPE_CHECKING:
    from codex_core.rpc import RequestContext

#: Reconciliation's answer when nothing changed (and without a ChatGPT login).
NOTHING_CHANGED: dict[str, list[Any]] = {
    "changedPlugins": [],
    "failedRemotePluginIds": [],
    "failedMaterializationRemotePluginIds": [],
}


def _value(item: Any) -> Any:
    return getattr(item, "value", item)


def _plugin(remote_plugin_id: str) -> str:
    return quote(remote_plugin_id, safe="")


async def plugin_skill_read(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """No remote marketplace serves skill details to this server version: the reference
    names the marketplace as unsupported once signed in."""
    what = "read remote plugin skill details"
    await chatgpt_login(ctx, what)
    raise RpcError(
        INVALID_REQUEST,
        f"{what}: remote marketplace `{params.remote_marketplace_name}` is not supported",
    )


async def plugin_reconcile(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Compare the account's installed remote plugins with this machine's copies. Without a
    ChatGPT login there is nothing remote to reconcile."""
    what = "failed to reconcile remote installed plugins"
    try:
        credentials = await chatgpt_login(ctx, what)
    except RpcError:
        return dict(NOTHING_CHANGED)
    reply = await catalog_call(
        ctx,
        credentials,
        "GET",
        "/ps/plugins/installed?limit=200&includeDownloadUrls=true",
        what,
        client_errors=INTERNAL_ERROR,
    )
    installed = catalog_object(reply, what, "plugins", "pagination")["plugins"]
    if installed:
        raise not_yet(what, "install remote plugin bundles")
    return dict(NOTHING_CHANGED)


def _bundle_size(folder: Path) -> tuple[str, int]:
    """The name and size of the folder packed as a gzipped tarball, which the catalog is told
    before it hands out an upload URL."""
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / f"{Path(scratch).name}.tar.gz"
        with tarfile.open(bundle, "w:gz") as tar:
            tar.add(folder, arcname=".")
        return bundle.name, bundle.stat().st_size


async def plugin_share_save(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """Ask the catalog where to upload the packed plugin, as the reference does first; the
    upload itself is not done yet."""
    import anyio

    what = "save remote plugin share"
    credentials = await chatgpt_login(ctx, what)
    path = Path(str(params.plugin_path))
    if not os.path.isdir(path):
        raise RpcError(
            INVALID_REQUEST, f"{what}: invalid plugin path `{path}`: expected a plugin directory"
        )
    name, size = await anyio.to_thread.run_sync(_bundle_size, path)
    body = {"filename": name, "mime_type": "application/gzip", "size_bytes": size}
    reply = await catalog_call(
        ctx, credentials, "POST", "/public/plugins/workspace/upload-url", what, body=body
    )
    catalog_object(reply, what, "file_id")
    raise not_yet(what, "upload plugin bundles")


async def plugin_share_update_targets(ctx: RequestContext, params: Any) -> dict[str, Any]:
    what = "update remote plugin share targets"
    credentials = await chatgpt_login(ctx, what)
    targets = [
        {"principal_type": _value(target.principal_type), "principal_id": target.principal_id,
         "role": _value(target.role)}
        for target in params.share_targets
    ]  # fmt: skip
    body = {"discoverability": _value(params.discoverability), "targets": targets}
    path = f"/ps/plugins/{_plugin(params.remote_plugin_id)}/shares"
    reply = await catalog_call(ctx, credentials, "PUT", path, what, body=body)
    answer = catalog_object(reply, what, "principals", "discoverability")
    principals = []
    for principal in answer["principals"] if isinstance(answer["principals"], list) else []:
        for key in ("principal_type", "principal_id", "role", "name"):
            if not isinstance(principal, dict) or key not in principal:
                raise missing(reply, what, key)
        principals.append(
            {"principalType": principal["principal_type"], "principalId": principal["principal_id"],
             "role": principal["role"], "name": principal["name"]}
        )  # fmt: skip
    return {"principals": principals, "discoverability": answer["discoverability"]}


async def plugin_share_list(ctx: RequestContext, params: Any) -> dict[str, Any]:
    what = "list remote plugin shares"
    credentials = await chatgpt_login(ctx, what)
    reply = await catalog_call(
        ctx, credentials, "GET", "/ps/plugins/workspace/created?limit=200", what
    )
    if catalog_object(reply, what, "plugins", "pagination")["plugins"]:
        raise not_yet(what, "read remote plugin shares")
    return {"data": []}


async def plugin_share_checkout(ctx: RequestContext, params: Any) -> dict[str, Any]:
    what = "checkout plugin share"
    credentials = await chatgpt_login(ctx, what)
    path = f"/ps/plugins/{_plugin(params.remote_plugin_id)}?includeDownloadUrls=true"
    await catalog_call(ctx, credentials, "GET", path, what)
    raise not_yet(what, "download plugin bundles")


async def plugin_share_delete(ctx: RequestContext, params: Any) -> dict[str, Any]:
    """The catalog confirms a deletion with 204 No Content; any other answer is a failure."""
    what = "delete remote plugin share"
    credentials = await chatgpt_login(ctx, what)
    path = f"/public/plugins/workspace/{_plugin(params.remote_plugin_id)}"
    await catalog_call(
        ctx, credentials, "DELETE", path, what, success=204, client_errors=INVALID_REQUEST
    )
    return {}


def rpc_methods() -> list[RpcMethod]:
    """Registered by the ``marketplace`` plugin (``codex_core.marketplace.plugin``)."""
    return [
        RpcMethod("plugin/skill/read", plugin_skill_read),
        RpcMethod("plugin/reconcile", plugin_reconcile),
        RpcMethod("plugin/share/save", plugin_share_save),
        RpcMethod("plugin/share/updateTargets", plugin_share_update_targets),
        RpcMethod("plugin/share/list", plugin_share_list),
        RpcMethod("plugin/share/checkout", plugin_share_checkout),
        RpcMethod("plugin/share/delete", plugin_share_delete),
    ]
