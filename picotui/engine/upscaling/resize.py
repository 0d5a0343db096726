"""A1111's images.resize_image: fitting a source picture to the size being generated.

Modes (request.RESIZE_MODES): 0 "Just resize" stretches to the size; 1 "Crop and resize" scales to cover the
size and crops the middle; 2 "Resize and fill" scales to fit inside and fills the two strips left over by
stretching the picture's edge rows (or columns) across them; 3 "Just resize (latent upscale)" is A1111's
mode 0 done on latents, which the sampler does (a picture at its own size comes back here unchanged).

Every scaling goes through A1111's resize(): without an upscaler, or when the picture shrinks, PIL LANCZOS;
when it grows (scale > 1) the upscaler runs first (`upscale(image, scale)`, e.g. Upscalers.upscale bound to a
name) and LANCZOS then makes the size exact.
"""

from __future__ import annotations

from collections.abc import Callable

from picotui.engine.errors import RequestError
from picotui.engine.request import RESIZE_MODES  # A1111's four labels, in its order


def mode_index(mode) -> int:
    """A mode's number (0-3) from its A1111 label or number."""
    if isinstance(mode, int) and 0 <= mode < len(RESIZE_MODES):
        return mode
    for index, label in enumerate(RESIZE_MODES):
        if str(mode).strip().lower() == label.lower():
            return index
    raise RequestError(f"Unknown resize mode {mode!r}: use one of {', '.join(RESIZE_MODES)}.")


def _resize(image, width: int, height: int, upscale: Callable | None):
    from PIL import Image

    if upscale is None or image.mode == "L":  # A1111 sends grayscale straight to LANCZOS too
        return image.resize((width, height), resample=Image.Resampling.LANCZOS)
    scale = max(width / image.width, height / image.height)
    if scale > 1.0:
        image = upscale(image, scale)
    if image.size != (width, height):
        image = image.resize((width, height), resample=Image.Resampling.LANCZOS)
    return image


def resize_image(image, width: int, height: int, mode="Just resize", upscale: Callable | None = None):
    """`image` fitted to width x height by A1111's resize mode `mode` (label or 0-3); see the module docstring."""
    from PIL import Image

    index = mode_index(mode)
    if index == 3:
        return image  # the latent upscale happens after encoding, in the sampler
    if index == 0:
        return _resize(image, width, height, upscale)
    ratio, source_ratio = width / height, image.width / image.height
    if index == 1:  # cover, then crop the middle (a negative paste offset crops)
        src_w = width if ratio > source_ratio else image.width * height // image.height
        src_h = height if ratio <= source_ratio else image.height * width // image.width
    else:  # fit inside, then fill the strips
        src_w = width if ratio < source_ratio else image.width * height // image.height
        src_h = height if ratio >= source_ratio else image.height * width // image.width
    resized = _resize(image, src_w, src_h, upscale)
    result = Image.new("RGB", (width, height))
    result.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if index == 2:
        if ratio < source_ratio:  # strips above and below: the top and bottom rows stretched
            fill = height // 2 - src_h // 2
            if fill > 0:
                result.paste(resized.resize((width, fill), box=(0, 0, width, 0)), box=(0, 0))
                result.paste(resized.resize((width, fill), box=(0, resized.height, width, resized.height)),
                             box=(0, fill + src_h))
        elif ratio > source_ratio:  # strips left and right: the first and last columns stretched
            fill = width // 2 - src_w // 2
            if fill > 0:
                result.paste(resized.resize((fill, height), box=(0, 0, 0, height)), box=(0, 0))
                result.paste(resized.resize((fill, height), box=(resized.width, 0, resized.width, height)),
                             box=(fill + src_w, 0))
    return result
