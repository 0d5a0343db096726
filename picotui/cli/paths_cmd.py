"""`picotui paths`: where everything lives, where each place came from, and how to move it."""

from __future__ import annotations

import argparse
import sys

from picotui.config import env_problems, load_config, resolve
from picotui.paths import resolve_paths


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paths", help="print where models, outputs, config, logs and caches live")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config()
    flags = {"models": getattr(args, "models", None), "outputs": getattr(args, "outputs", None)}
    paths = resolve_paths(models=flags["models"], outputs=flags["outputs"], config=config.values)
    src = {key: resolve(key, flags[key], config.values)[1] for key in flags}
    rows = [("models", paths.models, f"from {src['models']}; set with --models, PICOTUI_MODELS or config 'models'"),
            ("outputs", paths.outputs, f"from {src['outputs']}; set with --outputs, PICOTUI_OUTPUTS or config 'outputs'"),
            ("config", paths.config_file, "TOML; PICOTUI_CONFIG" + ("" if paths.config_file.is_file() else "; not created yet")),
            ("settings", paths.settings_file, "last used form values"),
            ("log", paths.log_file, "PICOTUI_STATE moves it"),
            ("cache", paths.cache, "hashes, demo model; PICOTUI_CACHE moves it")]
    for name, path, how in rows:
        print(f"{name:<9}{path}    # {how}")
    # Problems go to stderr so `picotui paths | ...` still gets clean rows; never a traceback.
    for line in ([config.problem] if config.problem else []) + env_problems():
        print(f"picotui: {line}", file=sys.stderr)
    return 0
