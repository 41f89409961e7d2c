"""Finding, loading and isolating plugins.

Plugins come from the ``codex_core.plugins`` entry-point group, read through stevedore with its
on-disk entry-point cache so startup does not parse every installed distribution's metadata.
The kernel's own defaults (stdio, fs/*, ...) arrive the same way, from codex-core's own entry
points. pluggy alone would let one broken plugin take the whole process down (llm#1280); here
each plugin is imported, version-checked and called in isolation, and whatever goes wrong is
recorded on its ``PluginRecord`` for ``plugins list``, the log, and a warning to clients.

"Whatever goes wrong" means any ``BaseException``, not just ``Exception``: a plugin that calls
``sys.exit()``, raises ``KeyboardInterrupt`` or a stray ``asyncio.CancelledError`` would
otherwise end the whole server (a ``CancelledError`` even silently, with exit 0). The only
exception let through is the kernel's own cancellation (``is_cancellation``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import pluggy

from codex_core import __version__, hookspecs

if TYPE_CHECKING:
    from collections.abc import Generator

    from codex_core.plugin_trace import HookTracer

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "codex_core.plugins"
#: Comma-separated plugin names to skip, for one run (``CODEX_CORE_DISABLE_PLUGINS=mcp,guardian``).
DISABLE_ENV = "CODEX_CORE_DISABLE_PLUGINS"
#: Set (to anything but ``0``) to print every hook call, its plugin, result and time to stderr.
TRACE_ENV = "CODEX_CORE_TRACE_PLUGINS"

State = Literal["loaded", "failed", "disabled"]


@dataclass(slots=True)
class PluginRecord:
    """What the kernel knows about one plugin, whether or not it works."""

    name: str
    source: str  # the entry point's target, or the object's repr for plugins passed in
    distribution: str | None = None
    version: str | None = None
    state: State = "loaded"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)

    def fail(self, error: str) -> None:
        self.state = "failed"
        self.error = error

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "state": self.state,
            "hooks": self.hooks,
            "error": self.error,
        }


def describe(exc: BaseException) -> str:
    """``Type: message`` (just ``Type`` when there is no message, as for ``sys.exit()``)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc``, caught around awaited plugin code, is the kernel cancelling the task.

    That is exactly when it is the backend's cancellation exception and a cancel scope around
    the task has been cancelled (a closed connection, a shutdown, an interrupted turn): it
    must propagate for the scope to end. A plugin raising ``CancelledError`` by itself is a
    plugin failure like any other. Call it only inside a task; synchronous plugin code cannot
    be cancelled, so there every ``BaseException`` is the plugin's.
    """
    return (
        isinstance(exc, anyio.get_cancelled_exc_class())
        and anyio.current_effective_deadline() == -math.inf
    )


def disabled_from_env() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


class PluginManager:
    """One pluggy manager plus the record of every plugin it was offered.

    A kernel owns one; nothing here is module-global, so several kernels can live in one
    process (embedding, tests).
    """

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager("codex")
        self._pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._entry_point_names: set[str] = set()
        #: Set when ``CODEX_CORE_TRACE_PLUGINS`` asks for every hook call on stderr.
        self.tracer: HookTracer | None = None
        if os.environ.get(TRACE_ENV, "") not in ("", "0"):
            from codex_core.plugin_trace import HookTracer

            self.tracer = HookTracer(sys.stderr)
            self._pm.add_hookcall_monitoring(self.tracer.before, self.tracer.after)

    # ------------------------------------------------------------------ loading

    def load_entry_points(self, disabled: Iterable[str] = ()) -> None:
        """Import and register every plugin of the entry-point group, except ``disabled``."""
        skip = set(disabled)
        owners = _Owners()
        for entry_point in _group_entry_points():
            name, target = entry_point.name, entry_point.value
            if name in self.records:
                if self.records[name].source != target:
                    log.warning("plugin %s: a second entry point (%s) was ignored", name, target)
                continue
            record = self.records[name] = PluginRecord(name, target)
            self._entry_point_names.add(name)
            record.distribution, record.version, incompatible = owners.distribution_of(target)
            if name in skip:
                record.state = "disabled"
                continue
            if incompatible:
                record.fail(incompatible)
                log.error("plugin %s not loaded: %s", name, incompatible)
                continue
            try:
                plugin = entry_point.load()
            except BaseException as exc:  # sys.exit() at import time included
                record.fail(f"failed to import {target}: {describe(exc)}")
                log.exception("plugin %s failed to import", name)
                continue
            self._register(record, plugin)

    def refresh(self, disabled: Iterable[str] = ()) -> tuple[list[str], list[str]]:
        """Re-read the entry points after an install or uninstall: ``(added, removed)``.

        Plugins whose entry point is gone are unregistered and forgotten (their modules are
        dropped from ``sys.modules``, so a reinstall imports the new code); new entry points
        are loaded like at startup. Plugins passed to ``add`` are left alone.
        """
        import importlib

        from stevedore import _cache

        # stevedore keeps a per-process copy keyed by sys.path, which an install leaves as is.
        _cache._c._internal.clear()
        importlib.invalidate_caches()
        current = {ep.name: ep.value for ep in _group_entry_points()}
        removed = [
            name
            for name, record in self.records.items()
            if name in self._entry_point_names and current.get(name) != record.source
        ]
        for name in removed:
            record = self.records.pop(name)
            self._entry_point_names.discard(name)
            plugin = self._pm.get_plugin(name)
            if plugin is not None:
                self._pm.unregister(plugin)
            module = record.source.split(":", 1)[0]
            for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
                del sys.modules[loaded]
        before = set(self.records)
        self.load_entry_points(disabled)
        return [name for name in self.records if name not in before], removed

    def add(self, plugin: object, name: str | None = None) -> PluginRecord:
        """Register a plugin object directly (embedding hosts and tests)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        record = self.records[name] = PluginRecord(name, repr(plugin))
        self._register(record, plugin)
        return record

    def _register(self, record: PluginRecord, plugin: object) -> None:
        try:
            self._pm.register(plugin, name=record.name)
        except BaseException as exc:  # pluggy validates hookimpl signatures here
            record.fail(f"invalid plugin: {exc}")
            log.error("plugin %s rejected: %s", record.name, exc)
            return
        record.hooks = sorted(
            impl_caller.name for impl_caller in self._pm.get_hookcallers(plugin) or ()
        )

    # ------------------------------------------------------------------ calling

    def call_each(
        self, hook: str, *, only: Iterable[str] | None = None, **kwargs: Any
    ) -> Iterator[tuple[PluginRecord, Any]]:
        """Call ``hook`` on each healthy plugin separately, isolating failures.

        pluggy stops at the first exception; calling implementations one by one lets us blame
        the right plugin and keep going. A plugin that raises is marked failed and
        unregistered, so it never contributes half of its features.

        Each implementation goes through pluggy's own executor (``HookCaller._hookexec``, what
        pluggy's ``call_historic`` uses for one implementation), not a direct call, so hook
        tracing (``pm.add_hookcall_monitoring``, ``CODEX_CORE_TRACE_PLUGINS``) sees every call
        and hook wrappers (``wrapper=True``) wrap each implementation. A guard around the whole
        hook could not keep going after the first failure, and ``subset_hook_caller`` drops a
        plugin's wrappers along with its implementations; one executor call per implementation
        keeps both. A wrapper that raises is blamed on its own plugin (``_call_one``).
        """
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook)
        wanted = None if only is None else set(only)
        # get_hookimpls() is in registration order (pluggy calls them in reverse); oldest
        # first is what people expect.
        for impl in caller.get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                continue
            record = self.records.get(impl.plugin_name)
            if record is None or record.state != "loaded":
                continue
            if wanted is not None and record.name not in wanted:
                continue
            called, result = self._call_one(caller, impl, kwargs)
            if called:
                yield record, result

    def _call_one(
        self, caller: pluggy.HookCaller, impl: pluggy.HookImpl, kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        """``(True, result)`` of one implementation with the wrappers around it, else
        ``(False, None)`` when it raised (its plugin is then failed).

        Synchronous, so whatever it catches is never the kernel's own cancellation. With
        wrappers, an innermost wrapper of ours (``_Guard``) tells whether the implementation
        itself raised; otherwise the failure is the wrapper's found in the traceback, whose plugin
        is failed and unregistered: the implementation's result is kept if it had returned, or
        the call is made again without that wrapper if it had not run yet.
        """
        while True:
            wrappers = [
                wrapper
                for wrapper in caller.get_hookimpls()
                if (wrapper.wrapper or wrapper.hookwrapper) and self._healthy(wrapper)
            ]
            guard = _Guard() if wrappers else None
            chain = [impl] if guard is None else [impl, guard.impl, *wrappers]
            try:
                # Not firstresult: pluggy collects the non-None results in a list.
                results = cast("list[Any]", caller._hookexec(caller.name, chain, kwargs, False))
            except BaseException as exc:
                if guard is None or guard.raised or (culprit := _raised_in(exc, wrappers)) is None:
                    self._blame(impl, caller.name, exc)
                    return False, None
                self._blame(culprit, caller.name, exc)
                if not self._healthy(impl):  # the wrapper was the implementation's own plugin's
                    return False, None
                if guard.results is None:
                    continue  # it had not run yet: again, without that wrapper
                results = guard.results
            return True, results[0] if results else None

    def _healthy(self, impl: pluggy.HookImpl) -> bool:
        record = self.records.get(impl.plugin_name)
        return record is not None and record.state == "loaded"

    def _blame(self, impl: pluggy.HookImpl, hook: str, exc: BaseException) -> None:
        record = self.records[impl.plugin_name]  # call_each calls only plugins it knows
        self.fail(record, f"{hook} raised {describe(exc)}")
        log.error("plugin %s failed in %s", record.name, hook, exc_info=exc)

    def notify(self, hook: str, *, only: Iterable[str] | None = None, **kwargs: Any) -> None:
        """Call a ``notification`` hook on every healthy plugin (what they return is unused)."""
        assert hookspecs.INTERFACES[hook].returns == "notification", hook
        for _record, _result in self.call_each(hook, only=only, **kwargs):
            pass

    def fail(self, record: PluginRecord, error: str) -> None:
        record.fail(error)
        plugin = self._pm.get_plugin(record.name)
        if plugin is not None:
            self._pm.unregister(plugin)

    def failures(self) -> list[PluginRecord]:
        return [record for record in self.records.values() if record.state == "failed"]


class _Guard:
    """The innermost wrapper of one guarded call: did the implementation raise, or return?

    ``call_each`` puts it right around the implementation when plugins' wrappers run too, so
    that a failure can be pinned on the implementation or on a wrapper.
    """

    __slots__ = ("impl", "raised", "results")

    def __init__(self) -> None:
        self.raised = False
        #: What the implementation returned, as pluggy collects it (``[result]`` or ``[]``).
        self.results: list[Any] | None = None
        self.impl = pluggy.HookImpl(None, "codex-core guard", self._wrap, _GUARD_OPTIONS)

    def _wrap(self) -> Generator[None, list[Any], list[Any]]:
        try:
            results = yield
        except BaseException:
            self.raised = True
            raise
        self.results = results
        return results


_GUARD_OPTIONS: pluggy.HookimplOpts = {
    "wrapper": True,
    "hookwrapper": False,
    "optionalhook": False,
    "tryfirst": False,
    "trylast": False,
    "specname": None,
}


def _raised_in(exc: BaseException, impls: list[pluggy.HookImpl]) -> pluggy.HookImpl | None:
    """Which of ``impls`` raised ``exc``: the innermost of their frames in its traceback."""
    codes = {getattr(impl.function, "__code__", None): impl for impl in impls}
    found = None
    traceback = exc.__traceback__
    while traceback is not None:
        found = codes.get(traceback.tb_frame.f_code, found)
        traceback = traceback.tb_next
    return found


def _group_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The group's entry points through stevedore's on-disk cache.

    The cache turns "scan every installed distribution" into one small JSON read, refreshed
    whenever an install changes a ``sys.path`` folder or an ``entry_points.txt``. It is keyed
    by the path without the entry Python puts first for the script or ``-m`` (the working
    directory for ``python -m codex_core``): otherwise each new working directory would miss
    the cache, rescan everything and leave one more cache file behind. That entry holds the
    program being run, not installed distributions.
    """
    from stevedore._cache import get_group_all

    path = tuple(sys.path[1:]) if sys.path and not sys.flags.safe_path else None
    return get_group_all(ENTRY_POINT_GROUP, path=path)


class _Owners:
    """Each entry point's distribution, its version and its codex-core requirement.

    Looked up once per top-level package (the kernel's own nine entry points share one), with
    the distribution's metadata parsed once. ``importlib.metadata.packages_distributions()``
    would also answer, but it parses every installed distribution's METADATA and RECORD:
    about a second with 1,000 installed, for each startup, because of one plugin whose module
    is not named after its distribution (``bench/discovery.py``). Such plugins are found among
    the group's entry points instead, which reads only entry_points.txt files, once.
    """

    def __init__(self) -> None:
        self._found: dict[str, importlib.metadata.Distribution] | None = None
        self._packages: dict[str, tuple[str, str, str | None] | None] = {}

    def distribution_of(self, target: str) -> tuple[str | None, str | None, str | None]:
        """``(distribution, version, incompatibility)`` of an entry point's target (see
        ``_described``)."""
        top = target.split(":", 1)[0].split(".", 1)[0]
        if top not in self._packages:
            try:
                self._packages[top] = _described(importlib.metadata.distribution(top))
            except importlib.metadata.PackageNotFoundError:
                self._packages[top] = None
        described = self._packages[top]
        if described is not None:
            return described
        found = self._group_owner(target)
        return (None, None, None) if found is None else _described(found)

    def _group_owner(self, target: str) -> importlib.metadata.Distribution | None:
        if self._found is None:
            self._found = {
                entry_point.value: entry_point.dist
                for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
                if entry_point.dist is not None
            }
        return self._found.get(target)


def _described(dist: importlib.metadata.Distribution) -> tuple[str, str, str | None]:
    """``(name, version, why it cannot load with this codex-core, or None)``."""
    metadata = dist.metadata
    name, version = metadata["Name"], metadata["Version"]
    if name.replace("_", "-").lower() == "codex-core":
        return name, version, None
    return name, version, _verdicts().incompatibility(dist.requires or [])


class _Verdicts:
    """Whether a distribution's requirements admit this codex-core, remembered across runs.

    The answer depends only on the ``Requires-Dist`` lines and codex-core's version, and
    ``packaging``, which computes it, costs about 5% of a start to import (its tokenizer and
    specifier regexes) while the answer almost never changes. So verdicts are kept in a small
    JSON file under the user's cache folder, keyed by exactly those inputs: a different plugin
    version or codex-core version is a new key, never a stale answer. A cache that cannot be
    read or written only costs the computation.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            loaded = {}
        self._known: dict[str, str | None] = loaded if isinstance(loaded, dict) else {}

    def incompatibility(self, requires: list[str]) -> str | None:
        key = json.dumps([__version__, requires])
        if key not in self._known:
            self._known[key] = _incompatibility(requires)
            self._save()
        return self._known[key]

    def _save(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(self._known))
            os.replace(temporary, self._path)
        except OSError:
            log.debug("could not write %s", self._path, exc_info=True)


@functools.cache
def _verdicts() -> _Verdicts:
    return _Verdicts(user_cache_dir() / "plugin-requirements.json")


def user_cache_dir() -> Path:
    """codex-core's folder in the user's cache (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codex-core"


def _incompatibility(requires: list[str]) -> str | None:
    """Why a distribution requiring ``requires`` cannot load with this codex-core, or None."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    for line in requires:
        try:
            parsed = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(parsed.name) != "codex-core" or parsed.marker:
            continue
        if parsed.specifier.contains(Version(__version__), prereleases=True):
            return None
        return f"requires codex-core{parsed.specifier}, but this is codex-core {__version__}"
    return None
