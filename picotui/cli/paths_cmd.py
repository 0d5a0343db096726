"""`picotui paths`: where everything lives, where each place came from, and how to move it."""

from __future__ import annotations

import argparse
import sys

HOW = {  # row -> how to move it
    "models": "--models, PICOTUI_MODELS or config 'models'",
    "outputs": "--outputs, PICOTUI_OUTPUTS or config 'outputs'",
    "config": "--config or PICOTUI_CONFIG",
    "log": "--state, PICOTUI_STATE or config 'state' (its folder)",
    "cache": "--cache, PICOTUI_CACHE or config 'cache'",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paths", help="print where models, outputs, config, log and caches live, and why",
                       description="One row per place: NAME PATH    # where it came from; how to move it. "
                                   "Sources: flag, an environment variable, config, or the default.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from picotui.cli.common import path_flags, terminal_safe
    from picotui.config import env_problems, load_config
    from picotui.paths import resolve_paths, resolve_paths_with_sources

    flags = path_flags(args)
    config = load_config(resolve_paths(config_file=flags["config_file"]).config_file)
    paths, src = resolve_paths_with_sources(**flags, config=config.values)
    config_note = "TOML" if paths.config_file.is_file() else "TOML, not created yet"
    rows = [("models", paths.models, f"from {src['models']}; set with {HOW['models']}"),
            ("outputs", paths.outputs, f"from {src['outputs']}; set with {HOW['outputs']}"),
            ("config", paths.config_file, f"{config_note}; from {src['config']}; set with {HOW['config']}"),
            ("settings", paths.settings_file, "last used form values; beside the config file"),
            ("log", paths.log_file, f"from {src['state']}; set with {HOW['log']}"),
            ("cache", paths.cache, f"hashes, demo model; from {src['cache']}; set with {HOW['cache']}"),
            ("previews", paths.models / "vae-approx", "taesd_decoder.safetensors for real live previews; inside models"),
            ("few-step", paths.state / "few-step-loras.json", "LoRAs marked few-step in the model browser (f); "
                                                              "beside the log")]
    for name, path, how in rows:
        print(f"{name:<9}{terminal_safe(path)}    # {how}")
    # Problems go to stderr so `picotui paths | ...` still gets clean rows; never a traceback.
    for line in ([config.problem] if config.problem else []) + env_problems():
        print(f"picotui: {terminal_safe(line)}", file=sys.stderr)
    return 0
