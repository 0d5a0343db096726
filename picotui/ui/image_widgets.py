"""What picotui adds around textual-image's widgets: kitty graphics through tmux, kitty images sent at
their own size (the terminal scales them), cheaper sixel previews, and a meter and a budget for the
bytes sent to the terminal (previews must fit an SSH link).

textual-image stays the renderer. Its kitty renderable writes the image to `sys.__stdout__` itself;
`PicoTGP` overrides the three methods that do (`_send_image_to_terminal`, `_create_virtual_placement`,
`cleanup`) so the bytes can be wrapped for tmux passthrough and counted. Everything Textual writes is
counted by wrapping the driver's `write` (see `ByteMeter.attach`).
"""

from __future__ import annotations

import base64
import io
import re
import sys
import time
from dataclasses import dataclass, field

_GRAPHICS_START, _GRAPHICS_END = "\x1b_G", "\x1b\\"


def tmux_wrap(sequence: str) -> str:
    """A sequence for the outer terminal, passed through tmux (`allow-passthrough on`): ESCs doubled."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


@dataclass
class ByteMeter:
    """Bytes written to the terminal: in all, and per picture. A picture's cost is what went out from the
    moment it was handed to its widget up to and including Textual's next screen update (the update that
    draws it; kitty's image data goes out directly while it renders, before that update)."""
    total: int = 0
    per_picture: list[tuple[str, int]] = field(default_factory=list)  # (kind, bytes), the last 50
    pending: str | None = None  # the kind of picture waiting for its screen update
    since_picture: int = 0
    _attached: set = field(default_factory=set)

    def add(self, count: int) -> None:
        """Bytes written outside Textual's screen updates (kitty image data)."""
        self.total += count
        self.since_picture += count

    def frame(self, count: int) -> None:
        """One screen update written by Textual's driver (write, then flush)."""
        self.add(count)
        self.flushed()

    def flushed(self) -> None:
        """The driver flushed a screen update: it carried the pending picture, if any. (One update is
        several writes: with synchronized output the first is only "begin update".)"""
        if self.pending is not None:
            self.per_picture.append((self.pending, self.since_picture))
            del self.per_picture[:-50]
            self.pending = None

    def picture_shown(self, kind: str) -> None:
        self.pending, self.since_picture = kind, 0

    def last(self, kind: str) -> int | None:
        for seen, count in reversed(self.per_picture):
            if seen == kind:
                return count
        return None

    def summary(self) -> str:
        preview, final = self.last("preview"), self.last("final")
        if preview is None and final is None:
            return "no picture drawn yet"
        parts = []
        if preview is not None:
            parts.append(f"last preview {_size(preview)}")
        if final is not None:
            parts.append(f"last final image {_size(final)}")
        return ", ".join(parts) + f" ({_size(self.total)} to the terminal in all)"

    def attach(self, app) -> None:
        """Count what the app's driver writes (Textual's whole output, sixel pictures included)."""
        driver = getattr(app, "_driver", None)
        if driver is None or id(driver) in self._attached:
            return
        write, flush = driver.write, driver.flush

        def counting_write(data: str) -> None:
            self.add(len(data.encode("utf-8", "surrogateescape")))
            write(data)

        def counting_flush() -> None:
            flush()
            self.flushed()
        driver.write, driver.flush = counting_write, counting_flush
        self._attached.add(id(driver))


def _size(count: int) -> str:
    return f"{count / 1e6:.2f} MB" if count >= 1e6 else f"{count / 1e3:.1f} KB"


meter = ByteMeter()


class PreviewBudget:
    """A token bucket for bytes per second to the terminal (everything the meter counted, not only
    pictures). A preview frame is drawn when the bucket holds what the last preview cost, else dropped
    (the next step brings a fresher one); the final image is always drawn and paid for, so the previews
    after it wait their turn."""

    def __init__(self, bytes_per_second: int, clock=time.monotonic):
        self.rate = max(1, int(bytes_per_second))
        self.clock = clock
        self.tokens = float(self.rate)  # one second's worth to start: the first preview goes at once
        self.stamp = clock()
        self.seen: int | None = None  # the meter's total at the last call (bytes before the first are not ours)
        self.dropped = 0

    def _update(self, written_total: int) -> None:
        now = self.clock()
        self.tokens = min(float(self.rate), self.tokens + (now - self.stamp) * self.rate)
        self.tokens -= max(0, written_total - (written_total if self.seen is None else self.seen))
        self.stamp, self.seen = now, written_total

    def allow(self, written_total: int, estimate: int | None) -> bool:
        """May a preview frame that will cost about `estimate` bytes go now?"""
        self._update(written_total)
        need = min(estimate or 0, self.rate)  # a frame dearer than a second's worth waits for a full bucket
        if self.tokens >= need:
            return True
        self.dropped += 1
        return False


