"""Opening weight files for the loader: header shapes without reading tensors, then tensors on demand.

A safetensors file is an 8-byte little-endian header length, a JSON header (name -> dtype, shape, byte
offsets), then the data. Reading the header alone tells the architecture and catches truncated files
before anything heavy happens. `.ckpt`/`.pt` are Python pickles that can run code when loaded, so they
open only when the user opted in, and then with torch's weights-only unpickler.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from picotui.engine.errors import ModelError

MAX_HEADER = 100 * 1024 * 1024  # real headers are < 1 MB; anything bigger is not a safetensors file
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


def read_header(path: Path) -> dict[str, tuple[int, ...]]:
    """name -> shape from a .safetensors header; ModelError if the file is not one or is cut short."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError("too short")
            (n,) = struct.unpack("<Q", raw)
            if n > MAX_HEADER or n + 8 > size:
                raise ValueError("bad header length")
            header = json.loads(fh.read(n))
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist: check the name, or rescan the models folder.") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path.name} is not a readable .safetensors file ({exc}); download it again.") from None
    shapes, end = {}, 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shapes[name] = tuple(info["shape"])
        end = max(end, info["data_offsets"][1])
    if 8 + n + end > size:
        raise ModelError(f"{path.name} is truncated ({size} of {8 + n + end} bytes): download it again.")
    return shapes


class TensorSource:
    """Tensors by LDM name, read one at a time and cast on the way in (peak RAM ~ one component)."""

    def __init__(self, path: Path, dtype, *, allow_pickle: bool = False):
        self.path = Path(path)
        self.dtype = dtype
        self._handle = None
        self._dict: dict | None = None
        if self.path.suffix.lower() in PICKLE_SUFFIXES:
            self._dict = load_pickle(self.path, allow_pickle)
            self.shapes = {k: tuple(v.shape) for k, v in self._dict.items()}
        else:
            self.shapes = read_header(self.path)

    def get(self, name: str):
        if name not in self.shapes:
            return None
        if self._dict is not None:
            t = self._dict[name]
        else:
            if self._handle is None:
                from safetensors import safe_open

                try:
                    self._handle = safe_open(str(self.path), framework="pt", device="cpu")
                except Exception as exc:  # SafetensorError has no stable import path
                    raise ModelError(f"{self.path.name} could not be read ({exc}); download it again.") from None
            t = self._handle.get_tensor(name)
        return t.to(self.dtype) if t.is_floating_point() and self.dtype is not None else t

    def close(self) -> None:
        self._handle = None
        self._dict = None


def load_pickle(path: Path, allow_pickle: bool) -> dict:
    """A .ckpt/.pt state dict via torch.load(weights_only=True); refused unless the user opted in."""
    if not allow_pickle:
        raise ModelError(f"{path.name} is a pickle file (.ckpt/.pt), which can run code when opened. Prefer the "
                         f".safetensors version; to load it anyway, start picotui with --allow-pickle.")
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist: check the name, or rescan the models folder.") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} could not be loaded safely ({first[:120]}); use a .safetensors file.") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # Lightning-style checkpoints wrap the weights
    if not isinstance(obj, dict):
        raise ModelError(f"{path.name} does not contain a state dict; use a .safetensors file.")
    return {k: v for k, v in obj.items() if hasattr(v, "shape")}
