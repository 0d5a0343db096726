"""`picotui generate`: headless generation with the same Worker the TUI uses.

stdout gets the saved PNG paths, one per line (so `picotui generate ... | xargs feh` works); stderr gets
a rich progress bar and notices. Bad input: exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from picotui.engine.errors import PicoError, RequestError

FIELDS_HELP = "Every option maps to one field of the request; unset options take the TUI's defaults."


def register(sub: argparse._SubParsersAction) -> None:
    from picotui.cli.common import add_engine_arguments

    p = sub.add_parser("generate", help="generate images without the TUI", description=FIELDS_HELP)
    add_request_arguments(p)
    p.add_argument("--outdir", default=None, help="where PNGs go (default: the outputs folder)")
    add_engine_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def add_request_arguments(p: argparse.ArgumentParser) -> None:
    """The options that make a GenerationRequest (build_request reads them); `picotui grid` takes them too."""
    from picotui.cli.from_recipe import mark_given_options
    from picotui.engine.request import DEFAULT_NEGATIVE
    from picotui.engine.sampling.samplers import DEFAULT_SAMPLER, DEFAULT_SCHEDULE_TYPE, SAMPLER_NAMES
    from picotui.engine.sampling.schedules import SCHEDULE_TYPES

    mark_given_options(p)  # for --from: which options replace the recipe's settings
    p.add_argument("--from", dest="from_recipe", default=None, metavar="IMAGE",
                   help="start from this image's recipe (picotui, A1111, ComfyUI ...; its second pass included): "
                        "the options given replace its settings")
    # Numbers are taken as text and checked by GenerationRequest, whose messages say what to do.
    p.add_argument("--checkpoint", default="demo", help="file name in models/checkpoints, a path, or 'demo'")
    p.add_argument("--vae", default=None, help="file name in models/vae or a path (default: the checkpoint's own)")
    p.add_argument("--lora", action="append", default=[], metavar="NAME:WEIGHT",
                   help="a LoRA from models/loras with its weight (0-2, default 0.8); repeatable")
    p.add_argument("text", nargs="?", default=None, metavar="PROMPT",
                   help="the prompt (same as --prompt; quote it)")
    p.add_argument("--prompt", default=None, help="the prompt (default: the TUI's default prompt)")
    p.add_argument("--negative", default=DEFAULT_NEGATIVE, help="negative prompt")
    p.add_argument("--sampler", default=None, help=f"one of: {', '.join(SAMPLER_NAMES)} (default {DEFAULT_SAMPLER}; "
                   f"old names such as 'DPM++ 2M Karras' work too)")
    p.add_argument("--schedule-type", default=None, help=f"one of: {', '.join(SCHEDULE_TYPES)} (default: "
                   f"{DEFAULT_SCHEDULE_TYPE} with the default sampler, else Automatic)")
    p.add_argument("--steps", default="24", help="1-150 (default 24)")
    p.add_argument("--cfg", default="7", help="CFG scale 1-30 (default 7)")
    p.add_argument("--width", default="512", help="multiple of 8 (default 512)")
    p.add_argument("--height", default="512", help="multiple of 8 (default 512)")
    p.add_argument("--seed", default="random", help="0-4294967295 or 'random' (default)")
    p.add_argument("--clip-skip", default="1", help="1-4 (default 1)")
    p.add_argument("--batch-count", default="1", help="images to make, seeds seed, seed+1, ... (default 1)")
    # A1111's noise settings (sampling/noise.py)
    p.add_argument("--rng", default="GPU", type=str.upper, metavar="GPU|CPU|NV",
                   help="noise source as A1111 names it (default GPU, A1111's default: the same picture on any "
                        "computer, GPU or not)")
    p.add_argument("--variation-seed", default="random", help="0-4294967295 or 'random' (default); used when "
                   "--variation-strength is above 0")
    p.add_argument("--variation-strength", default="0", help="0-1: how much of the variation seed's noise is "
                   "mixed in (default 0: off)")
    p.add_argument("--seed-resize-from", default=None, metavar="WxH",
                   help="make the seed's noise as for this size, e.g. 512x768 (default: off)")
    p.add_argument("--ensd", default="0", help="eta noise seed delta (A1111's ENSD, e.g. 31337; default 0)")
    p.add_argument("--token-merging", default="0", help="A1111's token merging ratio, 0-0.9 (default 0: off)")
    p.add_argument("--ngms", default="0", help="A1111's negative guidance minimum sigma, 0-15 (default 0: off)")
    add_second_pass_arguments(p)


def add_second_pass_arguments(p: argparse.ArgumentParser) -> None:
    """img2img and hires fix, with A1111's names and defaults (the request checks every value)."""
    from picotui.engine.request import DEFAULT_DENOISING_STRENGTH, DEFAULT_HIRES_DENOISING_STRENGTH, RESIZE_MODES

    g = p.add_argument_group("second pass", "image to image (--init-image) or hires fix (--hires / --hires-resize)")
    g.add_argument("--init-image", default=None, metavar="FILE",
                   help="image to image: start from this picture (PNG, JPEG, WebP), fitted to --width x --height")
    g.add_argument("--strength", default=None, metavar="0-1",
                   help=f"denoising strength: how much of the picture is redrawn; low keeps the source, 1 keeps only "
                        f"its colours (default {DEFAULT_DENOISING_STRENGTH:g}, or {DEFAULT_HIRES_DENOISING_STRENGTH:g} "
                        f"with hires fix)")
    g.add_argument("--resize-mode", default=RESIZE_MODES[0], metavar="MODE",
                   help=f"how the source is fitted: {', '.join(m.lower() for m in RESIZE_MODES)} (default "
                        f"{RESIZE_MODES[0].lower()})")
    g.add_argument("--hires", default=None, metavar="SCALE",
                   help="hires fix: make the picture at --width x --height, upscale by SCALE (1-4, e.g. 2) and "
                        "denoise again")
    g.add_argument("--hires-resize", default=None, metavar="WxH",
                   help="hires fix to this size instead of a scale, e.g. 1024x1024 (0 for a side follows the other)")
    g.add_argument("--hires-upscaler", default=None, metavar="NAME",
                   help="Latent (default), Latent (bicubic) ..., Lanczos, Nearest, None, or a model in "
                        "models/upscalers by file name")
    g.add_argument("--hires-steps", default=None, metavar="N", help="steps of the hires pass (default 0: as --steps)")
    g.add_argument("--hires-strength", default=None, metavar="0-1",
                   help=f"denoising strength of the hires pass (default {DEFAULT_HIRES_DENOISING_STRENGTH:g}; "
                        f"--strength sets it too)")
    g.add_argument("--hires-sampler", default=None, help="sampler of the hires pass (default: as --sampler)")
    g.add_argument("--hires-schedule", default=None, metavar="TYPE",
                   help="schedule type of the hires pass (default: as --schedule-type)")
    g.add_argument("--hires-prompt", default=None, help="prompt of the hires pass (default: the prompt)")
    g.add_argument("--hires-negative", default=None, help="negative prompt of the hires pass (default: the negative)")


