"""Running an upscaler model over a picture in tiles, as A1111 does (modules/upscaler_utils.upscale_with_model):
tiles of 192 px overlapping by 8 (A1111's ESRGAN_tile / ESRGAN_tile_overlap defaults), laid out by
images.split_grid (spread evenly, the last flush with the edge), and joined by images.combine_grid: each tile
after the first in a row, and each row after the first, fades in over its first `overlap * scale` pixels; the
rest of it replaces what was there.

Only one tile is on the device at a time and the picture is assembled on the CPU, so the device's memory is
the same for a 512² and a 4096² result. The blend is done in float and rounded once (A1111 rounds each tile to
8 bits before blending: at most one level apart on the seams). Cancellation is checked between tiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from picotui.engine.errors import JobCancelled

TILE = 192
OVERLAP = 8
# A1111 feeds spandrel models BGR pictures (pil_image_to_torch_bgr) and flips the result back. Most of these
# models were trained on RGB, but A1111's output is what recipes reproduce, so picotui does the same.
BGR = True


class NotFinite(ArithmeticError):
    """The model gave inf/NaN (in fp16: an activation beyond 65504). The caller reruns in fp32."""


def positions(size: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one side: split_grid's layout (tile <= size)."""
    if tile >= size:
        return [0]
    count = math.ceil((size - overlap) / (tile - overlap))
    step = (size - tile) / (count - 1) if count > 1 else 0
    return [min(int(i * step), size - tile) for i in range(count)]


def run_tiled(descriptor, image, *, device, dtype, tile: int = TILE, overlap: int = OVERLAP,
              is_cancelled: Callable[[], bool] = lambda: False, on_tile: Callable[[int, int], None] | None = None):
    """`image` (PIL RGB) through the model, tiled; a PIL RGB image `scale` times larger. Raises JobCancelled."""
    import numpy as np
    import torch
    from PIL import Image

    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    if BGR:
        pixels = pixels.flip(0)
    _c, height, width = pixels.shape
    tile_w, tile_h = min(tile, width), min(tile, height)
    xs, ys = positions(width, tile_w, overlap), positions(height, tile_h, overlap)
    total, done, scale = len(xs) * len(ys), 0, 0
    canvas = None
    for y in ys:
        row = None
        for x in xs:
            if is_cancelled():
                raise JobCancelled()
            patch = pixels[:, y:y + tile_h, x:x + tile_w].unsqueeze(0).to(device=device, dtype=dtype)
            with torch.no_grad():
                out = descriptor(patch)[0].float()  # spandrel returns an inference tensor: no in-place ops
            del patch
            if not bool(torch.isfinite(out).all()):
                raise NotFinite(dtype)
            out = out.clamp(0, 1).cpu()
            scale = out.shape[-1] // tile_w
            if row is None:
                row = torch.zeros(3, tile_h * scale, width * scale)
            _paste(row, out, x * scale, overlap * scale, axis=2, first=x == xs[0])
            done += 1
            if on_tile is not None:
                on_tile(done, total)
        if canvas is None:
            canvas = torch.zeros(3, height * scale, width * scale)
        _paste(canvas, row, y * scale, overlap * scale, axis=1, first=y == ys[0])
    assert canvas is not None
    if BGR:
        canvas = canvas.flip(0)
    array = canvas.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def _paste(target, piece, start: int, fade: int, *, axis: int, first: bool) -> None:
    """combine_grid's paste along `axis`: `piece` fades in over its first `fade` pixels unless it is the first."""
    import torch

    length = piece.shape[axis]
    if first or fade <= 0:
        target.narrow(axis, start, length).copy_(piece)
        return
    fade = min(fade, length)
    ramp = torch.arange(fade, dtype=torch.float32) / fade  # A1111's mask: r * 255 / overlap, r = 0..overlap-1
    ramp = ramp.view(1, 1, fade) if axis == 2 else ramp.view(1, fade, 1)
    head = target.narrow(axis, start, fade)
    head.mul_(1 - ramp).add_(piece.narrow(axis, 0, fade) * ramp)
    target.narrow(axis, start + fade, length - fade).copy_(piece.narrow(axis, fade, length - fade))
