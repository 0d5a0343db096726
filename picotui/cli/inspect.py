"""`picotui info FILE.png` (the recipe inside an image: PNG, JPEG, WebP; see recipes/foreign.py) and
`picotui models` (the library as a table).

Everything that came from a file (metadata, file names) goes through sanitize_for_terminal before it is
printed, and through rich Text (never markup), so a PNG cannot drive the terminal or rich's markup.
"""

from __future__ import annotations

import argparse
import json
import sys

from picotui.engine.errors import PicoError
from picotui.engine.models.library import human_size, upscaler_label


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print the settings stored in an image (PNG, JPEG or WebP from picotui, A1111, "
                                           "civitai, ComfyUI, InvokeAI, NovelAI or Fooocus)")
    p.add_argument("files", nargs="+", metavar="FILE.png")
    p.add_argument("--json", action="store_true", help="print the request as JSON (to feed scripts)")
    p.add_argument("--check-parity", action="store_true",
                   help="say whether picotui reproduces the picture exactly, closely or not, and why")
    p.set_defaults(func=run_info)

    p = sub.add_parser("models", help="list the models library: kind, family, size, hash")
    p.add_argument("--no-hash", action="store_true", help="do not compute missing hashes or read upscaler files (show what is cached only)")
    p.add_argument("--kind", choices=("checkpoint", "vae", "lora", "embedding", "upscaler"), help="only this kind")
    p.add_argument("--allow-pickle", action="store_true", default=argparse.SUPPRESS,
                   help="count .ckpt/.pt files as usable (they are loaded as weights only)")
    p.set_defaults(func=run_models)


def _library(args):
    from picotui.cli.common import load_settings
    from picotui.engine.models.library import Library

    config, paths = load_settings(args)
    allow = bool(config.get("allow_pickle", getattr(args, "allow_pickle", None)))
    return Library(paths.models, paths.cache, allow_pickle=allow)


def run_info(args) -> int:
    from rich.console import Console
    from rich.text import Text

    from picotui.engine.recipes.foreign import LABELS
    from picotui.engine.recipes.metadata import read_recipe
    from picotui.engine.recipes.metadata import sanitize_for_terminal as safe

    out = Console(highlight=False, soft_wrap=True)
    library = None
    try:
        library = _library(args)
    except (PicoError, OSError):
        pass  # without a library the recipe is still shown, just not checked against the files
    status = 0
    for name in args.files:
        try:
            recipe = read_recipe(name, library)
        except PicoError as exc:
            print(f"picotui: {safe(str(exc), keep_newlines=False)}", file=sys.stderr)
            status = 2
            continue
        if args.json:
            print(json.dumps(recipe.request.to_dict(), sort_keys=True))  # ASCII-escaped: safe as is
            continue
        if len(args.files) > 1:
            out.print(Text(safe(name, keep_newlines=False), style="bold"))
        text = recipe.parameters or json.dumps(recipe.request.to_dict(), indent=2, sort_keys=True)
        out.print(Text(safe(text)))
        out.print(Text(f"(settings from {LABELS.get(recipe.source, recipe.source)})", style="dim"))
        if recipe.unmatched:
            out.print(Text("Not reproduced:", style="bold yellow"))
            for line in recipe.unmatched:
                out.print(Text(f"  - {safe(line, keep_newlines=False)}"))
        if getattr(args, "check_parity", False):
            from picotui.engine.recipes.parity import parity_report

            for line in parity_report(recipe).lines():
                out.print(Text(safe(line, keep_newlines=False)))
    return status


def run_models(args) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from picotui.engine.recipes.metadata import sanitize_for_terminal as safe

    library = _library(args)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    if not args.no_hash:  # the upscalers the header sniff cannot name: spandrel reads each once (cached)
        from picotui.engine.upscaling.describe import describe_upscalers, unnamed_upscalers

        if unnamed_upscalers(library):
            err.print("reading upscaler files to name their architecture (once)...")
            describe_upscalers(library)
    files = library.files(args.kind) if args.kind else library.scan()
    table = Table(title=Text(f"Models in {safe(str(library.root), keep_newlines=False)}"), expand=False)
    for column in ("name", "kind", "family", "size", "hash", "note"):
        table.add_column(column, overflow="fold", no_wrap=column in ("kind", "size", "hash"))
    for mf in files:
        digest = library.cached_autov2(mf)
        if digest is None and not args.no_hash and mf.size > 0 and mf.kind != "unknown":
            with err.status(Text(f"hashing {safe(mf.name, keep_newlines=False)}...")):
                try:
                    digest = library.autov2(mf)
                except PicoError:
                    digest = None
        note = mf.reason or ("created on first use (--checkpoint demo)" if mf.is_demo and not mf.size else "")
        style = None if mf.usable else "dim"
        family = mf.family if mf.kind != "upscaler" else upscaler_label(mf)
        table.add_row(Text(safe(mf.name, keep_newlines=False)), mf.kind, family,
                      human_size(mf.size) if mf.size else "-", digest or "-",
                      Text(safe(note, keep_newlines=False)), style=style)
    out.print(table)
    for problem in library.problems:
        err.print(Text(safe(problem, keep_newlines=False)))
    if len(files) <= 1:
        err.print(Text(f"No model files yet: put .safetensors files in {library.root}/checkpoints, vae, loras "
                       f"or embeddings (only the demo model is available)."))
    return 0
