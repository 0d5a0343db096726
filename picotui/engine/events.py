"""What the worker thread tells the outside world. Plain frozen dataclasses, no torch inside.

Images are PIL images (the UI can draw them without torch). Every event names its job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

    from picotui.engine.request import GenerationRequest


@dataclass(frozen=True)
class Event:
    job_id: int


@dataclass(frozen=True)
class Queued(Event):
    position: int  # jobs ahead of this one (0: runs next)


@dataclass(frozen=True)
class Loading(Event):
    stage: str  # e.g. "importing torch", "reading checkpoint", "building UNet", "moving to cuda"
    fraction: float | None = None  # 0..1 when known


@dataclass(frozen=True)
class Step(Event):
    index: int  # 1-based step just finished
    total: int
    it_per_s: float
    eta_s: float
    preview: Image | None = None  # cheap latent->RGB approximation (no VAE)
    image_index: int = 0  # which image of the batch (0-based)
    batch_count: int = 1
    unet_evaluations: int = 0  # latents through the UNet so far for this image (CFG: 2 a step; CFG 1: 1)
    # Which denoising pass of the image this step belongs to: pass_label "" when the image has one pass
    # (txt2img, img2img); with hires fix "first pass" then "hires pass". index/total/eta_s are the pass's own.
    pass_label: str = ""
    pass_number: int = 1
    pass_count: int = 1


@dataclass(frozen=True)
class Finished(Event):
    image: Image
    path: Path | None  # None when saving failed: see save_error
    request: GenerationRequest  # with the concrete seed this image used
    parameters: str  # the A1111 "parameters" text written into the PNG
    timings: dict[str, float] = field(default_factory=dict)  # seconds: load, encode, denoise, decode, save, total
    image_index: int = 0
    batch_count: int = 1
    save_error: str | None = None  # one line; the image is still here to save again
    unet_evaluations: int = 0  # latents through the UNet for this image: what its settings cost


@dataclass(frozen=True)
class Failed(Event):
    kind: str  # PicoError.kind: "model", "out-of-memory", "invalid-request", "internal", ...
    message: str  # one line that says what to do


@dataclass(frozen=True)
class Cancelled(Event):
    pass


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know that is not a failure (CPU fallback, fp32 decode retry...)."""

    message: str
    level: str = "information"  # "information" | "warning"


@dataclass(frozen=True)
class EngineStatus(Event):
    """The status line: sent after load, after each job, and when the state changes. job_id 0 if none."""

    state: str  # "starting" | "idle" | "loading" | "generating" | "stopped"
    device: str = ""  # e.g. "cuda:0 NVIDIA GeForce GTX 1060 6GB" or "cpu"
    dtype: str = ""
    vram_used_gib: float | None = None
    vram_total_gib: float | None = None
    checkpoint: str | None = None
    memory_mode: str = ""  # what the memory policy chose, with why in `detail`
    speed_path: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    queued: int = 0
