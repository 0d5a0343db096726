"""`picotui paths`: where everything lives, and how to move it."""

from __future__ import annotations

import argparse

from picotui.cli.common import paths_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paths", help="print where models, outputs, config, logs and caches live")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = paths_from_args(args)
    rows = [("models", paths.models, "--models / PICOTUI_MODELS / config 'models'"),
            ("outputs", paths.outputs, "--outputs / PICOTUI_OUTPUTS / config 'outputs'"),
            ("config", paths.config_file, "PICOTUI_CONFIG"),
            ("settings", paths.settings_file, "last used form values"),
            ("log", paths.log_file, "PICOTUI_STATE"),
            ("cache", paths.cache, "PICOTUI_CACHE (hashes, demo model)")]
    for name, path, how in rows:
        print(f"{name:<9}{path}    # {how}")
    return 0
