"""The grid image: cells in rows and columns, the X captions above the columns, the Y captions left of the
rows, and with a Z axis one such grid per Z value side by side under its own caption (A1111's layout).

Text is drawn with the bundled DejaVu Sans (assets/fonts, its licence beside it), so the labels look the
same everywhere and no system font is needed. The font size follows the cell size as A1111's does
((w + h) / 25) but never below 12 px, so a grid of tiny cells still has readable labels; captions wrap to
the column width. A cell that was not made (cancelled, failed) is a grey square.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from picotui.paths import assets_dir

if TYPE_CHECKING:
    from PIL.Image import Image

FONT_FILE = "fonts/DejaVuSans.ttf"
MIN_FONT = 12
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
MISSING = (128, 128, 128)


@lru_cache(maxsize=8)
def font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(assets_dir() / FONT_FILE), size)


def font_size(cell_w: int, cell_h: int) -> int:
    return max(MIN_FONT, (cell_w + cell_h) // 25)


def wrap(text: str, face, width: int) -> list[str]:
    """`text` in lines no wider than `width` (a word longer than that is cut by characters)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if face.getlength(candidate) <= width or not line:
                line = candidate
            else:
                lines.append(line)
                line = word
            while face.getlength(line) > width and len(line) > 1:  # one word wider than the column
                cut = len(line)
                while cut > 1 and face.getlength(line[:cut]) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _text_block(draw, lines, face, box, line_h) -> None:
    """Lines centred in box (left, top, right, bottom)."""
    left, top, right, bottom = box
    y = top + max(0, (bottom - top - line_h * len(lines)) // 2)
    for line in lines:
        w = face.getlength(line)
        draw.text((left + (right - left - w) / 2, y), line, fill=TEXT, font=face)
        y += line_h


def draw_grid(cells: list, nx: int, ny: int, x_captions: list[str], y_captions: list[str], cell_size: tuple[int, int]):
    """One grid: `cells` (PIL images or None) indexed ix + iy*nx, with captions; returns a PIL image."""
    from PIL import Image, ImageDraw

    cw, ch = cell_size
    face = font(font_size(cw, ch))
    line_h = int(face.size * 1.25)
    pad = face.size // 2
    has_x, has_y = any(x_captions), any(y_captions)
    x_lines = [wrap(t, face, cw - 2 * pad) for t in x_captions] if has_x else []
    top = (max(len(l) for l in x_lines) * line_h + 2 * pad) if has_x else 0
    left = 0
    if has_y:
        widest = math.ceil(max(face.getlength(t) for t in y_captions)) + 1
        left = int(min(max(widest + 2 * pad, cw * 3 // 4), max(cw, 4 * face.size * 3)))
        y_lines = [wrap(t, face, left - 2 * pad) for t in y_captions]
    image = Image.new("RGB", (left + nx * cw, top + ny * ch), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for iy in range(ny):
        for ix in range(nx):
            cell = cells[ix + iy * nx]
            at = (left + ix * cw, top + iy * ch)
            if cell is None:
                draw.rectangle([at, (at[0] + cw - 1, at[1] + ch - 1)], fill=MISSING)
            else:
                image.paste(cell.convert("RGB").resize((cw, ch)) if cell.size != (cw, ch) else cell.convert("RGB"), at)
    for ix, lines in enumerate(x_lines):
        _text_block(draw, lines, face, (left + ix * cw, pad, left + (ix + 1) * cw, top - pad), line_h)
    if has_y:
        for iy, lines in enumerate(y_lines):
            _text_block(draw, lines, face, (pad, top + iy * ch, left - pad, top + (iy + 1) * ch), line_h)
    return image


def draw_plot(plan, images: dict) -> Image:
    """The whole plot's image: `images` maps cell index -> PIL image (missing cells drawn grey)."""
    from PIL import Image, ImageDraw

    nx, ny, nz = plan.shape
    first = next((images[i] for i in sorted(images)), None)
    size = first.size if first is not None else (plan.base.width, plan.base.height)
    grids = []
    for iz in range(nz):
        cells = [images.get(plan.index(ix, iy, iz)) for iy in range(ny) for ix in range(nx)]
        grids.append(draw_grid(cells, nx, ny, plan.captions(0) if plan.axes[0] else [""] * nx,
                               plan.captions(1) if plan.axes[1] else [""] * ny, size))
    if nz == 1:
        return grids[0]
    face = font(font_size(*size))
    line_h = int(face.size * 1.25)
    gw, gh = grids[0].size
    z_lines = [wrap(t, face, gw) for t in plan.captions(2)]
    top = max(len(l) for l in z_lines) * line_h + face.size
    image = Image.new("RGB", (gw * nz, top + gh), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for iz, grid in enumerate(grids):
        image.paste(grid, (iz * gw, top))
        _text_block(draw, z_lines[iz], face, (iz * gw, 0, (iz + 1) * gw, top), line_h)
    return image
