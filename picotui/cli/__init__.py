"""`picotui` command line: the TUI by default, plus headless subcommands.

Each subcommand lives in its own module with `register(subparsers)`; heavy imports (torch,
textual) happen inside the command, so `picotui --help` is instant.

Bad input never shows a traceback: argparse errors, PicoError and OSError become one line on stderr
(control characters escaped) and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from picotui import __version__
from picotui.engine.errors import PicoError


def build_parser() -> argparse.ArgumentParser:
    from picotui.cli import generate, grid, inspect, paths_cmd, tui, upscale
    from picotui.cli.common import Parser, SubcommandParser, add_engine_arguments, add_path_arguments

    parser = Parser(prog="picotui", description="Stable Diffusion 1.5 in your terminal.")
    parser.add_argument("--version", action="version", version=f"picotui {__version__}")
    add_path_arguments(parser)
    tui.add_arguments(parser)
    add_engine_arguments(parser)
    parser.set_defaults(func=tui.run)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=SubcommandParser)
    for module in (generate, grid, inspect, paths_cmd, upscale):
        module.register(sub)
    for subparser in sub.choices.values():  # either position works: `picotui --models X models` or `models --models X`
        add_path_arguments(subparser)
    return parser


def _quiet_stdout() -> None:
    """After a broken pipe (`picotui paths | head -1`): point stdout and stderr at /dev/null so the
    interpreter's final flush cannot print "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    from picotui.cli.common import terminal_safe

    try:
        try:
            args = build_parser().parse_args(argv)  # --help and --version print, then exit
            return int(args.func(args) or 0)
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()  # a pipe buffers: a reader that went away shows up here, not at exit
    except BrokenPipeError:
        _quiet_stdout()
        return 141  # what a shell reports for a process killed by SIGPIPE
    except PicoError as exc:
        print(f"picotui: {terminal_safe(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be made or read: one line, the details in the log
        logging.getLogger("picotui").exception("command failed")
        print(f"picotui: {terminal_safe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("picotui: interrupted", file=sys.stderr)
        return 130
