"""Choosing the picture widget: textual-image's terminal probe stays off the screen (its warnings go
to the log file), and with a textual-image that probes only on request, an explicit --graphics never
probes at all."""

from __future__ import annotations

import logging
import sys
import types
from typing import NamedTuple

import pytest
from paths_support import make_paths

from picotui.logs import setup_logging
from picotui.ui import graphics


@pytest.fixture
def fresh_choice():
    saved = dict(graphics._state)
    graphics._state.update(choice=None, widget=None)
    yield
    graphics._state.update(saved)


def test_probe_warnings_go_to_the_log_file_not_the_terminal(tmp_path, capfd, restore_logger):
    paths = make_paths(tmp_path)
    setup_logging(paths)
    graphics.route_library_logs()
    try:
        raise TimeoutError("no answer from the terminal")
    except TimeoutError as exc:  # what textual-image logs when a terminal does not answer its query
        logging.getLogger("textual_image._terminal").warning(
            "Failed to get cell size via escape sequence, assuming VT340 sizes", exc_info=exc)
    for handler in logging.getLogger("picotui").handlers:
        handler.flush()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    logged = paths.log_file.read_text()
    assert "assuming VT340 sizes" in logged and "TimeoutError: no answer from the terminal" in logged


def test_the_installed_textual_image_gives_the_widget_asked_for(fresh_choice):
    from textual_image import widget as tiw

    assert graphics.prepare("halfcell") == "halfcell" and graphics.image_widget() is tiw.HalfcellImage
    graphics._state.update(choice=None)
    assert graphics.prepare("none") == "none" and graphics.image_widget() is None


class FakeCellSize(NamedTuple):
    width: int
    height: int


class FakeCapabilities(NamedTuple):
    cell_size: FakeCellSize
    sixel: bool
    tgp: bool


def fake_lazy_textual_image(monkeypatch) -> dict:
    """A textual-image whose import does not probe (select_image_class probes when called): the API
    newer releases offer. Records what picotui asks of it."""
    calls: dict = {"probed": 0, "capabilities": None}
    widget = types.ModuleType("textual_image.widget")
    for name in ("TGPImage", "SixelImage", "HalfcellImage", "UnicodeImage"):
        setattr(widget, name, type(name, (), {}))

    def select_image_class(capabilities=None):
        calls["probed"] += 1
        return widget.SixelImage
    widget.select_image_class = select_image_class
    terminal = types.ModuleType("textual_image._terminal")
    terminal.CellSize, terminal.TerminalCapabilities = FakeCellSize, FakeCapabilities
    terminal.set_terminal_capabilities = lambda caps: calls.update(capabilities=caps)
    package = types.ModuleType("textual_image")
    package.widget, package._terminal = widget, terminal
    monkeypatch.setitem(sys.modules, "textual_image", package)
    monkeypatch.setitem(sys.modules, "textual_image.widget", widget)
    monkeypatch.setitem(sys.modules, "textual_image._terminal", terminal)
    calls["widget"] = widget
    return calls


def test_an_explicit_choice_never_probes_a_lazy_textual_image(monkeypatch, fresh_choice):
    calls = fake_lazy_textual_image(monkeypatch)
    assert graphics.prepare("halfcell") == "halfcell"
    assert graphics.image_widget() is calls["widget"].HalfcellImage
    assert calls["probed"] == 0
    # textual-image is told a cell size up front, so it never asks the terminal once Textual runs
    assert calls["capabilities"].cell_size.width > 0 and not calls["capabilities"].sixel


def test_auto_decides_from_what_the_terminal_is_not_from_textual_images_probe(monkeypatch, fresh_choice):
    """WezTerm answers the kitty graphics query but cannot draw textual-image's kitty pictures: sixel."""
    from picotui.ui import terminal_probe

    calls = fake_lazy_textual_image(monkeypatch)
    wezterm = "\x1bP>|WezTerm 20240203-110809-5046fc22\x1b\\\x1b_Gi=31;OK\x1b\\\x1b[?65;4;6;18;22c"
    monkeypatch.setattr(terminal_probe, "probe", lambda timeout=1.0: (
        terminal_probe.parse_replies(wezterm, {"TERM": "xterm-256color"}), None))
    assert graphics.prepare("auto") == "auto"
    assert calls["probed"] == 0 and graphics.image_widget() is calls["widget"].SixelImage
    assert graphics.describe().startswith("sixel: wezterm 20240203-110809-5046fc22 answers DA1 with sixel")
    lines = dict(graphics.describe_lines())
    assert lines["terminal"] == "wezterm 20240203-110809-5046fc22 [from XTVERSION]"


def test_an_explicit_choice_says_it_was_set(fresh_choice):
    graphics.prepare("halfcell")
    assert graphics.describe().startswith("halfcell (set by --graphics")
    assert "terminal" not in dict(graphics.describe_lines())
