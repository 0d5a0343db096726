"""Running an upscaler model over a picture in tiles, as A1111 does (modules/upscaler_utils.upscale_with_model):
tiles of 192 px overlapping by 8 (A1111's ESRGAN_tile / ESRGAN_tile_overlap defaults), laid out by
images.split_grid (spread evenly, the last flush with the edge), and joined by images.combine_grid: each tile
after the first in a row, and each row after the first, fades in over its first `overlap * scale` pixels; the
rest of it replaces what was there.

SwinIR models (and Swin2SR, which A1111's SwinIR upscaler also loads) go through A1111's other tiler
(upscaler_utils.upscale_2 / tiled_upscale_2): square tiles of min(192, width, height), a start every 192 - 8
pixels and one flush with the far edge, each output pixel the plain average of the tiles that cover it.

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


AVERAGED = ("SwinIR", "Swin2SR")  # spandrel architecture ids A1111 tiles with tiled_upscale_2


def average_positions(size: int, tile: int, overlap: int) -> list[int]:
    """tiled_upscale_2's tile starts along one side (tile <= size)."""
    return list(range(0, size - tile, tile - overlap)) + [size - tile]


def run_tiled(descriptor, image, *, device, dtype, tile: int = TILE, overlap: int = OVERLAP,
              is_cancelled: Callable[[], bool] = lambda: False, on_tile: Callable[[int, int], None] | None = None):
    """`image` (PIL RGB) through the model, tiled; a PIL RGB image `scale` times larger. Raises JobCancelled."""
    import numpy as np
    import torch
    from PIL import Image

    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    if BGR:
        pixels = pixels.flip(0)
    run = lambda patch: _run_tile(descriptor, patch, device, dtype)  # noqa: E731
    if str(descriptor.architecture.id) in AVERAGED:
        canvas = _averaged(pixels, run, tile, overlap, is_cancelled, on_tile)
    else:
        canvas = _ramped(pixels, run, tile, overlap, is_cancelled, on_tile)
    if canvas.dtype != torch.uint8:
        canvas = _to_8_bits(canvas)
    if BGR:
        canvas = canvas.flip(0)
    return Image.fromarray(np.ascontiguousarray(canvas.permute(1, 2, 0).numpy()), "RGB")


def _run_tile(descriptor, patch, device, dtype):
    """One tile through the model: a float32 CPU tensor 0..1. NotFinite when it overflowed."""
    import torch

    patch = patch.unsqueeze(0).to(device=device, dtype=dtype)
    with torch.no_grad():
        out = descriptor(patch)[0].float()  # spandrel returns an inference tensor: no in-place ops
    del patch
    if not bool(torch.isfinite(out).all()):
        raise NotFinite(dtype)
    return out.clamp(0, 1).cpu()


def _averaged(pixels, run, tile, overlap, is_cancelled, on_tile):
    """tiled_upscale_2: every covering tile counts the same."""
    import torch

    _c, height, width = pixels.shape
    tile = min(tile, height, width)
    ys, xs = average_positions(height, tile, overlap), average_positions(width, tile, overlap)
    total, done = len(xs) * len(ys), 0
    result = weights = None
    scale = 0
    for y in ys:
        for x in xs:
            if is_cancelled():
                raise JobCancelled()
            out = run(pixels[:, y:y + tile, x:x + tile])
            scale = out.shape[-1] // tile
            if result is None:
                result = torch.zeros(3, height * scale, width * scale)
                weights = torch.zeros(1, height * scale, width * scale)
            result[:, y * scale:(y + tile) * scale, x * scale:(x + tile) * scale] += out
            weights[:, y * scale:(y + tile) * scale, x * scale:(x + tile) * scale] += 1
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    assert result is not None and weights is not None
    return result.div_(weights)


def _ramped(pixels, run, tile, overlap, is_cancelled, on_tile):
    """upscale_with_model: split_grid's tiles, combine_grid's fades (see the module docstring)."""
    import torch

    _c, height, width = pixels.shape
    tile_w, tile_h = min(tile, width), min(tile, height)
    xs, ys = positions(width, tile_w, overlap), positions(height, tile_h, overlap)
    total, done, scale = len(xs) * len(ys), 0, 0
    # The picture is kept in 8 bits; only the row being built and the row before it are float. That is exact:
    # a row's fade band lies inside the row before it (rows overlap by at least `overlap`), and every pixel's
    # final value is the last one written, computed in float as a full float canvas would.
    canvas = previous = None
    for y in ys:
        row = None
        for x in xs:
            if is_cancelled():
                raise JobCancelled()
            out = run(pixels[:, y:y + tile_h, x:x + tile_w])
            scale = out.shape[-1] // tile_w
            if row is None:
                row = torch.zeros(3, tile_h * scale, width * scale)
            _paste(row, out, x * scale, overlap * scale, first=x == xs[0])
            done += 1
            if on_tile is not None:
                on_tile(done, total)
        assert row is not None
        if canvas is None:
            canvas = torch.zeros(3, height * scale, width * scale, dtype=torch.uint8)
        if previous is not None:  # fade in over the row before, as combine_grid does
            fade = min(overlap * scale, row.shape[1])
            band = previous[1].narrow(1, y * scale - previous[0], fade)
            ramp = (torch.arange(fade, dtype=torch.float32) / fade).view(1, fade, 1)
            row[:, :fade] = band * (1 - ramp) + row[:, :fade] * ramp
        canvas[:, y * scale:y * scale + row.shape[1]] = _to_8_bits(row)
        previous = (y * scale, row)
    assert canvas is not None
    return canvas


def _to_8_bits(values):
    import torch

    return (values * 255).round_().clamp_(0, 255).to(torch.uint8)


def _paste(row, tile, start: int, fade: int, *, first: bool) -> None:
    """combine_grid's paste of a tile into its row at column `start`: it fades in over its first `fade` columns
    (A1111's mask r * 255 / overlap, r = 0..overlap-1) unless it is the row's first; the rest replaces."""
    import torch

    width = tile.shape[2]
    if first or fade <= 0:
        row[:, :, start:start + width] = tile
        return
    fade = min(fade, width)
    ramp = (torch.arange(fade, dtype=torch.float32) / fade).view(1, 1, fade)
    row[:, :, start:start + fade] = row[:, :, start:start + fade] * (1 - ramp) + tile[:, :, :fade] * ramp
    row[:, :, start + fade:start + width] = tile[:, :, fade:]
