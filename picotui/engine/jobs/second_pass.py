"""What a job does beyond text to image (issue 13): img2img's source picture (found, hashed, opened, fitted,
encoded once per job) and hires fix's second pass (upscale, crop, new noise, denoise again, decode), with the
out-of-memory retry of that pass alone. The maths is in sampling/ (img2img steps, latent upscale, VAE encode)
and upscaling/ (resize modes, upscaler models); this module is the order A1111 runs them in.

A1111's procedure (modules/processing.py): img2img fits the source with images.resize_image(resize_mode) and
encodes it ("Just resize (latent upscale)": encoded at its own size, then the latent interpolated); hires fix
(sample / sample_hr_pass) interpolates the latents for the "Latent" family, else decodes the first pass,
upscales the 8-bit picture with resize_image(0, ..., upscaler) and encodes it; then crops truncate_x/y, draws
new noise at the hires latent shape with the same seeds, encodes the hires prompts, and runs img2img sampling
with steps = hires steps or steps (the explicit-steps rule).

Lives in the worker thread; torch is imported inside functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from picotui.engine.errors import JobCancelled, OutOfMemory, RequestError, is_out_of_memory
from picotui.engine.events import Notice
from picotui.engine.hardware.memory import JobSize, out_of_memory_message

log = logging.getLogger("picotui.jobs")

LATENT_RESIZE_MODE = "Just resize (latent upscale)"
HASH_DIGITS = 10  # the source's SHA-256, as A1111 shortens model hashes


def latent_upscaler(name: str) -> str | None:
    """A1111's spelling of a "Latent" family upscaler (shared.latent_upscale_modes: the latents are interpolated,
    nothing decoded), or None for a picture upscaler."""
    from picotui.engine.sampling.img2img import LATENT_UPSCALE_MODES

    return next((mode for mode in LATENT_UPSCALE_MODES if mode.lower() == name.strip().lower()), None)


def model_upscaler(name: str) -> bool:
    """Whether `name` is an upscaler model (a file), not one built in (None, Lanczos, Nearest, Latent...)."""
    from picotui.engine.upscaling.upscalers import builtin_name

    return latent_upscaler(name) is None and builtin_name(name) is None


def without_idle_hires(request):
    """(request, notice): A1111 drops a hires fix whose target is the first pass's own size (upscale by 1, or
    resize to the same size): the picture is the first pass, and its recipe has no hires keys. Notice "" when
    nothing changes."""
    if not request.hires or request.hires_size()[:2] != (request.width, request.height):
        return request, ""
    return replace(request, hires=False), (f"Hires fix upscales to {request.width}x{request.height}, the first "
                                           "pass's own size: the picture is made without the hires pass, as "
                                           "A1111 makes it.")


def check_strength(request) -> None:
    """Denoising strength 0 redraws nothing: img2img would hand back its source, hires fix its first pass
    upscaled (A1111 then runs no step at all). Refused before anything loads."""
    if request.denoising_strength > 0 or not (request.init_image or request.hires):
        return
    if request.init_image:
        raise RequestError("Denoising strength 0 would give back the source picture unchanged: raise it "
                           "(0.3-0.5 keeps the composition, 0.75 is A1111's default).")
    raise RequestError("Denoising strength 0 would only enlarge the first pass, without a hires step: raise it "
                       "(0.7 is A1111's default), or upscale the finished image instead.")


# ---- img2img's source ----------------------------------------------------------------------------

@dataclass
class Source:
    """The img2img source of a job: the checked RGB picture, its file and its short hash."""

    path: Path
    image: Any  # PIL.Image.Image, RGB
    hash: str


def source_path(text: str) -> Path:
    """The source file named in the request; a relative path is relative to the current directory (the CLI
    passes what the user typed)."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def open_source(text: str, on_notice: Callable[[str], None]) -> Source:
    """Find, hash and open the source picture; every problem is one RequestError line."""
    from picotui.engine.models.hashing import sha256_file
    from picotui.engine.upscaling.source import open_source_image

    path = source_path(text)
    if not path.is_file():
        raise RequestError(f"Source image {text} not found: check the path, or pick the picture again.")
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise RequestError(f"Cannot read the source image {path.name}: {exc.strerror or exc}.") from None
    image, notices = open_source_image(path)
    for message in notices:
        on_notice(message)
    return Source(path, image, (digest or "")[:HASH_DIGITS])


