"""Telling an upscaler's architecture and scale from its tensor names and shapes (a safetensors header), without
torch: what the model browser shows. Covers the families most people download (ESRGAN in its three key
layouts, which includes Real-ESRGAN x4plus/x2plus and BSRGAN; Real-ESRGAN Compact; SPAN). Any other architecture
is named by spandrel when the file is first used; a wrong guess here changes only the label, never the loading.
"""

from __future__ import annotations

import math
import re

Shapes = dict[str, tuple[int, ...]]


def sniff_upscaler(shapes: Shapes) -> tuple[str, int] | None:
    """(architecture label, scale) for the families above, None when the keys are none of them."""
    for sniffer in (_esrgan_old, _esrgan_new, _compact, _span):
        found = sniffer(shapes)
        if found is not None:
            return found
    return None


def _unshuffled(scale: int, in_ch: int, out_ch: int) -> int:
    """Real-ESRGAN x2/x1 models pixel-unshuffle the input first (12 or 48 input channels for RGB)."""
    if out_ch and in_ch == out_ch * 4:
        return scale // 2
    if out_ch and in_ch == out_ch * 16:
        return scale // 4
    return scale


def _esrgan_old(shapes: Shapes) -> tuple[str, int] | None:
    if "model.0.weight" not in shapes or not any(k.startswith("model.1.sub.0.RDB1.conv1") for k in shapes):
        return None
    indices = [int(m.group(1)) for k in shapes if (m := re.match(r"model\.(\d+)\.", k))]
    last = max(indices)
    # conv, shortcut(RRDBs), [upsample, conv, act] x log2(scale), conv, act, conv
    scale = 2 ** ((last + 1 - 5) // 3)
    in_ch, out_ch = shapes["model.0.weight"][1], shapes.get(f"model.{last}.weight", (0,))[0]
    return "ESRGAN", max(1, _unshuffled(scale, in_ch, out_ch))


def _esrgan_new(shapes: Shapes) -> tuple[str, int] | None:
    if "conv_first.weight" not in shapes or "conv_last.weight" not in shapes:
        return None
    if "body.0.rdb1.conv1.weight" in shapes:
        ups = [k for k in shapes if re.fullmatch(r"conv_up\d+\.weight", k)]
    elif "RRDB_trunk.0.RDB1.conv1.weight" in shapes:  # BSRGAN / RealSR
        ups = [k for k in shapes if re.fullmatch(r"upconv\d+\.weight", k)]
    else:
        return None
    scale = 2 ** len(ups)
    return "ESRGAN", max(1, _unshuffled(scale, shapes["conv_first.weight"][1], shapes["conv_last.weight"][0]))


def _pixel_shuffle_scale(channels: int, in_ch: int) -> int | None:
    for out_ch in (in_ch, 3, 1):
        if out_ch and channels % out_ch == 0:
            root = math.isqrt(channels // out_ch)
            if root * root * out_ch == channels:
                return root
    return None


def _compact(shapes: Shapes) -> tuple[str, int] | None:
    if "body.0.weight" not in shapes or "body.1.weight" not in shapes:
        return None
    last = max(int(m.group(1)) for k in shapes if (m := re.match(r"body\.(\d+)\.", k)))
    bias = shapes.get(f"body.{last}.bias")
    if not bias or len(shapes["body.0.weight"]) != 4:
        return None
    scale = _pixel_shuffle_scale(bias[0], shapes["body.0.weight"][1])
    return ("RealESRGAN Compact", scale) if scale else None


def _span(shapes: Shapes) -> tuple[str, int] | None:
    if "conv_1.sk.weight" not in shapes or "upsampler.0.weight" not in shapes:
        return None
    scale = _pixel_shuffle_scale(shapes["upsampler.0.weight"][0], shapes["conv_1.sk.weight"][1])
    return ("SPAN", scale) if scale else None
