"""``codex-app-server plugin list|install|uninstall``: the catalog from the command line.

``add_commands`` adds the ``plugin`` subcommand to ``codex-app-server``'s parser and ``run``
executes it; both work without a running server (installs land in this interpreter's
environment, like over the protocol).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_core.marketplace import catalog as catalogs
from codex_core.marketplace import install as installer

if TYPE_CHECKING:
    from codex_core.kernel import Kernel


def add_commands(commands: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add ``plugin list|install|uninstall|new`` to an ``add_subparsers()`` object."""
    plugin = commands.add_parser(
        "plugin", help="list, install and uninstall plugins from catalogs", parents=parents
    )
    sub = plugin.add_subparsers(dest="plugin_command", required=True)
    listing = sub.add_parser("list", help="every catalog's plugins and whether installed")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    for name in ("install", "uninstall"):
        command = sub.add_parser(name, help=f"{name} NAME or NAME@MARKETPLACE")
        command.add_argument("plugin", metavar="NAME")
    new = sub.add_parser("new", help="create a new plugin distribution to start from")
    new.add_argument("name", metavar="NAME", help="e.g. `weather`: makes codex-plugin-weather/")
    new.add_argument("--dir", type=Path, default=Path.cwd(), help="where (default: here)")


def run(config: dict[str, Any], args: argparse.Namespace) -> int:
    if args.plugin_command == "new":
        from codex_core.marketplace import scaffold

        try:
            root = scaffold.create(args.name, args.dir)
        except ValueError as exc:
            print(f"codex-app-server: {exc}", file=sys.stderr)
            return 2
        print(f"created {root}: pip install -e '{root}[test]' && pytest {root}")
        return 0
    found, errors = catalogs.load_all(catalogs.configured_sources(config))
    for error in errors:
        print(f"warning: skipped {error.location}: {error.message}", file=sys.stderr)
    if args.plugin_command == "list":
        rows = [
            {
                "id": f"{entry.name}@{catalog.name}",
                "installed": installer.installed_version(
                    installer.distribution_name(catalog, entry)
                ),
                "description": entry.description or "",
            }
            for catalog in found
            for entry in catalog.entries
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                state = row["installed"] or "-"
                print(f"{row['id']:<40} {state:<10} {row['description']}".rstrip())
        return 0
    name, _, marketplace = args.plugin.partition("@")
    match = [
        (catalog, entry)
        for catalog in found
        if not marketplace or catalog.name == marketplace
        for entry in catalog.entries
        if entry.name == name
    ]
    if not match:
        print(f"codex-app-server: plugin {args.plugin} is in no catalog", file=sys.stderr)
        return 1
    catalog, entry = match[0]
    try:
        if args.plugin_command == "install":
            print(f"installing {entry.name} from {catalog.name} ...", file=sys.stderr)
            done = installer.install(catalog, entry)
            print(f"installed {done.distribution} {done.version}")
        else:
            done = installer.uninstall(installer.distribution_name(catalog, entry))
            print(f"uninstalled {done.distribution} {done.version}")
    except installer.InstallError as exc:
        print(f"codex-app-server: {exc}", file=sys.stderr)
        return 1
    return 0


def run_for(kernel: Kernel, args: argparse.Namespace) -> int:
    return run(kernel.config.effective, args)
