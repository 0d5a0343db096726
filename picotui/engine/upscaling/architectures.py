"""spandrel's architecture registry, without spandrel's package __init__.

Why: `import spandrel` runs its __init__, which imports every architecture it knows; two of them (LaMa,
RestoreFormer) import torchvision, which cannot be installed beside a CPU-only torch (PyPI's torchvision wheel
wants CUDA torch, and a broken torchvision breaks transformers' imports too). So the package is registered in
sys.modules as an empty, unexecuted module, and only the registry machinery and the architecture modules are
imported from it: each one that imports is added, in the order spandrel's MAIN_REGISTRY detects them (the order
matters: some detectors are looser than others). A module that fails to import (torchvision) is skipped; its
files are reported as an unknown architecture.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading

log = logging.getLogger(__name__)

# spandrel 0.4.2's MAIN_REGISTRY order (spandrel/__helpers/main_registry.py).
ARCHITECTURES = ("Compact", "SwiftSRGAN", "HAT", "GRL", "Swin2SR", "SwinIR", "GFPGAN", "RestoreFormer", "LaMa",
                 "OmniSR", "SCUNet", "FBCNN", "Uformer", "RGT", "DAT", "CRAFT", "KBNet", "DITN", "MMRealSR", "SPAN",
                 "RealCUGAN", "SAFMN", "SAFMNBCIE", "DCTLSA", "FFTformer", "NAFNet", "ATD", "MixDehazeNet", "DRUNet",
                 "DnCNN", "IPT", "DRCT", "ESRGAN", "PLKSR", "RetinexFormer", "HVICIDNet", "SeemoRe", "MoSR", "MoESR",
                 "RCAN", "FDAT", "AuraSR")

SPANDREL_MISSING = ("Model upscalers need the spandrel package (pip install 'picotui[upscalers]'); "
                    "Lanczos and Nearest work without it.")

_lock = threading.Lock()
_registry = None
skipped: list[str] = []  # architectures whose module did not import here (e.g. they need torchvision)


class SpandrelMissing(ImportError):
    pass


def _ensure_package() -> None:
    """Make `spandrel` importable as a namespace without running its __init__ (see the module docstring)."""
    if "spandrel" in sys.modules:
        return  # already imported (fully, where torchvision exists, or by us): use what is there
    spec = importlib.util.find_spec("spandrel")
    if spec is None:
        raise SpandrelMissing(SPANDREL_MISSING)
    if importlib.util.find_spec("torchvision") is not None:  # a user's full install: the real package, so
        try:                                                  # any other code in the process sees it whole
            importlib.import_module("spandrel")
            return
        except Exception as exc:  # a torchvision that does not match torch: fall back to the parts we need
            log.info("import spandrel failed (%s); loading its architectures without its __init__", exc)
            for name in [m for m in sys.modules if m == "spandrel" or m.startswith("spandrel.")]:
                del sys.modules[name]
    sys.modules["spandrel"] = importlib.util.module_from_spec(spec)  # not executed: only its path is needed


def registry():
    """An ArchRegistry of every spandrel architecture that imports here, in detection order. Built once."""
    global _registry
    with _lock:
        if _registry is not None:
            return _registry
        _ensure_package()
        try:
            from spandrel.__helpers.registry import ArchRegistry, ArchSupport
        except ImportError as exc:
            raise SpandrelMissing(f"{SPANDREL_MISSING} ({exc})") from None
        built = ArchRegistry()
        for name in ARCHITECTURES:
            try:
                module = importlib.import_module(f"spandrel.architectures.{name}")
                built.add(ArchSupport.from_architecture(getattr(module, f"{name}Arch")()))
            except Exception as exc:  # ImportError (torchvision), or an architecture a later spandrel renamed
                skipped.append(name)
                log.info("spandrel architecture %s not available: %s", name, exc)
        _registry = built
        return built


def canonicalize(state_dict: dict) -> dict:
    """spandrel's unwrapping of the containers trainers save ("params_ema", "state_dict", "module." prefixes)."""
    registry()
    from spandrel.__helpers.canonicalize import canonicalize_state_dict

    return canonicalize_state_dict(state_dict)
