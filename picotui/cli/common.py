"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from picotui.paths import Paths, resolve_paths


def paths_from_args(args: argparse.Namespace) -> Paths:
    from picotui.config import load_config

    return resolve_paths(models=getattr(args, "models", None), outputs=getattr(args, "outputs", None),
                         config=load_config().values)


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
    parser.add_argument("--speed", default=unset, choices=("auto", "eager", "cuda-graphs"),
                        help="auto (default: CUDA graphs on sm_70+ when memory allows), eager, cuda-graphs "
                             "(env PICOTUI_SPEED)")


def engine_options(args: argparse.Namespace, config) -> dict:
    """Worker keyword arguments: each from its flag, else the environment, else the config file, else default."""
    return {"device": config.get("device", getattr(args, "device", None)),
            "allow_pickle": bool(config.get("allow_pickle", getattr(args, "allow_pickle", None))),
            "memory_mode": config.get("memory_mode", getattr(args, "memory_mode", None)),
            "speed": config.get("speed", getattr(args, "speed", None))}
