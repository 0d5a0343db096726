"""The Extras job: upscale one picture file and save it, as A1111's Extras tab does.

The saved PNG keeps the source's text chunks (its recipe: A1111's "parameters", picotui's JSON) and adds A1111's
postprocessing text in the "postprocessing" and "extras" chunks: "Postprocess upscale by: 4" (or "Postprocess
upscale to: WxH" and, cropped to fit, "Postprocess crop to: WxH"), "Postprocess upscaler: NAME"
(scripts/postprocessing_upscale.py, modules/postprocessing.py).
"""

from __future__ import annotations

import os
import tempfile
import time
import weakref
from pathlib import Path

from picotui.engine.errors import JobCancelled, PicoError, SaveError, is_out_of_memory, one_line
from picotui.engine.events import Finished, Loading, Notice
from picotui.engine.recipes.foreign import exif_texts, is_exif_image
from picotui.engine.recipes.infotext import number, quote
from picotui.engine.recipes.png_text import read_png_text
from picotui.engine.upscaling.request import UpscaleRequest
from picotui.engine.upscaling.source import open_source_image
from picotui.engine.upscaling.upscalers import Upscalers, builtin_name, display_name

_upscalers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per job runner: its loaded model kept


def upscale_picture(request: UpscaleRequest, upscalers: Upscalers, is_cancelled=lambda: False, on_tile=None):
    """(upscaled image, A1111's postprocessing info dict, notices) for the request's source picture."""
    from PIL import Image

    image, notices = open_source_image(request.source)
    info: dict[str, str] = {}
    if request.resize is not None:
        width, height = request.resize
        scale = max(width / image.width, height / image.height)
        info["Postprocess upscale to"] = f"{width}x{height}"
    else:
        scale = float(request.scale)
        info["Postprocess upscale by"] = number(scale)
    result = upscalers.upscale(image, scale, request.upscaler, is_cancelled, on_tile)
    notices += upscalers.notices
    if request.resize is not None and request.crop:  # A1111's "Crop to fit": centered on a canvas of that size
        canvas = Image.new("RGB", request.resize)
        canvas.paste(result, box=(width // 2 - result.width // 2, height // 2 - result.height // 2))
        result = canvas
        info["Postprocess crop to"] = f"{result.width}x{result.height}"
    builtin = builtin_name(request.upscaler)  # A1111's spelling: a model by the name A1111 gives its file
    info["Postprocess upscaler"] = builtin or display_name(upscalers.resolve(request.upscaler))
    return result, info, notices


def source_texts(path: Path) -> dict[str, str]:
    """The recipe texts the source carries, as PNG chunk names: a PNG's text chunks; a JPEG's or WebP's A1111
    "parameters" (EXIF UserComment) and ComfyUI texts (as A1111's read_info_from_image keeps them)."""
    try:
        return exif_texts(path) if is_exif_image(path) else read_png_text(path)
    except PicoError:
        return {}  # a picture without readable texts keeps none


def infotext(info: dict) -> str:
    return ", ".join(f"{k}: {quote(v)}" for k, v in info.items())


def save_upscaled(image, request: UpscaleRequest, text: str, outputs_dir: Path) -> Path:
    """Write the PNG (source's text chunks + "postprocessing" + "extras") as <source stem>-<upscaler>.png in
    the output folder, never over an existing file; atomic (a temp file linked to its final name)."""
    from PIL.PngImagePlugin import PngInfo

    folder = Path(request.output_dir) if request.output_dir else Path(outputs_dir) / "extras"
    chunks = PngInfo()
    for key, value in source_texts(request.source).items():
        if key not in ("postprocessing", "extras") and value:
            chunks.add_text(key, value)
    chunks.add_text("postprocessing", text)
    chunks.add_text("extras", text)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{request.source.stem}-{request.upscaler}")
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".picotui-", suffix=".png.part", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format="PNG", pnginfo=chunks)
        os.chmod(tmp, 0o644)
        for n in range(10000):
            final = folder / (f"{stem}.png" if n == 0 else f"{stem}-{n}.png")
            try:
                os.link(tmp, final)  # fails if the name is taken: never overwrites
                return final
            except FileExistsError:
                continue
        raise SaveError(f"Could not find a free file name in {folder}: tidy up that folder.")
    except OSError as exc:
        raise SaveError(f"Could not save in {folder} ({exc.strerror or exc}): check that it is writable.") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _runner_upscalers(engine) -> Upscalers:
    """The runner's Upscalers (hires fix shares it: one loaded model at a time), or one kept beside it."""
    shared = getattr(engine, "upscalers", None)
    if callable(shared):
        return shared()
    upscalers = _upscalers.get(engine)
    if upscalers is None:
        upscalers = Upscalers(engine.library, engine.choice.device, engine.choice.dtype, engine.library.allow_pickle)
        _upscalers[engine] = upscalers
    return upscalers


def run_upscale_job(engine, job_id: int, request: UpscaleRequest, is_cancelled, emit) -> None:
    """The worker's Extras job: events Loading, Notice(s), Finished (image and path). Out of GPU memory becomes
    one Failed line (the generation's memory plan is not the upscaler's: tiles already keep memory flat)."""
    started = time.perf_counter()
    engine.library.scan()  # files dropped in since the last job are found (cheap: headers are cached)
    upscalers = _runner_upscalers(engine)
    emit(Loading(job_id, f"upscaling with {request.upscaler}", 0.0))

    def on_tile(done: int, total: int) -> None:
        emit(Loading(job_id, f"upscaling with {request.upscaler}: tile {done}/{total}", done / total))

    try:
        image, info, notices = upscale_picture(request, upscalers, is_cancelled, on_tile)
    except JobCancelled:
        raise
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        upscalers.release()
        from picotui.engine.hardware.memory import free_memory

        free_memory()
        raise PicoError(f"Out of GPU memory while upscaling ({one_line(exc, 80)}): close other GPU programs, or use "
                        f"Lanczos.", kind="out-of-memory") from None
    for message in notices:
        emit(Notice(job_id, message))
    if is_cancelled():
        raise JobCancelled()
    text = infotext(info)
    path, error = None, None
    try:
        path = save_upscaled(image, request, text, engine.paths.outputs)
    except SaveError as exc:
        error = str(exc)
    emit(Finished(job_id, image, path, request, text,  # type: ignore[arg-type]  # an UpscaleRequest, not a generation
                  timings={"total": time.perf_counter() - started}, save_error=error))