def source_latents(pipe, request, source: Source, on_notice: Callable[[str], None]):
    """The source fitted to width x height with the request's resize mode and VAE-encoded, as A1111's img2img
    does; "Just resize (latent upscale)" encodes the picture at its own size and interpolates the latent."""
    from picotui.engine.sampling.encode import encode
    from picotui.engine.sampling.img2img import latent_upscale
    from picotui.engine.upscaling.resize import resize_image

    if request.resize_mode == LATENT_RESIZE_MODE:
        return latent_upscale(encode(pipe, source.image, on_notice=on_notice), request.width, request.height,
                              "Latent")
    fitted = resize_image(source.image, request.width, request.height, mode=request.resize_mode)
    return encode(pipe, fitted, on_notice=on_notice)


# ---- sizes for the memory plan -------------------------------------------------------------------

def job_size(request, source: Source | None) -> JobSize:
    """The biggest sizes this job touches (see hardware.memory.JobSize)."""
    width, height = request.width, request.height
    if source is not None:
        encode = source.image.size if request.resize_mode == LATENT_RESIZE_MODE else (width, height)
        return JobSize(width, height, encode=tuple(encode))
    if not request.hires:
        return JobSize(width, height)
    hires_w, hires_h, _tx, _ty = request.hires_size()
    if hires_w * hires_h > width * height:
        width, height = hires_w, hires_h
    if latent_upscaler(request.hires_upscaler):
        return JobSize(width, height)
    return JobSize(width, height, encode=(hires_w, hires_h), upscaler=model_upscaler(request.hires_upscaler))


def size_words(size: JobSize) -> str:
    """What a second-pass job's plan was chosen for, in words (the status line's reason)."""
    words = f"{size.width}x{size.height}"
    if size.encode:
        words += f", a VAE encode at {size.encode[0]}x{size.encode[1]}"
    return words + (", an upscaler model" if size.upscaler else "")


# ---- hires fix -----------------------------------------------------------------------------------

def hires_prompts(request, prompt: str, negative: str, loras) -> tuple[str, str, list[str]]:
    """The hires pass's prompt and negative prompt (empty: the first pass's, tags already taken out), and
    notices. The hires pass runs with the first pass's LoRAs: a hires prompt naming other LoRAs is told so."""
    from picotui.engine.prompting.prompts import extract_prompt_tags

    if not request.hires_prompt and not request.hires_negative_prompt:
        return prompt, negative, []
    tags = extract_prompt_tags(request.hires_prompt or request.prompt,
                               request.hires_negative_prompt or request.negative_prompt)
    notices = list(tags.notices)
    if request.hires_prompt and sorted(map(repr, tags.loras)) != sorted(map(repr, loras)):
        notices.append("The hires prompt's <lora:...> tags differ from the first pass's: the hires pass uses the "
                       "first pass's LoRAs (change them in the prompt or the LoRA panel).")
    return (tags.prompt if request.hires_prompt else prompt,
            tags.negative if request.hires_negative_prompt else negative, notices)


