"""Tiny random-weight upscalers built from spandrel's own architecture classes (no downloads), saved in the
formats people download them in, in a models/ tree."""

from __future__ import annotations

from pathlib import Path

from library_support import CASES, write


def build_models(root: Path) -> dict:
    """models/upscalers/ with a 4x ESRGAN (.safetensors and .pth), a 2x Real-ESRGAN Compact, a 1x ESRGAN (a
    restoration model) and a kohya LoRA dropped there by mistake. Returns the torch modules by file stem."""
    import torch
    from safetensors.torch import save_file

    from picotui.engine.upscaling.architectures import registry

    registry()  # makes spandrel's architecture modules importable without its package __init__
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    folder = root / "upscalers"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    nets = {"tiny-esrgan-4x": ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4),
            "tiny-compact-2x": Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2),
            "denoise-1x": ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=1)}
    for stem, net in nets.items():
        net.eval()
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / f"{stem}.safetensors"))
    torch.save({"params_ema": nets["tiny-esrgan-4x"].state_dict()}, folder / "pickled-esrgan-4x.pth")  # BasicSR's
    write(folder / "style-lora.safetensors", CASES["kohya.safetensors"][0])
    return nets


def to_tensor(image, bgr: bool = True):
    """A PIL picture as the 1x3xHxW float batch A1111 feeds upscaler models (BGR, 0..1)."""
    import numpy as np
    import torch

    t = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    return (t.flip(0) if bgr else t).unsqueeze(0)


def reference(net, image):
    """The model on the whole picture at once, as 0..255 floats HxWx3 RGB (A1111's BGR round trip)."""
    import torch

    with torch.no_grad():
        out = net(to_tensor(image))[0].clamp(0, 1).flip(0)
    return (out * 255).permute(1, 2, 0).numpy()
