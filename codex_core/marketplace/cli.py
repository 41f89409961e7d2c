"""``codex-app-server plugin ...`` and ``codex-app-server marketplace ...``.

``add_commands`` adds both subcommands to ``codex-app-server``'s parser and ``run_for``
executes them; they work without a running server (installs land in this interpreter's
environment, catalogs are recorded in the user's config.toml, like over the protocol).

Every start builds the parser, so the catalog, installer and sources modules are imported
only by the functions that run a command.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.marketplace import catalog as catalogs
    from codex_core.marketplace import install as installer


def add_commands(commands: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add ``plugin`` and ``marketplace`` to an ``add_subparsers()`` object."""
    plugin = commands.add_parser(
        "plugin",
        help="the plugins the catalogs offer: list, install, upgrade, uninstall",
        description="The plugins the catalogs (marketplaces) offer: list, install, upgrade and "
        "uninstall them. `codex-app-server plugins list` shows the plugins this server has "
        "installed and whether each loaded.",
        parents=parents,
    )
    sub = plugin.add_subparsers(dest="plugin_command", required=True)
    listing = sub.add_parser(
        "list",
        help="the plugins the catalogs offer, and which are installed",
        description="The plugins the catalogs offer, and the installed version of each. "
        "`codex-app-server plugins list` shows the installed plugins and whether each loaded.",
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    for name in ("install", "upgrade", "uninstall"):
        command = sub.add_parser(name, help=f"{name} NAME or NAME@MARKETPLACE")
        command.add_argument("plugin", metavar="NAME")
    new = sub.add_parser("new", help="create a new plugin distribution to start from")
    new.add_argument("name", metavar="NAME", help="e.g. `weather`: makes codex-plugin-weather/")
    new.add_argument("--dir", type=Path, default=Path.cwd(), help="where (default: here)")
    kinds = new.add_mutually_exclusive_group()
    kinds.add_argument(
        "--tool",
        action="store_const",
        const="tool",
        default="method",
        dest="kind",
        help="a plugin that gives the model a tool (default: one that adds a JSON-RPC method)",
    )
    kinds.add_argument(
        "--transport",
        action="store_const",
        const="transport",
        dest="kind",
        help="a plugin that serves the protocol at NAME://HOST:PORT (JSON lines over TCP)",
    )

    market = commands.add_parser(
        "marketplace", help="add, remove, upgrade and list plugin catalogs", parents=parents
    )
    msub = market.add_subparsers(dest="marketplace_command", required=True)
    msub.add_parser("list", help="the catalogs plugin commands read, and those that fail")
    add = msub.add_parser("add", help="add a catalog: a local folder or a marketplace.json URL")
    add.add_argument("source", metavar="SOURCE")
    remove = msub.add_parser("remove", help="forget a catalog (and its downloaded copy)")
    remove.add_argument("name", metavar="NAME")
    upgrade = msub.add_parser("upgrade", help="download URL catalogs again")
    upgrade.add_argument("name", metavar="NAME", nargs="?")


def run_for(kernel: Kernel, args: argparse.Namespace) -> int:
    from codex_core.marketplace import install as installer

    # Entries that do not parse are reported by the commands themselves, in words that say
    # what to do; the catalog module's log line for each is meant for a server's log.
    logging.getLogger("codex_core.marketplace.catalog").setLevel(logging.ERROR)
    if args.command == "marketplace":
        return _marketplace(kernel, args)
    if args.plugin_command == "new":
        from codex_core.marketplace import scaffold

        try:
            root = scaffold.create(args.name, args.dir, args.kind)
        except ValueError as exc:
            print(f"codex-app-server: {exc}", file=sys.stderr)
            return 2
        print(f"created {root}: pip install -e '{root}[test]' && pytest {root}")
        return 0
    found, errors = _load_reported(kernel)
    for error in errors:
        print(f"warning: skipped {error.location}: {error.message}", file=sys.stderr)
    if args.plugin_command == "list":
        return _list_plugins(found, as_json=args.json)
    name, _, marketplace = args.plugin.partition("@")
    match = [
        (catalog, entry)
        for catalog in found
        if not marketplace or catalog.name == marketplace
        for entry in catalog.entries
        if entry.name == name
    ]
    if not match:
        print(f"codex-app-server: {_not_found(found, name, marketplace)}", file=sys.stderr)
        return 1
    catalog, entry = match[0]
    progress = ProgressPrinter(sys.stderr)
    try:
        if args.plugin_command == "uninstall":
            distribution = installer.distribution_name(catalog, entry)
            done = installer.uninstall(distribution, progress)
            progress.close()
            print(f"uninstalled {done.distribution} {done.version}")
            _reload_running_servers()
            return 0
        upgrade = args.plugin_command == "upgrade"
        done = installer.install(catalog, entry, progress, upgrade=upgrade)
    except installer.InstallError as exc:
        progress.close()
        print(f"codex-app-server: {exc}", file=sys.stderr)
        return 1
    progress.close()
    if done.previous == done.version:
        print(f"{done.distribution} {done.version} is up to date")
    elif upgrade:
        print(f"upgraded {done.distribution} {done.previous} -> {done.version}")
    else:
        print(f"installed {done.distribution} {done.version}")
    if done.previous != done.version:
        _reload_running_servers()
    return 0


def _reload_running_servers() -> None:
    """Tell the servers running from this environment (``control``), on stderr: stdout keeps
    one line of what was installed."""
    from codex_core.marketplace import control

    answers = control.reload_servers()
    if answers:
        servers = "server" if len(answers) == 1 else "servers"
        their = "its" if len(answers) == 1 else "their"
        print(f"{len(answers)} running {servers} reloaded {their} plugins", file=sys.stderr)


def _not_found(found: list[catalogs.Catalog], name: str, marketplace: str) -> str:
    """Which name was not found where, the closest names that were, and how to see them all."""
    import difflib

    if marketplace and all(catalog.name != marketplace for catalog in found):
        names = [catalog.name for catalog in found]
        close = difflib.get_close_matches(marketplace, names, n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        return (
            f"no marketplace is named {marketplace}; {hint}"
            "`codex-app-server marketplace list` shows the catalogs"
        )
    offered = [
        entry.name
        for catalog in found
        if not marketplace or catalog.name == marketplace
        for entry in catalog.entries
    ]
    close = difflib.get_close_matches(name, offered, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    where = f"not in marketplace {marketplace}" if marketplace else "in no catalog"
    return (
        f"plugin {name} is {where}; {hint}"
        "`codex-app-server plugin list` shows what the catalogs offer"
    )


def _load_reported(kernel: Kernel) -> tuple[list[catalogs.Catalog], list[catalogs.CatalogError]]:
    """The catalogs, and each entry that did not parse reported on stderr."""
    from codex_core.marketplace.methods import load_catalogs

    found, errors = load_catalogs(kernel)
    _warn_skipped_entries(found)
    return found, errors


def _warn_skipped_entries(found: list[catalogs.Catalog]) -> None:
    """Entries a catalog lists but that did not parse: not installable, and not silent."""
    for catalog in found:
        for skipped in catalog.skipped:
            print(
                f"warning: marketplace {catalog.name}: skipped {skipped}; "
                f"fix that entry in {catalog.location}",
                file=sys.stderr,
            )


def _list_plugins(found: list[catalogs.Catalog], *, as_json: bool) -> int:
    from codex_core.marketplace import install as installer

    rows = [
        {
            "id": f"{entry.name}@{catalog.name}",
            "installed": installer.installed_version(installer.distribution_name(catalog, entry)),
            "description": entry.description or "",
        }
        for catalog in found
        for entry in catalog.entries
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [[str(row["id"]), row["installed"] or "-", str(row["description"])] for row in rows]
    if not _print_table(["PLUGIN", "INSTALLED", "DESCRIPTION"], table):
        for plugin, state, description in table:
            print(f"{plugin:<40} {state:<10} {description}".rstrip())
    return 0


def _print_table(headers: list[str], rows: list[list[str]]) -> bool:
    """A rich table on stdout when it is a terminal (True); else nothing, for the caller's
    plain columns, which scripts and logs read (False). rich is imported only then."""
    if not sys.stdout.isatty():
        return False
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, box=None, header_style="bold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return True


def _marketplace(kernel: Kernel, args: argparse.Namespace) -> int:
    from codex_core.marketplace import sources

    command = args.marketplace_command
    try:
        if command == "add":
            added = anyio.run(sources.add, kernel, sources.terminal_source(args.source))
            state = "already added" if added.already else "added"
            print(f"{state} marketplace {added.name} ({added.root})")
            for skipped in added.skipped:
                print(
                    f"warning: marketplace {added.name}: skipped {skipped}; fix that entry "
                    "and run `codex-app-server marketplace list` to check",
                    file=sys.stderr,
                )
        elif command == "remove":
            anyio.run(sources.remove, kernel, args.name)
            print(f"removed marketplace {args.name}")
        elif command == "upgrade":
            outcome = anyio.run(sources.upgrade, kernel, args.name)
            for root in outcome.roots:
                print(f"upgraded {root}")
            for name, message in outcome.errors:
                print(f"codex-app-server: {name}: {message}", file=sys.stderr)
            return 1 if outcome.errors else 0
        else:
            found, errors = _load_reported(kernel)
            rows = [[c.name, f"{len(c.entries)} plugins", c.location] for c in found]
            if not _print_table(["MARKETPLACE", "PLUGINS", "LOCATION"], rows):
                for catalog in found:
                    name, count = catalog.name, len(catalog.entries)
                    print(f"{name:<24} {count:>3} plugins  {catalog.location}")
            for error in errors:
                print(
                    f"codex-app-server: skipped {error.location}: {error.message}", file=sys.stderr
                )
    except sources.SourceError as exc:
        print(f"codex-app-server: {exc.for_terminal()}", file=sys.stderr)
        return 1
    return 0


class ProgressPrinter:
    """Install progress on ``stream``: a rich progress bar on a terminal, else one plain line
    per step (logs and CI output stay readable). rich is imported only for a terminal."""

    def __init__(self, stream: TextIO) -> None:
        from codex_core.marketplace import install as installer

        self.stream = stream
        self.tty = stream.isatty()
        self._bar: Any = None  # rich.progress.Progress, once something is shown
        self._task: Any = None
        self._report = installer.milestones(self._draw)
        self._message = ""

    def __call__(self, progress: installer.Progress) -> None:
        self._report(progress)

    def _draw(self, progress: installer.Progress) -> None:
        if not self.tty:
            if progress.message != self._message:
                print(f"{progress.message} ...", file=self.stream, flush=True)
            self._message = progress.message
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                console=Console(file=self.stream),
            )
            self._bar.start()
        if self._task is None or progress.message != self._message:
            if self._task is not None:  # the step before is done: its bar shows full
                self._bar.update(self._task, total=1, completed=1)
            self._task = self._bar.add_task(progress.message, total=None)
        self._message = progress.message
        if progress.done is not None and progress.total:
            self._bar.update(self._task, total=progress.total, completed=progress.done)

    def close(self) -> None:
        """Finish the bar, so what follows starts on its own line."""
        if self._bar is not None:
            if self._task is not None:
                self._bar.update(self._task, total=1, completed=1)
            self._bar.stop()
            self._bar = self._task = None
