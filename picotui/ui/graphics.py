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
For "auto", picotui first asks the terminal what it *is* (picotui.ui.terminal_probe: XTVERSION, DA1/DA2,
the environment, tmux's version and allow-passthrough) and picks the protocol from a decision table
(picotui.ui.terminal_detect), because answering textual-image's graphics query is not enough (kitty
< 0.28, WezTerm and Konsole answer the kitty query but cannot draw textual-image's kitty pictures).
Either way the probe's own log lines (a timeout warning with a traceback, on terminals that do not
answer) go to picotui's log file, never raw onto the terminal.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("picotui.ui")

_state: dict = {"choice": None, "widget": None, "decision": None}
DEFAULT_PREVIEW_RATE = 200_000  # bytes per second for previews: fits a home upload link over SSH
_preview: dict = {"rate": DEFAULT_PREVIEW_RATE, "budget": None}


def set_preview_rate(value) -> str | None:
    """The preview budget in bytes per second ('200K', '1M', 0 = no limit); a one-line problem or None."""
    from picotui.ui.image_widgets import parse_rate

    if value in (None, ""):
        return None
    rate = parse_rate(value)
    if rate is None:
        return f"Ignored preview rate {value!r}: give bytes per second like 200K, 1M or 0 (no limit)."
    _preview.update(rate=rate, budget=None)
    return None


def preview_budget():
    """The one PreviewBudget of this process (None: no limit)."""
    from picotui.ui.image_widgets import PreviewBudget

    if not _preview["rate"]:
        return None
    if _preview["budget"] is None:
        _preview["budget"] = PreviewBudget(_preview["rate"])
    return _preview["budget"]


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


def prepare(choice: str | None, *, probe: bool = True) -> str:
    """Pick the widget class: for "auto" from what the terminal is (probing it first, unless `probe` is
    False, as in tests). Imports textual-image (0.12 probes then too). Returns the effective choice."""
    choice = (choice or "auto").lower()
    if _state["choice"] == choice:
        return choice
    route_library_logs()
    decision = None
    if choice == "auto":
        decision = detect(probe)
    widget = None
    if choice != "none":
        try:
            widget = _widget_for(decision.protocol if decision else choice, decision, explicit=decision is None)
        except Exception as exc:  # no usable terminal (closed stdout...): draw no pictures rather than crash
            log.warning("textual-image unavailable (%s); images are not drawn", exc)
            choice, widget = "none", None
    _state.update(choice=choice, widget=widget, decision=decision)
    log.info("graphics: %s (%s)%s", choice, getattr(widget, "__name__", "no pictures"),
             f": {decision.detected()}: {decision.reason}" if decision else "")
    return choice


def detect(probe: bool = True):
    """The decision for this terminal (picotui.ui.terminal_detect), probing it unless told not to."""
    from picotui.ui import terminal_detect, terminal_probe

    if not probe:
        return terminal_detect.decide(terminal_detect.Answers(is_tty=False))
    answers, cell = terminal_probe.probe()
    if cell:
        _state["cell"] = cell
        _preset_cell_size(*cell)
    return terminal_detect.decide(answers)


def _widget_for(protocol: str, decision, explicit: bool):
    from textual_image import widget as tiw  # 0.12: textual-image's own terminal probe runs here, once

    lazy = hasattr(tiw, "select_image_class")
    if lazy:
        _tell_cell_size_without_probing()
    if protocol == "kitty":
        return _kitty_widget(tiw, passthrough=bool(decision and decision.passthrough))
    if protocol == "sixel":
        return _sixel_widget(tiw)
    return {"halfcell": tiw.HalfcellImage, "unicode": tiw.UnicodeImage}.get(protocol) \
        or (tiw.select_image_class() if lazy else tiw.Image)


def _kitty_widget(tiw, passthrough: bool):
    """textual-image's kitty widget with picotui's sending (tmux passthrough, own-size images, counted);
    textual-image's own class if its internals are not the ones we know."""
    try:
        from textual_image.renderable.tgp import Image as Renderable
        from textual_image.widget._base import Image as BaseImage

        from picotui.ui.image_widgets import tgp_class

        if not all(hasattr(Renderable, name) for name in ("_send_image_to_terminal", "_create_virtual_placement")):
            raise AttributeError("textual-image's kitty renderable changed")
        renderable = tgp_class(Renderable, passthrough)
        return type("PicoTGPImage", (BaseImage,), {}, Renderable=renderable)
    except Exception as exc:
        log.info("kitty pictures drawn by textual-image as it is (%s)", exc)
        return tiw.TGPImage


def _sixel_widget(tiw):
    """textual-image's sixel widget with its colour registers defined up front (no speckled top band in
    xterm); textual-image's own class if its internals are not the ones we know."""
    try:
        from picotui.ui.image_widgets import sixel_class

        return sixel_class(tiw.SixelImage)
    except Exception as exc:
        log.info("sixel pictures drawn by textual-image as it is (%s)", exc)
        return tiw.SixelImage


def _preset_cell_size(width: int, height: int) -> None:
    """Hand textual-image the cell size the terminal just told us, so it never asks (0.12 caches it)."""
    try:
        from textual_image import _terminal

        _terminal.get_cell_size._result = _terminal.CellSize(width, height)
    except Exception:
        pass


def _tell_cell_size_without_probing() -> None:
    """Newer textual-image asks the terminal for its cell size on first use, which would happen while
    Textual owns stdin. Hand it the size the tty reports (no query) so it never has to ask."""
    try:
        from textual_image import _terminal

        width, height = _state.get("cell") or _tty_cell_size() or (10, 20)
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


def decision():
    """The terminal_detect.Decision behind "auto" (None for an explicit choice)."""
    return _state.get("decision")


def describe() -> str:
    """The choice as a person needs it: for "auto", what was detected and why that protocol."""
    choice = current_choice()
    found = decision()
    if choice != "auto" or found is None:
        return f"{choice} (set by --graphics / PICOTUI_GRAPHICS / config)" if choice != "auto" else choice
    return f"{found.protocol}: {found.reason} (force another with --graphics)"


def check_lines(choice: str | None) -> list[str]:
    """`picotui --check`: the detected terminal and the protocol pictures would use (no textual-image import)."""
    import os

    choice = (choice or os.environ.get("PICOTUI_GRAPHICS") or "auto").lower()
    found = detect()
    lines = [f"terminal: {found.detected()}"]
    if choice == "auto":
        lines.append(f"graphics: {found.protocol} ({found.reason})")
    else:
        lines.append(f"graphics: {choice} (set by --graphics / PICOTUI_GRAPHICS; auto would pick {found.protocol})")
    if found.hint:
        lines.append(f"tmux: {found.hint}")
    return lines


def describe_lines() -> list[tuple[str, str]]:
    """F3's graphics lines: (label, text)."""
    from picotui.ui.image_widgets import meter

    found = decision()
    lines = [("graphics", describe())]
    if found is not None:
        lines.append(("terminal", found.detected()))
        if found.hint:
            lines.append(("  tmux", found.hint))
    lines.append(("bytes", meter.summary()))
    budget = preview_budget()
    rate = f"{_preview['rate'] / 1000:g} KB/s" if _preview["rate"] else "no limit"
    dropped = f", {budget.dropped} preview frames skipped to stay within it" if budget and budget.dropped else ""
    lines.append(("previews", f"budget {rate} (--preview-rate){dropped}"))
    return lines


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
