"""`picotui upscale`: A1111's Extras upscale without the TUI.

    picotui upscale photo.png [more.png ...] --upscaler 4x-UltraSharp [--scale 4 | --resize 2048x2048] [--output DIR]

Lanczos, Nearest and None need no model; a model is a file in models/upscalers/ named by its stem. The PNG keeps
the source's recipe text and adds A1111's "Postprocess ..." keys; its path is printed on stdout. Several files
are upscaled one after the other with the model loaded once (A1111's batch); a file that cannot be used is one
line on stderr, the others go on, and the exit status is 2 if any failed.
"""

from __future__ import annotations

import argparse
import re
import sys

from picotui.engine.errors import RequestError


def register(sub: argparse._SubParsersAction) -> None:
    from picotui.cli.common import add_engine_arguments

    p = sub.add_parser("upscale", help="upscale a picture (A1111's Extras): Lanczos, Nearest or a model from "
                                       "models/upscalers",
                       description="Upscale a picture file and save it as a PNG that keeps its recipe.")
    p.add_argument("file", nargs="+", help="the picture(s) (PNG, JPEG, WebP...)")
    p.add_argument("--upscaler", default="Lanczos",
                   help="None, Lanczos (default), Nearest, or an upscaler model's name (see `picotui models`)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--scale", type=float, default=None, help="upscale by this factor, 1 to 8 (default 4)")
    size.add_argument("--resize", default=None, metavar="WxH", help="upscale to this size, cropped to fit")
    p.add_argument("--no-crop", action="store_true", help="with --resize: keep the aspect ratio, no crop")
    p.add_argument("--output", default=None, metavar="DIR", help="where the PNG goes (default: outputs/extras)")
    p.add_argument("--quiet", action="store_true", help="no progress")
    add_engine_arguments(p)
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match:
        raise RequestError(f"--resize {text!r} is not a size: write it as WIDTHxHEIGHT, e.g. 2048x2048.")
    return int(match.group(1)), int(match.group(2))


def build_request(args: argparse.Namespace, file: str):
    from pathlib import Path

    from picotui.engine.upscaling.request import UpscaleRequest

    resize = parse_size(args.resize) if args.resize else None
    return UpscaleRequest(source=Path(file).expanduser(), upscaler=args.upscaler,
                          scale=4.0 if args.scale is None else args.scale, resize=resize, crop=not args.no_crop,
                          output_dir=Path(args.output).expanduser() if args.output else None)


def run(args: argparse.Namespace) -> int:
    from picotui.cli.common import engine_options, load_settings, terminal_safe
    from picotui.engine.errors import PicoError
    from picotui.engine.models.library import Library
    from picotui.engine.upscaling.upscalers import Upscalers, builtin_name

    requests = [build_request(args, file) for file in args.file]  # RequestError -> one line, exit 2 (cli.main)
    request = requests[0]
    config, paths = load_settings(args)
    options = engine_options(args, config)
    library = Library(paths.models, paths.cache, allow_pickle=options["allow_pickle"])
    device: object = "cpu"
    dtype = None
    if builtin_name(request.upscaler) is None:
        from picotui.engine.hardware.memory import choose_device

        Upscalers(library).resolve(request.upscaler)  # a typo fails before torch starts on the GPU
        choice = choose_device(options["device"] or "auto")
        if choice.notice:
            print(f"picotui: {choice.notice}", file=sys.stderr)
        device, dtype = choice.device, choice.dtype
    upscalers = Upscalers(library, device, dtype, options["allow_pickle"])
    show = sys.stderr.isatty() and not args.quiet

    def on_tile(done: int, total: int) -> None:  # a model on a CPU can take minutes: say where it is
        if show:
            print(f"\rpicotui upscale: tile {done}/{total}", end="\n" if done == total else "", file=sys.stderr,
                  flush=True)

    if len(requests) == 1:  # one file: its error is the command's (cli.main prints it)
        _upscale_one(requests[0], upscalers, paths, on_tile)
        return 0
    failed = 0
    for request in requests:
        try:
            _upscale_one(request, upscalers, paths, on_tile)
        except PicoError as exc:
            if exc.kind == "model":  # the upscaler itself: every file would fail the same way
                raise
            failed += 1
            print(f"picotui: {terminal_safe(str(exc))}", file=sys.stderr, flush=True)
    return 2 if failed else 0


def _upscale_one(request, upscalers, paths, on_tile) -> None:
    from picotui.engine.jobs.extras import infotext, save_upscaled, upscale_picture

    image, info, notices = upscale_picture(request, upscalers, on_tile=on_tile)
    for notice in notices:
        print(f"picotui: {notice}", file=sys.stderr)
    print(save_upscaled(image, request, infotext(info), paths.outputs), flush=True)
