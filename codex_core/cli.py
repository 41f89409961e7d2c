"""``codex-app-server``: serve the protocol, inspect plugins, export the schema."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codex_core import __version__

if TYPE_CHECKING:
    from codex_core.kernel import Kernel

LOG_ENV = "CODEX_CORE_LOG"


def _common_options(*, top_level: bool) -> argparse.ArgumentParser:
    """Options accepted before and after a subcommand.

    Only the top level sets defaults: a subcommand's default would silently replace what was
    given before the subcommand name.
    """
    common = argparse.ArgumentParser(add_help=False)
    default: object = [] if top_level else argparse.SUPPRESS
    common.add_argument(
        "-c",
        "--config",
        dest="overrides",
        action="append",
        default=default,
        metavar="KEY=VALUE",
        help="override a config.toml key for this run (TOML value, else a raw string)",
    )
    common.add_argument(
        "--disable-plugin",
        action="append",
        default=default,
        metavar="NAME",
        help="do not load this plugin (repeatable; also CODEX_CORE_DISABLE_PLUGINS=a,b)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(top_level=False)
    parser = argparse.ArgumentParser(
        prog="codex-app-server",
        description="A Codex app-server whose features come from plugins.",
        parents=[_common_options(top_level=True)],
    )
    parser.add_argument("--version", action="version", version=f"codex-app-server {__version__}")
    parser.add_argument(
        "--listen",
        default="stdio://",
        metavar="URL",
        help="where to serve: stdio:// (default) or any scheme an installed transport provides",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    plugins = commands.add_parser("plugins", help="inspect installed plugins", parents=[common])
    plugins_commands = plugins.add_subparsers(dest="plugins_command", required=True)
    listing = plugins_commands.add_parser(
        "list", help="every plugin with its state", parents=[common]
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    for name, what in (("generate-json-schema", "JSON Schema"), ("generate-ts", "TypeScript")):
        export = commands.add_parser(name, help=f"write the protocol's {what} to a folder")
        export.add_argument("--out", required=True, type=Path, metavar="DIR")
        export.add_argument(
            "--experimental", action="store_true", help="include experimental methods and fields"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get(LOG_ENV, "WARNING").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command in ("generate-json-schema", "generate-ts"):
        from codex_core.protocol import export

        write = (
            export.write_json_schema
            if args.command == "generate-json-schema"
            else export.write_typescript
        )
        written = write(args.out, experimental=args.experimental)
        print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
        return 0
    from codex_core.kernel import Kernel

    try:
        kernel = Kernel(config_overrides=args.overrides, disabled_plugins=args.disable_plugin)
    except ValueError as exc:  # a malformed -c flag
        print(f"codex-app-server: {exc}", file=sys.stderr)
        return 2
    if args.command == "plugins":
        return _list_plugins(kernel, as_json=args.json)
    return _serve(kernel, args.listen)


def _serve(kernel: Kernel, url: str) -> int:
    import anyio

    try:
        kernel.transport_for(url)
    except ValueError as exc:
        print(f"codex-app-server: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(kernel.serve, url, backend="asyncio")
    return 0


def _list_plugins(kernel: Kernel, *, as_json: bool) -> int:
    records = [record.as_dict() for record in kernel.plugins.records.values()]
    if as_json:
        print(json.dumps(records, indent=2))
        return 0
    rows = [["NAME", "VERSION", "STATE", "HOOKS", "ERROR"]]
    for record in records:
        hooks = ",".join(hook.removeprefix("codex_") for hook in record["hooks"])
        rows.append(
            [
                record["name"],
                record["version"] or "-",
                record["state"],
                hooks or "-",
                record["error"] or "",
            ]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[4]]).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
