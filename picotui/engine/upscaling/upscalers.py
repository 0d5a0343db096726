"""The upscalers A1111 offers and the runner that applies one to a picture.

Built in, always there without a model file: "None", "Lanczos", "Nearest" (modules/upscaler.py), and the
"Latent" family for hires fix, which works on latents (engine/sampling/img2img.py) and is only named here.
Every usable file of the library's upscaler kind is offered by its file stem, as A1111 names ESRGAN models (the
files A1111 downloads itself by A1111's names, see A1111_MODEL_FILES). Models run tiled (tiling.py), in fp16 where
the card and the architecture allow it, again in fp32 if fp16 overflows; results are capped at MAX_SIDE.

`Upscalers.upscale` is A1111's Upscaler.upscale: the target is int(w * scale) // 8 * 8 by int(h * scale) // 8 * 8;
the upscaler runs up to three times until the picture is at least that large (a 4x model asked for 2x runs once;
a 2x model asked for 8x runs three times), then LANCZOS makes it exactly that size.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from picotui.engine.errors import ModelError, RequestError
from picotui.engine.sampling.img2img import LATENT_UPSCALE_MODES  # the Latent family's maths lives there

log = logging.getLogger(__name__)

BUILTIN = ("None", "Lanczos", "Nearest")
LATENT = tuple(LATENT_UPSCALE_MODES)  # A1111's shared.latent_upscale_modes, in its order
MAX_RUNS = 3  # A1111: at most three passes of the model
MAX_SIDE = 16384  # results (and a model's steps on the way) beyond this would need gigabytes of RAM
# The names A1111 gives the model files it downloads itself (modules/realesrgan_model.py, esrgan_model.py,
# swinir_model.py, dat_model.py): its recipes say "Hires upscaler: R-ESRGAN 4x+", meaning RealESRGAN_x4plus.pth.
# Such a file is offered under A1111's name, so recipes written here read the same as A1111's, and either name
# finds it. Any other file is named by its stem, as A1111 names ESRGAN-folder models.
A1111_MODEL_FILES = {
    "R-ESRGAN General 4xV3": "realesr-general-x4v3", "R-ESRGAN General WDN 4xV3": "realesr-general-wdn-x4v3",
    "R-ESRGAN AnimeVideo": "realesr-animevideov3", "R-ESRGAN 4x+": "RealESRGAN_x4plus",
    "R-ESRGAN 4x+ Anime6B": "RealESRGAN_x4plus_anime_6B", "R-ESRGAN 2x+": "RealESRGAN_x2plus",
    "SwinIR 4x": "SwinIR_4x", "DAT x2": "DAT_x2", "DAT x3": "DAT_x3", "DAT x4": "DAT_x4",
}
_A1111_NAME_OF_STEM = {stem.lower(): name for name, stem in A1111_MODEL_FILES.items()}


def display_name(model_file) -> str:
    """The name an upscaler file is offered and recorded under: A1111's for the files it names, else the stem."""
    return _A1111_NAME_OF_STEM.get(model_file.stem.lower(), model_file.stem)


def is_latent(name: str) -> bool:
    return name.strip().lower() in {n.lower() for n in LATENT}


def builtin_name(name: str) -> str | None:
    """The canonical spelling of a built-in (non-latent) upscaler name, else None."""
    return next((b for b in BUILTIN if b.lower() == name.strip().lower()), None)


def upscaler_names(library=None, *, latent: bool = True) -> list[str]:
    """What a user can pick, A1111's order: the Latent family (hires fix only), None, Lanczos, Nearest, then
    the library's usable upscaler files by display_name."""
    names = list(LATENT) if latent else []
    names += list(BUILTIN)
    if library is not None:
        files = {display_name(mf) for mf in library.files("upscaler", usable_only=True) if mf.kind == "upscaler"}
        names += [n for n in sorted(files, key=str.lower) if n not in names]
    return names


