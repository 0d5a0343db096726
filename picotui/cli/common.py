"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse

from picotui.paths import Paths, resolve_paths


def paths_from_args(args: argparse.Namespace) -> Paths:
    from picotui.config import load_config

    return resolve_paths(models=getattr(args, "models", None), outputs=getattr(args, "outputs", None),
                         config=load_config().values)
