"""``codex-app-server``: serve the protocol, inspect plugins, export the schema."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codex_core import __version__

if TYPE_CHECKING:
    from codex_core.kernel import Kernel
    from codex_core.plugins import PluginManager

LOG_ENV = "CODEX_CORE_LOG"

log = logging.getLogger("codex_core.cli")


def server_command(*args: str) -> list[str]:
    """The command line of ``codex-app-server ARGS`` from this interpreter's installation.

    ``python -m codex_core`` rather than the console script's name, so whoever starts the
    server (the demo, the test kit, ``Client.spawn()``) needs no activated venv and no venv
    ``bin`` on ``PATH``.
    """
    return [sys.executable, "-m", "codex_core", *args]


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
        "-p",
        "--profile",
        type=_profile_name,
        default=None if top_level else argparse.SUPPRESS,
        metavar="NAME",
        help="layer $CODEX_HOME/NAME.config.toml on top of the base user config",
    )
    common.add_argument(
        "--strict-config",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="refuse to start on unknown config keys or invalid values",
    )
    common.add_argument(
        "--disable-plugin",
        action="append",
        default=default,
        metavar="NAME",
        help="do not load this plugin (repeatable; also CODEX_CORE_DISABLE_PLUGINS=a,b)",
    )
    return common


def _profile_name(value: str) -> str:
    """A plain file-name stem, as the official CLI accepts for ``--profile``."""
    if not value or value in (".", "..") or any(sep in value for sep in "/\\"):
        raise argparse.ArgumentTypeError(
            f"invalid --profile value `{value}`; pass a plain name such as `work`"
        )
    return value


def build_parser(plugins: PluginManager | None = None) -> argparse.ArgumentParser:
    """The full command line; with plugins, plus the options they add."""
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
    installed = commands.add_parser(
        "plugins",
        help="the installed plugins and whether each loaded",
        description="The plugins installed in this server's environment. "
        "`codex-app-server plugin list` shows what the catalogs offer to install.",
        parents=[common],
    )
    plugins_commands = installed.add_subparsers(dest="plugins_command", required=True)
    listing = plugins_commands.add_parser(
        "list",
        help="every installed plugin: version, state (loaded, failed, disabled), hooks",
        description="Every installed plugin with its version, state and hooks. "
        "`codex-app-server plugin list` shows what the catalogs offer to install.",
        parents=[common],
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    from codex_core.marketplace.cli import add_commands

    add_commands(commands, parents=[common])
    for name, what in (("generate-json-schema", "JSON Schema"), ("generate-ts", "TypeScript")):
        export = commands.add_parser(name, help=f"write the protocol's {what} to a folder")
        export.add_argument("--out", required=True, type=Path, metavar="DIR")
        export.add_argument(
            "--experimental", action="store_true", help="include experimental methods and fields"
        )
    if plugins is not None:
        plugins.notify("codex_cli_options", parser=parser)
    return parser


def _asks_for_help(argv: Sequence[str]) -> bool:
    return any(arg in ("-h", "--help", "--version") for arg in argv)


def _print_help(argv: list[str], disabled: Sequence[str]) -> int:
    """Answer ``--help`` or ``--version`` from the plugins' options alone.

    Help says what the installed plugins accept, so it does not read the config (a broken
    ``config.toml`` does not hide it; ``--disable-plugin`` and the environment still apply).
    The plugins are imported and asked for their options only: no kernel is built, no
    contributions are collected, so help costs a fraction of a start.
    """
    from codex_core.plugins import PluginManager, disabled_from_env

    plugins = PluginManager()
    plugins.load_entry_points({*disabled, *disabled_from_env()})
    build_parser(plugins).parse_args(argv)  # prints and exits
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # Startup allocates tens of thousands of long-lived objects (modules, classes, pydantic
    # schemas) and hardly any garbage: the collector's passes over them cost ~6% of startup.
    # It stays off until the command line is parsed; then they are frozen out of its way
    # (``gc.freeze``) for the process's life. ``finally`` covers the early exits.
    gc.disable()
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        gc.enable()


def _main(argv: list[str]) -> int:
    logging.basicConfig(
        level=os.environ.get(LOG_ENV, "WARNING").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Two passes: the kernel (and so the plugins, which may add options) needs -c and
    # --disable-plugin first; then the whole command line is parsed strictly.
    early, rest = _common_options(top_level=True).parse_known_args(argv)
    from codex_core.server_info import resolve_codex_home

    if _asks_for_help(argv):
        return _print_help(argv, early.disable_plugin)
    codex_home = resolve_codex_home(None)
    handshake = None
    if rest in ([], ["--listen", "stdio://"], ["--listen=stdio://"]) and not early.strict_config:
        from codex_core.config.locations import may_refuse_start
        from codex_core.transports import stdio_handshake

        handshake = stdio_handshake.start(codex_home)
        if handshake is not None and not may_refuse_start(early.overrides, early.profile):
            handshake.allow_answer()  # nothing in the config can stop this start
    from codex_core.config import load_config

    try:
        config = load_config(codex_home, early.overrides, profile=early.profile)
    except ValueError as exc:  # a malformed -c flag
        print(f"codex-app-server: {exc}", file=sys.stderr)
        return 2
    if config.fatal:  # what the official server refuses to start with
        for problem in config.fatal:
            print(f"codex-app-server: {problem}", file=sys.stderr)
        return 2
    if handshake is not None:
        handshake.allow_answer()
    from codex_core.kernel import Kernel

    kernel = Kernel(config=config, disabled_plugins=early.disable_plugin)
    _warn_unknown_plugins(kernel, early.disable_plugin)
    from codex_core.config import strict_problems

    if problems := strict_problems(kernel.config):
        if early.strict_config:
            for problem in problems:
                print(f"codex-app-server: {problem}", file=sys.stderr)
            return 2
        if rest and rest[0] in _COMMANDS:  # a server logs them as configWarning (``_serve``)
            _warn_config(problems)
    args = build_parser(kernel.plugins).parse_args(argv)
    gc.freeze()
    gc.enable()
    kernel.cli_options = dict(vars(args))
    if args.command in ("generate-json-schema", "generate-ts"):
        from codex_core.protocol import export

        write = (
            export.write_json_schema
            if args.command == "generate-json-schema"
            else export.write_typescript
        )
        try:
            written = write(args.out, experimental=args.experimental)
        except OSError as exc:
            where = exc.filename or args.out
            print(
                f"codex-app-server: cannot write to {where}: {exc.strerror}; "
                "pass an --out folder you can create and write to",
                file=sys.stderr,
            )
            return 1
        print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
        return 0
    if args.command in ("plugin", "marketplace"):
        from codex_core.marketplace.cli import run_for

        return run_for(kernel, args)
    if args.command == "plugins":
        return _list_plugins(kernel, as_json=args.json)
    return _serve(kernel, args.listen)


#: The subcommands: each runs once and exits, so its config problems go to stderr as
#: warnings (a server reports them to its clients and its log instead).
_COMMANDS = ("plugins", "plugin", "marketplace", "generate-json-schema", "generate-ts")


def _warn_config(problems: list[str]) -> None:
    """Config problems a command runs despite: each, once, and what to do about them."""
    for problem in problems:
        print(f"codex-app-server: warning: {problem}", file=sys.stderr)
    print(
        "codex-app-server: warning: this run ignores what these lines name (all of a file "
        "that does not parse) and uses the defaults instead; fix them, or pass "
        "--strict-config to refuse to run with them",
        file=sys.stderr,
    )


def _warn_unknown_plugins(kernel: Kernel, disabled: list[str]) -> None:
    """A plugin name to disable (``--disable-plugin``, ``CODEX_CORE_DISABLE_PLUGINS``) that no
    installed plugin has: most likely a typo, and otherwise silently nothing."""
    import difflib

    from codex_core.plugins import DISABLE_ENV, disabled_from_env

    known = list(kernel.plugins.records)
    named = [(f"--disable-plugin {name}", name) for name in dict.fromkeys(disabled)]
    named += [(f"{DISABLE_ENV}: {name}", name) for name in sorted(disabled_from_env())]
    for where, name in named:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        print(
            f"codex-app-server: warning: {where}: no installed plugin has that name; "
            f"{hint}`codex-app-server plugins list` shows the names",
            file=sys.stderr,
        )


def _serve(kernel: Kernel, url: str) -> int:
    import anyio

    try:
        kernel.transport_for(url)
    except ValueError as exc:
        print(f"codex-app-server: {exc}", file=sys.stderr)
        return 2
    for warning in kernel.config.warnings:  # what clients get as configWarning, as the reference
        log.error("%s", " ".join(filter(None, (warning["summary"], warning.get("details")))))
    try:
        return anyio.run(_serve_until_signalled, kernel, url, backend="asyncio")
    except KeyboardInterrupt:  # before the signal handlers were in place
        return 0


async def _serve_until_signalled(kernel: Kernel, url: str) -> int:
    """Serve; the first SIGINT/SIGTERM drains gracefully (exit 0), a second one stops at once.

    Startup errors a transport raises (a bad listen URL or flag, an address in use) are
    reported without a traceback (exit 1). After a forced stop the exit code is 128 + signal.
    """
    import anyio

    forced: list[int] = []
    exit_code = 0
    async with anyio.create_task_group() as tasks:
        if os.name != "nt":
            tasks.start_soon(_handle_signals, kernel, forced)
        try:
            await kernel.serve(url)
        except (ValueError, OSError) as exc:
            print(f"codex-app-server: {exc}", file=sys.stderr)
            exit_code = 1
        tasks.cancel_scope.cancel()
    return forced[0] if forced else exit_code


async def _handle_signals(kernel: Kernel, forced: list[int]) -> None:
    import anyio

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tasks:
            async for signum in signals:
                name = signal.Signals(signum).name
                if not kernel.stopping:
                    log.info("%s: finishing running requests, then exiting", name)
                    tasks.start_soon(kernel.shutdown)
                else:
                    log.warning("%s again: exiting now", name)
                    forced.append(128 + signum)
                    kernel.stop_now()


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
