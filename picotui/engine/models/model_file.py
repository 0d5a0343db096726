"""One model file: what it is, from its safetensors header alone (sniff -> ModelFile), how lists label it,
and whether it fits a slot (check_slot). No torch here: the UI imports this module."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from picotui.engine.errors import ModelError
from picotui.engine.models.headers import PICKLE_SUFFIXES, classify_file

log = logging.getLogger(__name__)

KINDS = ("checkpoint", "vae", "lora", "embedding", "taesd", "upscaler")
FOLDERS = {"checkpoint": "checkpoints", "vae": "vae", "lora": "loras", "embedding": "embeddings",
           "taesd": "vae-approx",  # taesd: the live preview's decoder (models/taesd.py)
           "upscaler": "upscalers"}  # ESRGAN-family models (engine/upscaling)
# A1111 keeps upscalers in one folder per family: a models folder shared with A1111 is searched there too.
EXTRA_FOLDERS = {"upscaler": ("ESRGAN", "RealESRGAN", "SwinIR", "DAT", "HAT")}
FOLDER_KIND = {v: k for k, v in FOLDERS.items()} | {f: k for k, fs in EXTRA_FOLDERS.items() for f in fs}
LABEL = {"checkpoint": "checkpoint", "vae": "VAE", "lora": "LoRA", "embedding": "textual-inversion embedding",
         "taesd": "TAESD preview decoder", "upscaler": "upscaler",
         "unknown": "model file"}


def human_size(size: float) -> str:
    """A file size as people read it: 512 B, 16.5 MB, 2.1 GB."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"

@dataclass(frozen=True)
class ModelFile:
    path: Path
    name: str  # file name, e.g. "dreamshaper_8.safetensors"
    kind: str  # "checkpoint" | "vae" | "lora" | "embedding" | "unknown"
    family: str  # "SD1.x" | "SD1.x inpainting" | "SD2.x" | "SDXL" | "other" | "unknown (pickle)"
    size: int
    usable: bool
    reason: str | None  # one line: why it cannot be used (or what to do), None when usable
    folder: str  # the library folder it was found in ("checkpoints", ..., "demo"), "" outside the library
    context_dim: int | None = None  # cross-attention width (768 SD1, 1024 SD2, 2048 SDXL); tiny test models: 32
    vectors: int | None = None  # embeddings: how many token slots it takes
    sshs_hash: str | None = None  # LoRAs: the addnet hash kohya's trainer wrote into the header
    architecture: str | None = None  # upscalers: "ESRGAN", "SPAN"...; None until spandrel has seen the file
    scale: int | None = None  # upscalers: how many times larger one run of the model makes a picture

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def is_pickle(self) -> bool:
        return Path(self.name).suffix.lower() in PICKLE_SUFFIXES

    @property
    def is_demo(self) -> bool:
        return self.folder == "demo"


def sniff(path, folder: str | None = None, *, allow_pickle: bool = False) -> ModelFile:
    """What the file at `path` is, from its header only. Never raises: problems go into `reason`."""
    path = Path(path)
    if folder is None:
        folder = path.parent.name if path.parent.name in FOLDER_KIND else ""
    base = dict(path=path, name=path.name, folder=folder)
    try:
        st = os.stat(path)  # follows links: a loop or a dangling link raises here
    except OSError as exc:
        return ModelFile(**base, kind="unknown", family="other", size=0, usable=False, reason=_stat_reason(path, exc))
    if stat.S_ISDIR(st.st_mode):
        return ModelFile(**base, kind="unknown", family="other", size=0, usable=False,
                         reason=f"{path.name} is a folder, not a model file: put the .safetensors file itself here.")
    if not stat.S_ISREG(st.st_mode):
        return ModelFile(**base, kind="unknown", family="other", size=st.st_size, usable=False,
                         reason=f"{path.name} is not a regular file.")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        kind = FOLDER_KIND.get(folder, "unknown")
        reason = None if allow_pickle else (
            f"{path.name} is a pickle file, which can run code when loaded: prefer a .safetensors download, or "
            f"opt in with --allow-pickle (config: allow_pickle = true); it is then loaded as weights only.")
        return ModelFile(**base, kind=kind, family="unknown (pickle)", size=st.st_size, usable=allow_pickle,
                         reason=reason)
    try:
        info = classify_file(path, st.st_size)
    except Exception as exc:  # a safety net: scan() must list every file, whatever is inside it
        log.exception("sniffing %s failed", path)
        info = dict(kind="unknown", family="other", usable=False, context_dim=None, vectors=None,
                    reason=f"{path.name} could not be inspected ({type(exc).__name__}): download it again.")
    if info.pop("unrecognised", False) and FOLDER_KIND.get(folder) == "upscaler":
        # tensors of no SD kind in an upscaler folder: an architecture the header sniff does not name
        # (SwinIR, DAT, HAT...); spandrel names it, or refuses it in one line, when it is first used
        info.update(kind="upscaler", family="upscaler", usable=True, reason=None)
    return ModelFile(**base, size=st.st_size, **info)


