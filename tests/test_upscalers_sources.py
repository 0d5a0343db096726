"""Source pictures (every bad file one line) and A1111's resize modes, against its documented arithmetic."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from picotui.engine.errors import RequestError
from picotui.engine.upscaling.resize import resize_image
from picotui.engine.upscaling.source import MAX_SIDE, open_source_image


def png_header_only(path, width, height):
    """A PNG that says it is width x height (IHDR) with no pixel data: what a size check must stop."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


def one_line_refusal(path, *words):
    with pytest.raises(RequestError) as refused:
        open_source_image(path)
    text = str(refused.value)
    assert "\n" not in text and path.name in text
    for word in words:
        assert word in text, text
    return text


def test_bad_files_are_one_line_each(tmp_path):
    one_line_refusal(tmp_path / "missing.png", "does not exist")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    one_line_refusal(tmp_path / "dot.png", "1x1", "at least")
    one_line_refusal(png_header_only(tmp_path / "huge.png", 20000, 20000), "400,000,000 pixels", str(MAX_SIDE))
    one_line_refusal(png_header_only(tmp_path / "wide.png", 9000, 100), "9000x100")
    (tmp_path / "notes.png").write_text("not a picture")
    one_line_refusal(tmp_path / "notes.png", "not a picture")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    one_line_refusal(tmp_path / "cut.png", "cut short")
    (tmp_path / "folder.png").mkdir()
    one_line_refusal(tmp_path / "folder.png", "folder")


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    image, notices = open_source_image(tmp_path / "anim.gif")
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (255, 0, 0)
    assert len(notices) == 1 and "3 frames" in notices[0] and "first frame" in notices[0]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(tmp_path / "print.jpg", quality=95)  # red in print inks
    image, notices = open_source_image(tmp_path / "print.jpg")
    assert image.mode == "RGB"
    r, g, b = image.getpixel((16, 16))
    assert r > 240 and g < 15 and b < 15
    assert any("CMYK" in n for n in notices)


def test_transparency_flattens_onto_white_and_16_bit_scales(tmp_path):
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    rgba.paste((10, 20, 30, 255), (0, 0, 16, 32))
    rgba.save(tmp_path / "cutout.png")
    image, notices = open_source_image(tmp_path / "cutout.png")
    assert image.getpixel((4, 4)) == (10, 20, 30) and image.getpixel((24, 4)) == (255, 255, 255)
    assert any("white" in n for n in notices)
    gray = np.full((32, 32), 65535, dtype=np.uint16)
    gray[:, 16:] = 32896  # 128 * 257
    Image.fromarray(gray).save(tmp_path / "deep.png")
    image, notices = open_source_image(tmp_path / "deep.png")
    assert image.getpixel((4, 4)) == (255, 255, 255) and image.getpixel((24, 4)) == (128, 128, 128)
    Image.new("L", (32, 32), 77).save(tmp_path / "gray.png")
    image, notices = open_source_image(tmp_path / "gray.png")
    assert image.mode == "RGB" and image.getpixel((1, 1)) == (77, 77, 77) and notices == []


def stripes(width, height, colors, axis):
    """Equal bands of solid colors across `axis` (1: left to right)."""
    array = np.zeros((height, width, 3), np.uint8)
    size = width if axis == 1 else height
    for i, color in enumerate(colors):
        band = slice(i * size // len(colors), (i + 1) * size // len(colors))
        if axis == 1:
            array[:, band] = color
        else:
            array[band] = color
    return Image.fromarray(array)


def test_crop_and_resize_keeps_the_middle():
    # 80x40 to 40x40: A1111 scales to cover (src_h = 40, src_w = 80 * 40 // 40 = 80: no scaling) and pastes
    # at x = 40 // 2 - 80 // 2 = -20, so columns 20..59 remain: the green middle half.
    source = stripes(80, 40, [(255, 0, 0), (0, 255, 0), (0, 255, 0), (0, 0, 255)], axis=1)
    result = np.asarray(resize_image(source, 40, 40, "Crop and resize"))
    assert result.shape == (40, 40, 3) and (result == (0, 255, 0)).all()


def test_resize_and_fill_stretches_the_edge_rows():
    # 40x20 into 40x40: fits as 40x20 at y = 20 - 10 = 10; fill_height = 10 strips above and below repeat the
    # first and the last row.
    source = stripes(40, 20, [(255, 255, 255), (128, 0, 0), (0, 0, 0)], axis=0)
    result = np.asarray(resize_image(source, 40, 40, "Resize and fill")).astype(int)
    assert np.abs(result[:10] - 255).max() <= 1
    assert np.abs(result[30:]).max() <= 1
    assert (result[10:30] == np.asarray(source)).all()


def test_resize_calls_the_upscaler_only_to_grow():
    calls = []

    def upscale(image, scale):
        calls.append(scale)
        return image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.NEAREST)

    source = Image.new("RGB", (40, 20), (9, 9, 9))
    assert resize_image(source, 100, 60, "Just resize", upscale).size == (100, 60)
    assert calls == [max(100 / 40, 60 / 20)]
    assert resize_image(source, 20, 10, "Just resize", upscale).size == (20, 10) and len(calls) == 1
    assert resize_image(source, 64, 64, "Just resize (latent upscale)") is source