HIRES_ONLY_FLAGS = (("hires_upscaler", "--hires-upscaler"), ("hires_steps", "--hires-steps"),
                    ("hires_strength", "--hires-strength"), ("hires_sampler", "--hires-sampler"),
                    ("hires_schedule", "--hires-schedule"), ("hires_prompt", "--hires-prompt"),
                    ("hires_negative", "--hires-negative"))


def second_pass_fields(args: argparse.Namespace) -> dict:
    """The request fields of the second-pass flags; one line (RequestError) for flags that do not go together."""
    from picotui.engine.request import DEFAULT_DENOISING_STRENGTH, DEFAULT_HIRES_DENOISING_STRENGTH

    fields: dict = {}
    hires = getattr(args, "hires", None) is not None or getattr(args, "hires_resize", None) is not None
    if not hires:
        stray = [flag for name, flag in HIRES_ONLY_FLAGS if getattr(args, name, None) is not None]
        if stray:
            raise RequestError(f"{stray[0]} is for hires fix: add --hires 2 (a scale) or --hires-resize WxH.")
    if getattr(args, "init_image", None) is not None:
        if hires:
            raise RequestError("--init-image and hires fix do not go together: A1111's hires fix is for text to "
                               "image; raise --width/--height for a bigger image to image.")
        fields.update(init_image=args.init_image, resize_mode=args.resize_mode,
                      denoising_strength=args.strength if args.strength is not None else DEFAULT_DENOISING_STRENGTH)
        return fields
    if args.strength is not None and not hires:
        raise RequestError("--strength is for image to image (--init-image FILE) or hires fix (--hires 2).")
    if not hires:
        return fields
    if args.hires_strength is not None and args.strength is not None and args.hires_strength != args.strength:
        raise RequestError("Give the hires strength once: --strength and --hires-strength differ.")
    strength = next((v for v in (args.hires_strength, args.strength) if v is not None), DEFAULT_HIRES_DENOISING_STRENGTH)
    fields.update(hires=True, denoising_strength=strength, hires_resize=args.hires_resize)
    for name, field_name in (("hires", "hires_scale"), ("hires_upscaler", "hires_upscaler"),
                             ("hires_steps", "hires_steps"), ("hires_sampler", "hires_sampler"),
                             ("hires_schedule", "hires_schedule_type"), ("hires_prompt", "hires_prompt"),
                             ("hires_negative", "hires_negative_prompt")):
        if getattr(args, name, None) is not None:
            fields[field_name] = getattr(args, name)
    return fields