def _stat_reason(path: Path, exc: OSError) -> str:
    import errno

    if exc.errno == errno.ELOOP:
        return f"{path.name} is a symbolic link that loops back on itself: fix or delete the link."
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f"{path.name} is a link to a file that no longer exists: fix or delete the link."
    if exc.errno == errno.EACCES:
        return f"{path.name} cannot be read (permission denied): check the file's permissions."
    return f"{path.name} cannot be read ({exc.strerror or exc}): check the file."

def upscaler_label(mf: ModelFile) -> str:
    """An upscaler's architecture and scale as lists show them: "ESRGAN 4x"; "?" where the header does not say."""
    if mf.architecture is None:
        return "? (known when first used)" if not mf.is_pickle else "pickle (known when first used)"
    return f"{mf.architecture} {mf.scale}x" if mf.scale else mf.architecture


def check_slot(mf: ModelFile, kind: str) -> ModelFile:
    """`mf` if it can go in the `kind` slot; else ModelError saying what it is and where it belongs."""
    name = mf.name
    if mf.is_pickle and mf.kind in (kind, "unknown"):
        return mf  # no header to judge by: the loader checks the opt-in and the weights
    if mf.kind == "unknown":
        raise ModelError(mf.reason or f"{name} is not a model picotui knows: pick an SD1.5 {LABEL[kind]}.")
    if mf.kind != kind:
        where = {"checkpoint": "pick it in the checkpoint list", "vae": "pick it in the VAE list",
                 "lora": "pick it in the LoRA list", "embedding": "use its name in the prompt",
                 "taesd": "it draws the live preview by itself",
                 "upscaler": "pick it as an upscaler (hires fix, picotui upscale)"}[mf.kind]
        if kind == "upscaler":  # it sits among the upscalers: say where it belongs
            where = f"move it to models/{FOLDERS[mf.kind]}"
        article = "an" if LABEL[mf.kind][0] in "AEIOUaeiou" else "a"
        raise ModelError(f"{name} is {article} {LABEL[mf.kind]}, not {'an' if kind in ('embedding', 'upscaler') else 'a'} "
                         f"{LABEL[kind]}: {where}.")
    if mf.family in ("SDXL", "SD2.x"):
        label = "checkpoints" if kind == "checkpoint" else LABEL[kind] + "s"
        raise ModelError(f"{name} is an {mf.family} {LABEL[kind]}; picotui runs SD1.5 {label} only.")
    if mf.family == "SD1.x inpainting":
        raise ModelError(f"{name} is an SD1.x inpainting checkpoint; picotui generates from text only: "
                         f"pick a regular SD1.5 checkpoint.")
    if not mf.usable:
        raise ModelError(mf.reason or f"{name} cannot be used.")
    return mf


__all__ = ["ModelFile", "sniff", "check_slot", "upscaler_label", "human_size", "KINDS", "FOLDERS", "EXTRA_FOLDERS",
           "FOLDER_KIND", "LABEL"]
