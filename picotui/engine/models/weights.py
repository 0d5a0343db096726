"""Opening weight files for the loader: header shapes without reading tensors, then tensors on demand.

A safetensors file is an 8-byte little-endian header length, a JSON header (name -> dtype, shape, byte
offsets), then the data. Reading the header alone tells the architecture and catches truncated files
before anything heavy happens. `.ckpt`/`.pt` are Python pickles that can run code when loaded, so they
open only when the user opted in, and then with torch's weights-only unpickler.
"""

from __future__ import annotations

import stat
from pathlib import Path

from picotui.engine.errors import ModelError, is_out_of_memory, one_line
from picotui.engine.models.headers import PICKLE_SUFFIXES


def read_header(path: Path) -> dict[str, tuple[int, ...]]:
    """name -> shape from a .safetensors header; ModelError (one line) if the file is not one, is cut short,
    or its header is malformed or lies about sizes.

    The same full validation as the library's sniff (`headers.read_header`): a file replaced between the
    scan and the load is checked again here, so a damaged header never reaches the loader as a KeyError.
    """
    from picotui.engine.models.headers import HeaderError
    from picotui.engine.models.headers import read_header as checked_header

    path = Path(path)
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise ModelError(f"{path.name} is a folder, not a model file: put the .safetensors file itself there.")
        return checked_header(path, st.st_size)
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist: check the name, or rescan the models folder.") from None
    except HeaderError as exc:
        raise ModelError(str(exc)) from None
    except OSError as exc:
        raise ModelError(f"{path.name} cannot be read ({exc.strerror or exc}): check the file and its "
                         f"permissions.") from None


def utf8_name(path) -> bool:
    """Whether the path can be handed to safetensors, which takes only valid UTF-8 paths (on Linux a file
    name is bytes; a name from a Windows zip can be Latin-1, and Python keeps it with surrogate escapes)."""
    try:
        str(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _rename_hint(path: Path) -> ModelError:
    return ModelError(f"{path.name} could not be opened: its name is not valid UTF-8; rename it (e.g. to plain "
                      f"ASCII letters) and rescan.")


def open_safetensors(path: Path):
    """safetensors' `safe_open` for `path`, also when its name is not valid UTF-8 (opened by file
    descriptor through /proc/self/fd; where that does not exist, a one-line "rename it")."""
    import os

    from safetensors import safe_open

    path = Path(path)
    if utf8_name(path):
        return safe_open(str(path), framework="pt", device="cpu")
    fd = os.open(path, os.O_RDONLY)  # os functions take such names (they encode them back to the bytes)
    try:
        proxy = f"/proc/self/fd/{fd}"
        if not os.path.exists(proxy):
            raise _rename_hint(path)
        return safe_open(proxy, framework="pt", device="cpu")  # it maps the file: the fd can close
    finally:
        os.close(fd)


def load_safetensors(path: Path) -> dict:
    """All tensors of a (small) .safetensors file, whatever its name (see open_safetensors)."""
    with open_safetensors(path) as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


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
                try:
                    self._handle = open_safetensors(self.path)
                except ModelError:
                    raise
                except FileNotFoundError:
                    raise ModelError(f"{self.path} does not exist: check the name, or rescan the models "
                                     f"folder.") from None
                except Exception as exc:  # SafetensorError has no stable import path
                    if is_out_of_memory(exc):
                        raise
                    raise ModelError(f"{self.path.name} could not be read ({one_line(exc, 120)}); "
                                     f"download it again.") from None
            t = self._handle.get_tensor(name)
        return t.to(self.dtype) if t.is_floating_point() and self.dtype is not None else t

    def close(self) -> None:
        self._handle = None
        self._dict = None


def unpickle_weights(path: Path, allow_pickle: bool):
    """What a .ckpt/.pt/.pth file holds, via torch.load(weights_only=True); refused unless the user opted in."""
    if not allow_pickle:
        raise ModelError(f"{path.name} is a pickle file ({path.suffix}), which can run code when opened. Prefer "
                         f"the .safetensors version; to load it anyway, start picotui with --allow-pickle.")
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path} does not exist: check the name, or rescan the models folder.") from None
    except Exception as exc:
        if is_out_of_memory(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} could not be loaded safely ({first[:120]}); use a .safetensors file.") from None


def load_pickle(path: Path, allow_pickle: bool) -> dict:
    """A .ckpt/.pt state dict's top-level tensors (unpickle_weights)."""
    obj = unpickle_weights(path, allow_pickle)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # Lightning-style checkpoints wrap the weights
    if not isinstance(obj, dict):
        raise ModelError(f"{path.name} does not contain a state dict; use a .safetensors file.")
    return {k: v for k, v in obj.items() if hasattr(v, "shape")}