def parse_lora(text: str):
    from picotui.engine.request import DEFAULT_LORA_WEIGHT, LoraSpec

    name, sep, weight = text.rpartition(":")
    if not sep or not name:  # no weight given (a plain name, or a Windows-style "C:..." path)
        return LoraSpec(text, DEFAULT_LORA_WEIGHT)
    try:
        number = float(weight)
    except ValueError:
        raise RequestError(f"--lora {text!r}: write NAME:WEIGHT, e.g. --lora myStyle:0.8.") from None
    return LoraSpec(name, number)  # its own message for a weight out of range (0-2)


def build_request(args: argparse.Namespace):
    from picotui.engine.request import DEFAULT_PROMPT, GenerationRequest

    if getattr(args, "from_recipe", None):
        from picotui.cli.from_recipe import overrides, recipe_request

        base = recipe_request(args.from_recipe)
        return replace(base, **overrides(args, base, parse_lora, second_pass_fields))
    seed = None if str(args.seed).strip().lower() in ("random", "-1", "") else args.seed
    if args.text is not None and args.prompt is not None:
        raise RequestError("Give the prompt once: either as the first argument or with --prompt.")
    prompt = next((p for p in (args.text, args.prompt) if p is not None), DEFAULT_PROMPT)
    sampling = {k: v for k, v in (("sampler", args.sampler), ("schedule_type", args.schedule_type)) if v is not None}
    if "sampler" not in sampling:  # the default sampler keeps its default schedule unless one is asked for
        sampling["sampler"] = GenerationRequest.__dataclass_fields__["sampler"].default
    return GenerationRequest(prompt=prompt, negative_prompt=args.negative, checkpoint=args.checkpoint,
                             vae=args.vae, loras=tuple(parse_lora(x) for x in args.lora), **sampling,
                             steps=args.steps, cfg=args.cfg, width=args.width, height=args.height, seed=seed,
                             clip_skip=args.clip_skip, batch_count=args.batch_count, rng=args.rng,
                             variation_seed=None if str(args.variation_seed).strip().lower() in ("random", "-1", "")
                             else args.variation_seed, variation_strength=args.variation_strength,
                             seed_resize_from=args.seed_resize_from, eta_noise_seed_delta=args.ensd,
                             token_merging_ratio=args.token_merging, ngms=args.ngms, **second_pass_fields(args))


def _settings(args: argparse.Namespace):
    """(paths, Worker keyword arguments) for this command line."""
    from picotui.cli.common import engine_options, load_settings
    from picotui.logs import capture_warnings, setup_logging

    config, paths = load_settings(args)
    setup_logging(paths)  # log lines go to the file, never over the progress bar
    capture_warnings()
    return paths, engine_options(args, config)


