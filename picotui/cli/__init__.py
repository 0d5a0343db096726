"""`picotui` command line: the TUI by default, plus headless subcommands.

Each subcommand lives in its own module with `register(subparsers)`; heavy imports (torch,
textual) happen inside the command, so `picotui --help` is instant.
"""

from __future__ import annotations

import argparse
import sys

from picotui import __version__
from picotui.engine.errors import PicoError


def build_parser() -> argparse.ArgumentParser:
    from picotui.cli import generate, inspect, paths_cmd, tui
    from picotui.cli.common import add_engine_arguments

    parser = argparse.ArgumentParser(prog="picotui", description="Stable Diffusion 1.5 in your terminal.")
    parser.add_argument("--version", action="version", version=f"picotui {__version__}")
    parser.add_argument("--models", metavar="DIR", help="models folder (env PICOTUI_MODELS)")
    parser.add_argument("--outputs", metavar="DIR", help="outputs folder (env PICOTUI_OUTPUTS)")
    tui.add_arguments(parser)
    add_engine_arguments(parser)
    parser.set_defaults(func=tui.run)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (generate, inspect, paths_cmd):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PicoError as exc:
        print(f"picotui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("picotui: interrupted", file=sys.stderr)
        return 130
