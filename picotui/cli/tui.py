"""`picotui` with no subcommand: the terminal app (picotui.ui.app.run_tui), or `--check` headless."""

from __future__ import annotations

import argparse
import sys

from picotui.config import GRAPHICS_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--graphics", choices=GRAPHICS_CHOICES,
                        default=None, help="how to draw images (env PICOTUI_GRAPHICS; default auto-detect)")
    parser.add_argument("--preview-rate", default=None, metavar="BYTES",
                        help="bytes per second the live preview may send to the terminal, e.g. 200K (default), "
                             "1M, 0 = no limit (env PICOTUI_PREVIEW_RATE; config preview_rate)")
    parser.add_argument("--check", action="store_true",
                        help="headless self-test: load the demo model, generate one tiny image, exit")


def run(args: argparse.Namespace) -> int:
    if args.check:
        from picotui.cli.generate import run_check
        from picotui.ui.graphics import check_lines

        for line in check_lines(getattr(args, "graphics", None)):  # stderr: stdout stays the one "ok" line
            print(line, file=sys.stderr, flush=True)
        return run_check(args)
    from picotui.ui.app import run_tui

    return run_tui(args)
