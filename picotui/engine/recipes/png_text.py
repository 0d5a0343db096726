"""The text chunks of a PNG (tEXt, zTXt, iTXt), read by walking the chunk list ourselves.

Why not PIL: text chunks written after the image data need a full decode in PIL, and a hostile or
damaged file should cost nothing but a quick, bounded walk. Image data is skipped with seek(), text is
decompressed with a size cap, and every problem becomes one PicoError line.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from picotui.engine.errors import PicoError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
MAX_TEXT = 16 * 1024 * 1024  # per chunk, after decompression: prompts are capped far below this
MAX_CHUNKS = 100_000


def read_png_text(path: Path) -> dict[str, str]:
    """keyword -> text for every readable text chunk. Raises PicoError if the file is not a readable PNG."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != SIGNATURE:
                raise PicoError(f"{path.name} is not a PNG, JPEG or WebP image: picotui reads settings from the "
                                f"images picotui, A1111, ComfyUI, InvokeAI, NovelAI and Fooocus save.", "metadata")
            return _walk(fh)
    except FileNotFoundError:
        raise PicoError(f"{path.name} does not exist: check the path.", "metadata") from None
    except IsADirectoryError:
        raise PicoError(f"{path.name} is a folder, not a PNG file.", "metadata") from None
    except PermissionError:
        raise PicoError(f"{path.name} cannot be read (permission denied).", "metadata") from None
    except OSError as exc:
        raise PicoError(f"{path.name} cannot be read ({exc.strerror or exc}).", "metadata") from None


def _walk(fh) -> dict[str, str]:
    texts: dict[str, str] = {}
    for _ in range(MAX_CHUNKS):
        head = fh.read(8)
        if len(head) < 8:
            break  # truncated: keep what was read so far
        length, kind = struct.unpack(">I4s", head)
        if length > 0x7FFFFFFF:
            break  # not a valid chunk length: the rest is damaged
        if kind == b"IEND":
            break
        if kind not in TEXT_TYPES or length > MAX_TEXT:
            fh.seek(length + 4, 1)  # skip data and CRC without reading them
            continue
        data, crc = fh.read(length), fh.read(4)
        if len(data) < length or len(crc) < 4:
            break
        if zlib.crc32(kind + data) != struct.unpack(">I", crc)[0]:
            continue  # a damaged chunk is skipped, not trusted
        parsed = _parse(kind, data)
        if parsed is not None and parsed[0] not in texts:
            texts[parsed[0]] = parsed[1]
    return texts


def _parse(kind: bytes, data: bytes) -> tuple[str, str] | None:
    keyword, sep, rest = data.partition(b"\0")
    if not sep or not 1 <= len(keyword) <= 79:
        return None
    key = keyword.decode("latin-1")
    try:
        if kind == b"tEXt":
            return key, _decode(rest)
        if kind == b"zTXt":
            return (key, _decode(_inflate(rest[1:]))) if rest[:1] == b"\0" else None
        flag, method, rest = rest[:1], rest[1:2], rest[2:]  # iTXt: flag, method, language\0, translated\0, text
        _lang, _s1, rest = rest.partition(b"\0")
        _translated, _s2, text = rest.partition(b"\0")
        if not (_s1 and _s2):
            return None
        if flag == b"\1":
            if method != b"\0":
                return None
            text = _inflate(text)
        return key, text.decode("utf-8", "replace")
    except (zlib.error, ValueError):
        return None


def _inflate(data: bytes) -> bytes:
    """zlib-decompress with a cap, so a small 'zip bomb' chunk cannot eat memory."""
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_TEXT)
    if d.unconsumed_tail:
        raise ValueError("text chunk too large")
    return out


def _decode(raw: bytes) -> str:
    """tEXt is Latin-1 by the PNG spec, and that is what PIL (so A1111) writes there: text that does not
    fit Latin-1 goes into iTXt instead. Guessing UTF-8 first would garble Latin-1 text like 'Â\x80'."""
    return raw.decode("latin-1")
