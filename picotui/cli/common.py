"""Helpers shared by the subcommands: the parser class, the flags every command takes, settings."""

from __future__ import annotations

import argparse
import sys

from picotui.engine.hardware.speed import SPEED_SETTINGS
from picotui.paths import Paths, resolve_paths


def terminal_safe(text: str) -> str:
    """One line with control characters (ESC, BEL, C1...) shown as visible escapes: what an error
    message may embed (file names, arguments) can never drive the terminal."""
    from picotui.engine.recipes.metadata import sanitize_for_terminal

    return sanitize_for_terminal(str(text), keep_newlines=False)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse prints the usage block and then the
    error; a person needs the error and where to look). Used for the main parser and, through
    `add_subparsers(parser_class=SubcommandParser)`, every subcommand."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: {terminal_safe(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


class SubcommandParser(Parser):
    def parse_known_args(self, args=None, namespace=None):
        # argparse asks a subcommand's parser for *known* arguments and leaves the rest to the main
        # parser, which then reports them as "picotui: unrecognized arguments" without naming the
        # command. Nothing after a subcommand belongs to the main parser, so the subcommand says it.
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


PATH_FLAGS = {  # flag -> help; the config/state/cache ones also have env variables (and state/cache config keys)
    "models": "models folder (env PICOTUI_MODELS, config 'models')",
    "outputs": "outputs folder (env PICOTUI_OUTPUTS, config 'outputs')",
    "config": "config file (env PICOTUI_CONFIG)",
    "state": "folder for the log (env PICOTUI_STATE, config 'state')",
    "cache": "folder for the hash cache and the demo model (env PICOTUI_CACHE, config 'cache')",
}


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    """--models, --outputs, --config, --state, --cache, accepted before or after the subcommand.

    SUPPRESS as the default (as in add_engine_arguments): a subcommand's unset flag must not overwrite
    the same flag given before it (`picotui --models X paths`).
    """
    for name, text in PATH_FLAGS.items():
        parser.add_argument(f"--{name}", metavar="FILE" if name == "config" else "DIR", default=argparse.SUPPRESS,
                            help=text)


def path_flags(args: argparse.Namespace) -> dict:
    """The path flags as resolve_paths keyword arguments (None where not given)."""
    return {"config_file" if name == "config" else name: getattr(args, name, None) for name in PATH_FLAGS}


def load_settings(args: argparse.Namespace):
    """(Config, Paths) for this command line: --config picks the file; every path is flag > env >
    config > default."""
    from picotui.config import load_config

    flags = path_flags(args)
    config = load_config(resolve_paths(config_file=flags["config_file"]).config_file)
    return config, resolve_paths(**flags, config=config.values)


def paths_from_args(args: argparse.Namespace) -> Paths:
    return load_settings(args)[1]


MEMORY_MODES = ("auto", "full-gpu", "text-encoder-offload", "vae-tiling", "model-offload", "sequential-offload",
                "attention-slicing")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that shape the engine, for `picotui` and `picotui generate` alike.

    SUPPRESS as the default: a subcommand's unset flag must not overwrite the same flag given before it
    (`picotui --device cpu generate ...`).
    """
    unset = argparse.SUPPRESS
    parser.add_argument("--device", default=unset, help="auto (default), cuda, cuda:N or cpu (env PICOTUI_DEVICE)")
    parser.add_argument("--allow-pickle", action="store_true", default=unset,
                        help="allow .ckpt/.pt files, loaded as weights only, never code (env PICOTUI_ALLOW_PICKLE)")
    parser.add_argument("--memory-mode", default=unset, choices=MEMORY_MODES, metavar="MODE",
                        help=f"how hard to save VRAM: {', '.join(MEMORY_MODES)} (env PICOTUI_MEMORY_MODE)")
    parser.add_argument("--speed", default=unset, choices=SPEED_SETTINGS,
                        help="auto (default: CUDA graphs on sm_70+ when memory allows), eager, cuda-graphs "
                             "(env PICOTUI_SPEED)")


def engine_options(args: argparse.Namespace, config) -> dict:
    """Worker keyword arguments: each from its flag, else the environment, else the config file, else default."""
    return {"device": config.get("device", getattr(args, "device", None)),
            "allow_pickle": bool(config.get("allow_pickle", getattr(args, "allow_pickle", None))),
            "memory_mode": config.get("memory_mode", getattr(args, "memory_mode", None)),
            "speed": config.get("speed", getattr(args, "speed", None))}