def _check_models(paths, request) -> None:
    """Resolve the model names before starting the engine, so a typo fails fast with one line."""
    from picotui.engine.models.library import Library
    from picotui.engine.prompting.prompts import extract_lora_tags

    library = Library(paths.models, paths.cache)
    library.scan()
    library.resolve(request.checkpoint, "checkpoint")
    if request.vae:
        library.resolve(request.vae, "vae")
    for spec in (*request.loras, *extract_lora_tags(request.prompt)[1]):
        library.resolve(spec.name, "lora")
    if request.hires:
        from picotui.engine.upscaling.upscalers import Upscalers, builtin_name, is_latent

        if not (is_latent(request.hires_upscaler) or builtin_name(request.hires_upscaler)):
            Upscalers(library).resolve(request.hires_upscaler)
    if request.init_image is not None and not Path(request.init_image).expanduser().is_file():
        raise RequestError(f"--init-image {request.init_image}: no such file (give the path of a PNG, JPEG or WebP).")


def run_headless(paths, request, *, engine: dict | None = None, progress=True, on_path=None):
    """Run one request through a Worker; returns (saved paths, last EngineStatus). Raises PicoError on failure."""
    from picotui.engine.events import Cancelled, EngineStatus, Failed, Finished, Notice, Step
    from picotui.engine.jobs.worker import Worker

    events: queue.SimpleQueue = queue.SimpleQueue()
    worker = Worker(paths, events.put, preview=False, **(engine or {})).start()  # a progress bar draws no pictures
    saved: list[Path] = []
    status = None
    bar = _Progress(enabled=progress)
    try:
        job = worker.submit(request)
        while True:
            event = events.get()
            if isinstance(event, EngineStatus):
                status = event
            elif isinstance(event, Notice):
                bar.note(event.message)
            elif isinstance(event, Failed) and event.job_id in (0, job):
                raise PicoError(event.message, kind=event.kind)
            elif isinstance(event, Cancelled) and event.job_id == job:
                raise PicoError("Cancelled.", kind="cancelled")
            elif isinstance(event, Step) and event.job_id == job:
                bar.step(event)
            elif isinstance(event, Finished) and event.job_id == job:
                if event.path is None:
                    raise PicoError(event.save_error or "The image could not be saved.", kind="save")
                saved.append(event.path)
                if on_path:
                    on_path(event.path)
                if event.image_index + 1 == event.batch_count:
                    return saved, status
    except KeyboardInterrupt:
        worker.cancel_all()
        raise
    finally:
        bar.close()
        worker.shutdown(timeout=5)


class _Progress:
    """A rich progress bar on stderr, started at the first step (so errors before it stay one line)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.progress = self.task = None
        self.image = -1

    def _start(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
        self.progress.start()

    def step(self, event) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            self._start()
        if event.image_index != self.image:
            self.image = event.image_index
            self.task = self.progress.add_task(f"image {event.image_index + 1}/{event.batch_count}",
                                               total=event.total, speed="")
        self.progress.update(self.task, completed=event.index, speed=f"{event.it_per_s:.2f} it/s")

    def note(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"note: {message}", markup=False, highlight=False)
        else:
            print(f"note: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run(args: argparse.Namespace) -> int:
    request = build_request(args)  # RequestError -> one line, exit 2 (cli.main)
    paths, engine = _settings(args)
    if args.outdir:
        paths = replace(paths, outputs=Path(args.outdir).expanduser().resolve())
    _check_models(paths, request)
    run_headless(paths, request, engine=engine, progress=not args.quiet and sys.stderr.isatty(), on_path=lambda p: print(p, flush=True))
    return 0


def run_check(args: argparse.Namespace) -> int:
    """`picotui --check`: load the demo model and make one tiny image, headless."""
    from picotui.engine.request import GenerationRequest

    paths, engine = _settings(args)
    request = GenerationRequest(checkpoint="demo", steps=4, width=64, height=64, seed=1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="picotui-check-") as tmp:
        saved, status = run_headless(replace(paths, outputs=Path(tmp)), request, engine=engine, progress=False)
        if not saved or not saved[0].is_file():
            raise PicoError("The check made no image: see the log for details.", kind="internal")
    device_name = status.device if status and status.device else "unknown device"
    print(f"picotui check ok: {device_name}, {time.perf_counter() - started:.1f} s")
    return 0
