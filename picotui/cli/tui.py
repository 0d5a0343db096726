"""`picotui` with no subcommand: the terminal app (picotui.ui.app.PicoApp), or `--check` headless."""

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
    return run_tui(args)


def run_tui(args: argparse.Namespace) -> int:
    """Settings from the command line, the environment and the config file, then the app."""
    from picotui.cli.common import engine_options, load_settings
    from picotui.logs import capture_warnings, setup_logging
    from picotui.ui.app import PicoApp

    config, paths = load_settings(args)  # --config/--models/--outputs/--state/--cache, env, config file
    folders_problem = paths.make_model_folders()
    setup_logging(paths)  # never to the terminal: a stray line would tear the screen
    capture_warnings()
    notices = [problem for problem in (config.problem, folders_problem) if problem]
    choice = config.get("graphics", getattr(args, "graphics", None))
    from picotui.ui import graphics

    rate_problem = graphics.set_preview_rate(config.get("preview_rate", getattr(args, "preview_rate", None)))
    notices += [rate_problem] if rate_problem else []
    app = PicoApp(paths, graphics_choice=choice, engine_options=engine_options(args, config), notices=notices,
                  keymap=config.keymap)
    app.run()
    return int(app.return_code or 0)
