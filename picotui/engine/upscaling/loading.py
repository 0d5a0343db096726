"""Opening an upscaler model file: its weights under picotui's pickle rules, then spandrel's detection.

.safetensors always open; .pth/.pt/.ckpt are pickles, opened only with --allow-pickle and then with torch's
weights-only unpickler. A file that is really something else (a LoRA, checkpoint, VAE or embedding dropped into
models/upscalers, a face-restoration or denoising model) is refused with one line that says where it belongs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picotui.engine.errors import ModelError, is_out_of_memory, one_line
from picotui.engine.models.headers import PICKLE_SUFFIXES, classify

ELSEWHERE = {"lora": ("a LoRA", "loras"), "checkpoint": ("a checkpoint", "checkpoints"), "vae": ("a VAE", "vae"),
             "embedding": ("a textual-inversion embedding", "embeddings"),
             "taesd": ("a TAESD preview decoder", "vae-approx")}
PURPOSES = {"FaceSR": "a face-restoration model", "Restoration": "a restoration model (1x: denoise, deblur, "
            "JPEG cleanup)", "Inpainting": "an inpainting model"}


@dataclass(frozen=True)
class Loaded:
    """A model ready to run: spandrel's descriptor plus what the browser and the messages show."""
    descriptor: Any  # spandrel ImageModelDescriptor (spandrel is imported lazily, and has no stubs)
    architecture: str
    scale: int


def refuse_other_kinds(shapes: dict, name: str) -> None:
    """One line if the tensors are an SD model file of another kind (a LoRA in models/upscalers...)."""
    kind = classify(shapes, name)["kind"]
    if kind in ELSEWHERE:
        what, folder = ELSEWHERE[kind]
        raise ModelError(f"{name} is {what}, not an upscaler: move it to models/{folder}.")


def read_state_dict(path: Path, allow_pickle: bool) -> dict:
    """The file's tensors as a flat state dict (trainer wrappers removed). ModelError (one line) otherwise."""
    from picotui.engine.models.weights import load_safetensors, read_header
    from picotui.engine.upscaling.architectures import canonicalize

    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        state = _load_pickle(path, allow_pickle)
    else:
        refuse_other_kinds(read_header(path), path.name)  # from the header: before any tensor is read
        try:
            state = load_safetensors(path)
        except ModelError:
            raise
        except Exception as exc:  # SafetensorError has no stable import path
            if is_out_of_memory(exc):
                raise
            raise ModelError(f"{path.name} could not be read ({one_line(exc, 120)}); download it again.") from None
    state = canonicalize(state)
    tensors = {k: v for k, v in state.items() if hasattr(v, "shape")}
    if not tensors:
        raise ModelError(f"{path.name} holds no weights: it is not an upscaler model; download it again.")
    refuse_other_kinds({k: tuple(v.shape) for k, v in tensors.items()}, path.name)
    return tensors


def _load_pickle(path: Path, allow_pickle: bool) -> dict:
    # Not weights.load_pickle: that keeps only the top level's tensors, and upscalers nest theirs in
    # "params_ema"/"params" (Real-ESRGAN, BasicSR), which spandrel's canonicalize unwraps.
    from picotui.engine.models.weights import unpickle_weights

    obj = unpickle_weights(path, allow_pickle)
    if not isinstance(obj, dict):
        raise ModelError(f"{path.name} does not contain a state dict (it holds a whole pickled model, which picotui "
                         f"does not run); use a .safetensors file.")
    return obj


def load_upscaler(path, allow_pickle: bool) -> Loaded:
    """Detect and build the model in `path` (on the CPU, fp32, eval mode). ModelError with one line when the
    file is missing, of another kind, of an architecture spandrel does not know, or not a super-resolution model."""
    from picotui.engine.upscaling.architectures import SpandrelMissing, registry

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist: check the name, or rescan the models folder.")
    try:
        reg = registry()
    except SpandrelMissing as exc:
        raise ModelError(str(exc)) from None
    state = read_state_dict(path, allow_pickle)
    from spandrel.__helpers.registry import UnsupportedModelError

    try:
        descriptor = reg.load(state)
    except UnsupportedModelError:
        raise ModelError(f"{path.name} is not an upscaler architecture picotui knows (ESRGAN, Real-ESRGAN, SwinIR, "
                         f"DAT, HAT, SPAN, ... through spandrel): use another upscaler file.") from None
    except Exception as exc:
        if is_out_of_memory(exc):
            raise
        raise ModelError(f"{path.name} looks like an upscaler but its weights do not fit its architecture "
                         f"({one_line(exc, 100)}): download it again.") from None
    arch = str(getattr(descriptor.architecture, "name", "") or descriptor.architecture.id)
    purpose = getattr(descriptor, "purpose", "Inpainting")
    if purpose != "SR" or not hasattr(descriptor, "scale"):
        what = PURPOSES.get(purpose, f"a {purpose} model")
        raise ModelError(f"{path.name} is {what} ({arch}), not an upscaler: picotui uses super-resolution models "
                         f"(2x, 4x...) here; remove it from the upscalers folder.")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise ModelError(f"{path.name} ({arch}) takes {descriptor.input_channels} and gives "
                         f"{descriptor.output_channels} channels; picotui upscales RGB pictures: use an RGB model.")
    descriptor.eval()
    return Loaded(descriptor, arch, int(descriptor.scale))
