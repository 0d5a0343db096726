"""What an Extras job ("Upscale this image", A1111's Extras tab) asks for. Validated at construction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from picotui.engine.errors import RequestError

SCALE = (1.0, 8.0)  # A1111's Extras slider
SIDE = (64, 8192)  # its "Scale to" sliders


@dataclass(frozen=True)
class UpscaleRequest:
    source: Path  # the picture to upscale
    upscaler: str = "Lanczos"  # "None", "Lanczos", "Nearest" or a model's file stem
    scale: float = 4.0  # "Scale by" (A1111's default 4); ignored when `resize` is given
    resize: tuple[int, int] | None = None  # "Scale to" width, height
    crop: bool = True  # with `resize`: A1111's "Crop to fit" (centered), on by default
    output_dir: Path | None = None  # None: the outputs folder's extras/ subfolder

    def __post_init__(self):
        object.__setattr__(self, "source", Path(self.source))
        if not isinstance(self.upscaler, str) or not self.upscaler.strip():
            raise RequestError("No upscaler chosen: pick Lanczos, Nearest or a model from models/upscalers.")
        if self.resize is None:
            if not (SCALE[0] <= float(self.scale) <= SCALE[1]):
                raise RequestError(f"Upscale by {self.scale:g} is out of range: use {SCALE[0]:g} to {SCALE[1]:g}.")
        else:
            width, height = self.resize
            if not all(isinstance(v, int) and SIDE[0] <= v <= SIDE[1] for v in (width, height)):
                raise RequestError(f"Upscale to {width}x{height} is out of range: each side {SIDE[0]} to {SIDE[1]}.")

    @property
    def batch_count(self) -> int:  # the worker counts images per job
        return 1