def crop_latents(latents, truncate_x: int, truncate_y: int):
    """A1111's crop of the hires latents to the requested aspect (truncate_x/y latent pixels, centred, the
    odd one from the far side)."""
    height, width = latents.shape[-2], latents.shape[-1]
    return latents[..., truncate_y // 2:height - (truncate_y + 1) // 2, truncate_x // 2:width - (truncate_x + 1) // 2]


class HiresPass:
    """The hires pass of one image: upscale the first pass, crop, denoise again, decode. Out of GPU memory
    anywhere in it retries this pass alone with a leaner memory plan (the first pass's latents, and its picture
    for a model upscaler, are kept on the CPU), at most `max_retries` times.

    `runner` is the JobRunner: its denoise_pass, decode, upscalers and memory policy."""

    def __init__(self, runner, pipe, request, conds, max_retries: int):
        self.runner, self.pipe, self.request = runner, pipe, request
        self.conds = conds  # the hires prompts' (cond, uncond)
        self.max_retries = max_retries
        self.name = request.hires_upscaler
        self.latent = latent_upscaler(self.name)
        self.timings = {"upscale": 0.0, "hires": 0.0, "decode": 0.0}
        self.steps = 0  # steps the hires pass ran

    def run(self, first_latents, counted, image: tuple[int, int]):
        """The finished picture (PIL) from the first pass's latents."""
        import time

        runner, request = self.runner, self.request
        first = first_latents.detach().to("cpu")  # survives an out-of-memory retry, costs no VRAM meanwhile
        low_res = None  # the first pass as an 8-bit picture (model upscalers), decoded once
        retries = 0
        while True:
            try:
                t0 = time.perf_counter()
                if not self.latent and low_res is None:
                    runner.phase = "decoding"
                    low_res = runner.decode(self.pipe, first.to(runner.choice.device))
                runner.phase = "upscaling"
                latents = self.upscale(first, low_res)
                self._check_cancel()
                t1 = time.perf_counter()
                runner.phase = "denoising"
                latents, self.steps = runner.denoise_pass(
                    self.pipe, *self.conds, request, counted=counted, image=image, label="hires pass", number=2,
                    count=2, sampler=request.hires_sampler or request.sampler,
                    schedule=request.hires_schedule_type or request.schedule_type,
                    steps=request.hires_steps or request.steps, init_latents=latents, fixed_steps=True)
                t2 = time.perf_counter()
                runner.phase = "decoding"
                picture = runner.decode(self.pipe, latents)
                self.timings = {"upscale": t1 - t0, "hires": t2 - t1, "decode": time.perf_counter() - t2}
                return picture
            except JobCancelled:
                raise
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if retries < self.max_retries and runner.retry_pass_after_oom(exc, "hires pass", self._size()):
                    retries += 1
                    continue
                if isinstance(exc, OutOfMemory):
                    raise
                # e.g. the upscaler model's own error: the size that did not fit is the hires one
                raise OutOfMemory(out_of_memory_message(*self._size())) from exc

    def upscale(self, first, low_res):
        """The first pass brought to the hires size and cropped, as latents on the device."""
        from picotui.engine.sampling.img2img import latent_upscale

        runner, request = self.runner, self.request
        width, height, truncate_x, truncate_y = request.hires_size()
        if self.latent:
            latents = latent_upscale(first.to(runner.choice.device), width, height, self.latent)
        else:
            from picotui.engine.sampling.encode import encode
            from picotui.engine.upscaling.resize import resize_image
            from picotui.engine.upscaling.upscalers import builtin_name

            upscale = None
            if builtin_name(self.name) != "None":  # "None": plain Lanczos, as A1111's resize() without an upscaler
                def upscale(picture, scale):
                    return runner.upscalers().upscale(picture, scale, self.name, is_cancelled=runner.is_cancelled)
            big = resize_image(low_res, width, height, mode="Just resize", upscale=upscale)
            self._check_cancel()
            runner.phase = "encoding image"
            latents = encode(self.pipe, big, on_notice=runner.warn)
        return crop_latents(latents, truncate_x, truncate_y)

    def _size(self) -> tuple[int, int]:
        width, height, truncate_x, truncate_y = self.request.hires_size()
        return (width // 8 - truncate_x) * 8, (height // 8 - truncate_y) * 8

    def _check_cancel(self) -> None:
        if self.runner.is_cancelled():
            raise JobCancelled()


def retry_notice(job_id: int, where: str, size: tuple[int, int], mode: str) -> Notice:
    return Notice(job_id, f"Out of GPU memory in the {where} at {size[0]}x{size[1]}: trying that pass again with "
                          f"{mode.replace('-', ' ')} (the first pass is kept).", "warning")
