"""Which textual-image widget draws pictures: chosen once, before the app starts.

textual-image finds out what the terminal can draw (Sixel / Kitty graphics, the cell size in pixels)
by writing queries to it and reading the answers from stdin; that cannot work once Textual owns
stdin, so `prepare()` must be called before `App.run()`. Over slow SSH the probe can time out and
pick half-blocks; `--graphics`, PICOTUI_GRAPHICS or the config's `graphics` override it:
auto | kitty | sixel | halfcell | unicode | none.

Two generations of textual-image are supported, told apart by what they offer, not by version:
* 0.12 probes when `textual_image.renderable` is first imported, whatever is asked for;
* releases with `textual_image.widget.select_image_class` probe only when asked: with an explicit
  choice picotui never probes, it tells textual-image the cell size (from the tty) instead.
Either way the probe's own log lines (a timeout warning with a traceback, on terminals that do not
answer) go to picotui's log file, never raw onto the terminal.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("picotui.ui")

_state: dict = {"choice": None, "widget": None}


def route_library_logs() -> None:
    """Send the `textual_image` logger to wherever the `picotui` logger writes (the log file).

    With no handler of its own, a library warning falls through to Python's last-resort handler,
    which prints it to stderr, i.e. across the terminal before the first paint.
    """
    library = logging.getLogger("textual_image")
    library.propagate = False
    for handler in logging.getLogger("picotui").handlers:
        if handler not in library.handlers:
            library.addHandler(handler)
    if not library.handlers:
        library.addHandler(logging.NullHandler())


def prepare(choice: str | None) -> str:
    """Import textual-image (probing the terminal when it must) and pick the widget class.
    Returns the effective choice."""
    choice = (choice or "auto").lower()
    if _state["choice"] == choice:
        return choice
    route_library_logs()
    widget = None
    if choice != "none":
        try:
            from textual_image import widget as tiw  # 0.12: the terminal probe runs here, once

            lazy = hasattr(tiw, "select_image_class")
            if choice == "auto":
                widget = tiw.select_image_class() if lazy else tiw.Image
            else:
                if lazy:
                    _tell_cell_size_without_probing()
                widget = {"kitty": tiw.TGPImage, "sixel": tiw.SixelImage, "halfcell": tiw.HalfcellImage,
                          "unicode": tiw.UnicodeImage}.get(choice) or (tiw.select_image_class() if lazy else tiw.Image)
        except Exception as exc:  # no usable terminal (closed stdout...): draw no pictures rather than crash
            log.warning("textual-image unavailable (%s); images are not drawn", exc)
            choice, widget = "none", None
    _state.update(choice=choice, widget=widget)
    log.info("graphics: %s (%s)", choice, getattr(widget, "__name__", "no pictures"))
    return choice


def _tell_cell_size_without_probing() -> None:
    """Newer textual-image asks the terminal for its cell size on first use, which would happen while
    Textual owns stdin. Hand it the size the tty reports (no query) so it never has to ask."""
    try:
        from textual_image import _terminal

        width, height = _tty_cell_size() or (10, 20)
        _terminal.set_terminal_capabilities(
            _terminal.TerminalCapabilities(_terminal.CellSize(width, height), sixel=False, tgp=False))
    except Exception as exc:  # an API we do not know: let textual-image probe now, before the app runs
        log.info("could not preset the cell size (%s); textual-image probes instead", exc)
        try:
            from textual_image._terminal import get_cell_size

            get_cell_size()
        except Exception:
            pass


def _tty_cell_size() -> tuple[int, int] | None:
    """Cell size in pixels from the TIOCGWINSZ ioctl: no bytes written to or read from the terminal."""
    try:
        import fcntl
        import struct
        import termios

        rows, cols, xpixel, ypixel = struct.unpack(
            "HHHH", fcntl.ioctl(sys.__stdout__.fileno(), termios.TIOCGWINSZ, b"\0" * 8))
        if rows and cols and xpixel and ypixel:
            return xpixel // cols, ypixel // rows
    except Exception:
        pass
    return None


def current_choice() -> str:
    """The effective choice (after prepare)."""
    return _state["choice"] or "auto"


def describe() -> str:
    """The choice as a person needs it: for "auto", also what the terminal probe settled on."""
    choice = current_choice()
    if choice != "auto":
        return choice
    try:
        from textual_image import renderable
        from textual_image.renderable import halfcell, sixel, tgp, unicode

        found = {tgp.Image: "kitty", sixel.Image: "sixel", halfcell.Image: "halfcell",
                 unicode.Image: "unicode"}.get(renderable.Image, "unknown")
    except Exception:  # the library moved things around: the setting alone still says something
        return choice
    return f"auto: {found} (force another with --graphics)"


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