def target_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """A1111's dest_w, dest_h for an upscale by `scale`: each side times scale, down to a multiple of 8."""
    return int((width * scale) // 8 * 8), int((height * scale) // 8 * 8)


class Upscalers:
    """Applies upscalers by name. Model files are loaded once and kept (reloaded when the file changes); one
    model is kept at a time, since a second would only cost memory.

    `device` and `dtype` are the engine's (torch objects or strings); a model runs in fp16/bf16 only on CUDA
    cards from Volta on (sm_70+) and where spandrel says its architecture supports it, else fp32."""

    def __init__(self, library, device="cpu", dtype=None, allow_pickle: bool = False, *, tile: int | None = None,
                 overlap: int | None = None):
        self.library = library
        self.device = device
        self.dtype = dtype
        self.allow_pickle = allow_pickle
        self.tile = tile
        self.overlap = overlap
        self._lock = threading.Lock()
        self._cached: tuple[tuple, object] | None = None  # ((path, size, mtime_ns), Loaded)
        self._fp32_only: set[tuple] = set()  # files whose model overflowed in fp16: loaded in fp32 from then on
        self.runs = 0  # model runs of the last upscale() (A1111's loop: tests and notices read it)
        self.notices: list[str] = []  # what the last upscale() had to change (fp16 overflow -> fp32), one line each

    # ---- picking ----------------------------------------------------------------------------------
    def resolve(self, name: str):
        """The library file for a model upscaler name; ModelError/RequestError (one line) otherwise."""
        if not str(name).strip():
            raise RequestError("No upscaler chosen: pick Lanczos, Nearest or a model from models/upscalers.")
        if is_latent(name):
            raise RequestError(f"{name} works on latents in hires fix, not on pictures: pick Lanczos, Nearest or an "
                               f"upscaler model.")
        query = str(name).strip()
        stem = next((s for n, s in A1111_MODEL_FILES.items() if n.lower() == query.lower()), None)
        same = [mf for mf in self.library.files("upscaler") if query in (mf.name, mf.stem)
                or (stem is not None and mf.stem.lower() == stem.lower())]
        if len(same) == 1:
            from picotui.engine.models.library import check_slot

            return check_slot(same[0], "upscaler")
        if len(same) > 1:  # 4x-foo.pth beside 4x-foo.safetensors: the safe one, as a name means either
            from picotui.engine.models.library import check_slot

            same.sort(key=lambda mf: (mf.is_pickle, not mf.usable))
            return check_slot(same[0], "upscaler")
        return self.library.resolve(query, "upscaler")

    def model(self, name: str):
        """The loaded model for `name` (cached; reloaded when its file's size or mtime changes)."""
        from picotui.engine.upscaling.loading import load_upscaler

        mf = self.resolve(name)
        try:
            st = Path(mf.path).stat()
        except OSError as exc:
            raise ModelError(f"{mf.name} cannot be read ({exc.strerror or exc}): rescan the models folder.") from None
        key = (str(mf.path), st.st_size, st.st_mtime_ns)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            self._cached = None  # drop the old one before loading the next
            loaded = load_upscaler(mf.path, self.allow_pickle)
            if mf.architecture != loaded.architecture or mf.scale != loaded.scale:
                remember = getattr(self.library, "remember_upscaler", None)
                if remember is not None:  # the browser shows what spandrel found from now on
                    remember(mf.path, loaded.architecture, loaded.scale)
            loaded.descriptor.to(self._device())
            if key not in self._fp32_only:  # fp16/bf16 only where the architecture allows, and it did not overflow
                loaded.descriptor.to(self._dtype(loaded.descriptor))
            self._cached = (key, loaded)
            return loaded

    def release(self) -> None:
        """Forget the loaded model (to give its memory back)."""
        with self._lock:
            self._cached = None

    def _device(self):
        import torch

        return torch.device(self.device) if isinstance(self.device, str) else self.device

    def _dtype(self, descriptor):
        import torch

        dtype = getattr(torch, self.dtype) if isinstance(self.dtype, str) else self.dtype
        device = self._device()
        if device.type != "cuda" or dtype is None:
            return torch.float32  # fp16 convolutions on a CPU are slow or missing
        if torch.cuda.get_device_capability(device) < (7, 0):
            return torch.float32  # Pascal computes fp16 convolutions slowly; one tile at a time fits in fp32
        if dtype == torch.float16 and descriptor.supports_half:
            return dtype
        if dtype == torch.bfloat16 and descriptor.supports_bfloat16:
            return dtype
        return torch.float32

    # ---- running ----------------------------------------------------------------------------------
    def upscale(self, image, scale: float, name: str, is_cancelled: Callable[[], bool] = lambda: False,
                on_tile: Callable[[int, int], None] | None = None):
        """A1111's Upscaler.upscale(image, scale) with the upscaler called `name` (see the module docstring)."""
        from PIL import Image

        image = image.convert("RGB")
        dest = target_size(image.width, image.height, scale)
        if dest[0] < 1 or dest[1] < 1:
            raise RequestError(f"Scale {scale:g} makes {image.width}x{image.height} smaller than 8 pixels a side: "
                               f"use a larger scale.")
        if max(dest) > MAX_SIDE:
            raise RequestError(f"Upscaling {image.width}x{image.height} by {scale:g} makes {dest[0]}x{dest[1]}; "
                               f"picotui makes pictures up to {MAX_SIDE} pixels a side: use a smaller scale.")
        builtin = builtin_name(name)
        self.runs = 0
        self.notices = []
        if builtin is None:
            model_scale = self.model(name).scale

            def run(im):
                if max(im.size) * model_scale > MAX_SIDE:  # before the model makes it, not after
                    raise RequestError(f"The {model_scale}x upscaler would make {im.width * model_scale}x"
                                       f"{im.height * model_scale} on the way to {dest[0]}x{dest[1]}; picotui makes "
                                       f"pictures up to {MAX_SIDE} pixels a side: use a 2x model, or Lanczos.")
                return self._run_model(name, im, is_cancelled, on_tile)
        elif builtin == "None":
            run = lambda im: im  # noqa: E731
        else:
            resample = Image.Resampling.LANCZOS if builtin == "Lanczos" else Image.Resampling.NEAREST
            run = lambda im: im.resize((int(im.width * scale), int(im.height * scale)), resample=resample)  # noqa: E731
        for _ in range(MAX_RUNS):
            before = image.size
            image = run(image)
            self.runs += 1
            if image.size == before or (image.width >= dest[0] and image.height >= dest[1]):
                break
        if image.size != dest:
            image = image.resize(dest, resample=Image.Resampling.LANCZOS)
        return image

    def _run_model(self, name, image, is_cancelled, on_tile):
        import torch

        from picotui.engine.upscaling.tiling import OVERLAP, TILE, NotFinite, run_tiled

        for _attempt in range(2):  # as loaded, then (after an fp16 overflow) in fp32
            loaded = self.model(name)  # cached: the same object every run unless the file changed
            descriptor = loaded.descriptor
            try:
                return run_tiled(descriptor, image, device=self._device(), dtype=descriptor.dtype,
                                 tile=self.tile or TILE, overlap=OVERLAP if self.overlap is None else self.overlap,
                                 is_cancelled=is_cancelled, on_tile=on_tile)
            except NotFinite:
                if descriptor.dtype == torch.float32:
                    raise ModelError(f"The upscaler {loaded.architecture} model gives NaN even in full precision: "
                                     f"its file is damaged; download it again.") from None
                # Some models overflow fp16 (black or speckled tiles in other tools): fp32 from now on, as
                # the VAE's fp16 retry does, loaded again from the file (its fp16-rounded weights are not the
                # model's).
                half = str(descriptor.dtype).removeprefix("torch.")
                self.notices.append(f"The {loaded.architecture} upscaler overflowed in {half}: running it in fp32, "
                                    f"which is slower.")
                with self._lock:
                    if self._cached is not None:
                        self._fp32_only.add(self._cached[0])
                    self._cached = None
        raise ModelError(f"The upscaler {name} gives NaN: its file is damaged; download it again.")
