"""Opening a picture to build on (img2img source, Extras upscale): one RGB image and what was done to it.

Every file that cannot be used is one RequestError line. The limits: at least MIN_SIDE pixels a side (a 1x1
picture has nothing to build on) and at most MAX_SIDE (checked from the header, before any pixel is decoded: a
20000x20000 PNG is refused in milliseconds, not after filling the memory). What is converted, with a notice:
an animated GIF/WebP/APNG gives its first frame (as A1111 does); transparency is flattened onto white (A1111's
img2img image box hands it RGBA, whatever the file's mode, and images.flatten puts that onto
img2img_background_color, white by default); CMYK is converted to RGB; 16-bit
grayscale is scaled to 8 bits (PIL's own conversion clips it to white). Grayscale and palette pictures become
RGB silently. The EXIF orientation a phone writes is applied, so the picture is the way up people see it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from picotui.engine.errors import RequestError

MIN_SIDE = 16
MAX_SIDE = 8192
BACKGROUND = (255, 255, 255)
FORMATS = "PNG, JPEG, WebP"


def open_source_image(path) -> tuple:
    """(PIL RGB image, notices) for the picture at `path`. RequestError (one line) when it cannot be used."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    name = path.name
    if not path.exists():
        raise RequestError(f"{path} does not exist: check the path.")
    if path.is_dir():
        raise RequestError(f"{name} is a folder: pick a picture file ({FORMATS}).")
    notices: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
            image = Image.open(path)
    except Image.DecompressionBombError as exc:  # PIL's own guard (from the header), far above our limit
        raise RequestError(_too_large(name, None, str(exc))) from None
    except UnidentifiedImageError:
        raise RequestError(f"{name} is not a picture picotui can read: use a {FORMATS} file.") from None
    except PermissionError:
        raise RequestError(f"{name} cannot be read (permission denied): check the file's permissions.") from None
    except OSError as exc:
        raise RequestError(f"{name} cannot be read ({exc.strerror or exc}): check the file.") from None
    except Exception as exc:  # a hostile header can fail in the parser in other ways (huge text chunks...)
        raise RequestError(f"{name} cannot be read as a picture ({type(exc).__name__}): save it again as a PNG or "
                           f"JPEG.") from None
    with image:
        width, height = image.size
        if max(width, height) > MAX_SIDE:
            raise RequestError(_too_large(name, (width, height)))
        if min(width, height) < MIN_SIDE:
            raise RequestError(f"{name} is only {width}x{height} pixels: a source picture needs at least "
                               f"{MIN_SIDE} pixels a side.")
        try:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                image.seek(0)
                notices.append(f"{name} is animated ({frames} frames): using its first frame.")
            image.load()
        except OSError as exc:
            text = str(exc)
            why = "it is cut short" if "truncated" in text or "broken" in text else text.rstrip(".")
            raise RequestError(f"{name} cannot be decoded ({why}): save or download it again.") from None
        except Exception as exc:  # a malformed file can fail in the decoder in other ways
            raise RequestError(f"{name} cannot be decoded ({type(exc).__name__}): save or download it "
                               f"again.") from None
        try:
            rgb = _to_rgb(image, name, notices)
        except (ValueError, OSError) as exc:  # modes PIL cannot turn into RGB (LAB, HSV from a TIFF...)
            raise RequestError(f"{name} uses the {image.mode} color mode, which picotui cannot convert "
                               f"({exc}): save it as an RGB PNG or JPEG.") from None
    return _upright(rgb), notices


def _too_large(name: str, size: tuple[int, int] | None, detail: str = "") -> str:
    import re

    count = re.search(r"\((\d+) pixels\)", detail)
    what = (f"{size[0]}x{size[1]} pixels" if size else f"{int(count.group(1)):,} pixels" if count
            else "too large to open safely")
    return f"{name} is {what}; picotui opens pictures up to {MAX_SIDE} pixels a side: scale it down first."


def _to_rgb(image, name: str, notices: list[str]):
    import numpy as np
    from PIL import Image

    mode = image.mode
    exif = image.getexif()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode != "F" and values.max(initial=0) > 255:
            values = values / 257.0  # 16-bit to 8-bit: 65535 -> 255
            notices.append(f"{name} is a 16-bit picture: converted to 8 bits.")
        image = Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")
        mode = "L"
    if mode == "CMYK":
        notices.append(f"{name} is a CMYK (print) picture: converted to RGB; colors may shift a little.")
        rgb = image.convert("RGB")
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info) \
            or (mode in ("RGB", "L") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            notices.append(f"{name} has transparent parts: flattened onto white, as A1111's img2img does.")
        rgb = Image.new("RGB", rgba.size, BACKGROUND)
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = image.convert("RGB")
    rgb.info["exif_orientation"] = exif.get(0x0112, 1)
    return rgb


def _upright(image):
    """Apply the EXIF orientation (phones store pictures sideways with a tag saying which way is up)."""
    from PIL import Image

    orientation = image.info.pop("exif_orientation", 1)
    ops = {2: [Image.Transpose.FLIP_LEFT_RIGHT], 3: [Image.Transpose.ROTATE_180],
           4: [Image.Transpose.FLIP_TOP_BOTTOM], 5: [Image.Transpose.TRANSPOSE], 6: [Image.Transpose.ROTATE_270],
           7: [Image.Transpose.TRANSVERSE], 8: [Image.Transpose.ROTATE_90]}.get(orientation, [])
    for op in ops:
        image = image.transpose(op)
    return image
