"""Which textual-image widget draws pictures: chosen once, before the app starts.

textual-image probes the terminal (Sixel / Kitty graphics support, cell size in pixels) when
`textual_image.renderable` is first imported, and the probe cannot run once Textual owns stdin, so
`prepare()` must be called before `App.run()`. Over slow SSH the probe can time out and pick
half-blocks; `--graphics`, PICOTUI_GRAPHICS or the config's `graphics` override it:
auto | kitty | sixel | halfcell | unicode | none.
"""

from __future__ import annotations

import logging

log = logging.getLogger("picotui.ui")

_state: dict = {"choice": None, "widget": None}


def prepare(choice: str | None) -> str:
    """Import textual-image (running its probe) and pick the widget class. Returns the effective choice."""
    choice = (choice or "auto").lower()
    if _state["choice"] == choice:
        return choice
    widget = None
    if choice != "none":
        try:
            import importlib

            importlib.import_module("textual_image.renderable")  # the terminal probe happens here, once
            from textual_image import widget as tiw

            widget = {"auto": tiw.Image, "kitty": tiw.TGPImage, "sixel": tiw.SixelImage,
                      "halfcell": tiw.HalfcellImage, "unicode": tiw.UnicodeImage}.get(choice, tiw.Image)
        except Exception as exc:  # no usable terminal (closed stdout...): draw no pictures rather than crash
            log.warning("textual-image unavailable (%s); images are not drawn", exc)
            choice, widget = "none", None
    _state.update(choice=choice, widget=widget)
    return choice


def image_widget():
    """The Image widget class to use, or None for no pictures."""
    if _state["choice"] is None:
        prepare("auto")
    return _state["widget"]


def cell_size() -> tuple[int, int]:
    """A terminal cell in pixels (textual-image's cached answer; a common 10×20 when unknown)."""
    try:
        from textual_image._terminal import get_cell_size

        size = get_cell_size()
        if size.width > 0 and size.height > 0:
            return size.width, size.height
    except Exception:
        pass
    return 10, 20