def parse_rate(text: str | int | None) -> int | None:
    """'200K', '200KB', '1.5M', '0' (no limit) or a number of bytes -> bytes per second; None if not one."""
    if text is None:
        return None
    if isinstance(text, int):
        return text if text >= 0 else None
    raw = str(text).strip().upper().removesuffix("/S").removesuffix("B")
    scale = {"K": 1000, "M": 1000 ** 2}.get(raw[-1:], 1)
    try:
        value = float(raw[:-1] if scale > 1 else raw)
    except ValueError:
        return None
    return int(value * scale) if value >= 0 else None


def tgp_class(base, passthrough: bool):
    """textual-image's kitty renderable, sending the image at its own size when that is smaller than the
    cells it fills (the terminal scales it up: a 64×64 preview is ~10 KB, not a pane-sized PNG), wrapped
    for tmux when `passthrough`, and counted."""

    class PicoTGP(base):
        def _write(self, **keys) -> None:
            payload = keys.pop("payload", None)
            body = ",".join(f"{k}={v}" for k, v in keys.items() if v is not None)
            sequence = _GRAPHICS_START + body + (f";{payload}" if payload else "") + _GRAPHICS_END
            if passthrough:
                sequence = tmux_wrap(sequence)
            meter.add(len(sequence))
            sys.__stdout__.write(sequence)
            sys.__stdout__.flush()

        def _send_image_to_terminal(self, width: int, height: int) -> None:
            from textual_image.renderable.tgp import Image as Renderable

            self.terminal_image_id = next(Renderable._image_id_counter)
            image = self._image_data.pil_image if hasattr(self._image_data, "pil_image") else None
            if image is not None and image.width <= width and image.height <= height:
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, format="PNG")
                data = base64.b64encode(buffer.getvalue()).decode("ascii")
            else:
                data = self._image_data.scaled(width, height).to_base64()
            while data:
                chunk, data = data[:4096], data[4096:]
                self._write(i=self.terminal_image_id, m=1 if data else 0, f=100, q=2, payload=chunk)

        def _create_virtual_placement(self, width: int, height: int) -> None:
            self._write(a="p", i=self.terminal_image_id, c=width, r=height, U=1, q=2)

        def cleanup(self) -> None:
            if self.terminal_image_id:
                self._write(a="d", d="I", i=self.terminal_image_id, q=2)
                self.terminal_image_id = None

    return PicoTGP


_SIXEL_RASTER = re.compile(r'"\d+;\d+;\d+;\d+')
_SIXEL_DEFINITION = re.compile(r"#(\d+);2;(\d+);(\d+);(\d+)")


def hoist_color_definitions(sixel: str) -> str:
    """The sixel image with every colour register defined up front, right after the raster attributes
    (as libsixel writes them). textual-image defines each register on its first use, most of them in the
    first band, and xterm (379, -ti vt340) draws that band speckled: the "debris" along the top row of
    every sixel picture. Same pixels; a few bytes more (a `#n` select where a definition was)."""
    raster = _SIXEL_RASTER.search(sixel)
    if raster is None:
        return sixel
    head, body = sixel[:raster.end()], sixel[raster.end():]
    definitions = "".join(match.group(0) for match in _SIXEL_DEFINITION.finditer(body))
    return head + definitions + _SIXEL_DEFINITION.sub(lambda match: "#" + match.group(1), body)


def sixel_class(base):
    """textual-image's sixel widget, its encoding passed through `hoist_color_definitions`."""
    from textual_image.widget.sixel import _ImageSixelImpl, _NoopRenderable

    class PicoSixelImpl(_ImageSixelImpl):
        def _image_to_sixels(self, image, sixel_options=None, background=None) -> str:
            return hoist_color_definitions(super()._image_to_sixels(image, sixel_options, background))

    class PicoSixelImage(base, Renderable=_NoopRenderable):
        def compose(self):
            yield PicoSixelImpl(self.image, self._sixel_options)

    return PicoSixelImage
