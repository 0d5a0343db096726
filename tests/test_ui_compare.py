"""Comparing two history images with real key presses: m marks, c compares; the differing settings are listed
(and only those as differing), space flips between the two in one place, s goes back to side by side."""

from __future__ import annotations

import datetime as dt

from paths_support import make_paths
from PIL import Image
from ui_support import record_notifications, wait_for

from picotui.engine.recipes.infotext import a1111_parameters
from picotui.engine.recipes.output import save_png
from picotui.engine.request import GenerationRequest
from picotui.ui.app import PicoApp
from picotui.ui.screens.compare import CompareScreen
from picotui.ui.screens.history import HistoryScreen
from picotui.ui.widgets.image_pane import ImagePane


def png(paths, colour, **kw):
    request = GenerationRequest(prompt="a corgi", width=64, height=64, **kw)
    text = a1111_parameters(request, model_name="demo", model_hash=None)
    return save_png(Image.new("RGB", (64, 64), colour), paths.outputs, request, text, today=dt.date(2024, 5, 1))


async def test_mark_two_compare_and_flip(tmp_path):
    paths = make_paths(tmp_path)
    png(paths, (255, 0, 0), seed=1, cfg=5.0, steps=20)
    png(paths, (0, 0, 255), seed=1, cfg=9.0, steps=30)
    png(paths, (0, 255, 0), seed=2, cfg=9.0, steps=30)
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    said = record_notifications(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("c")  # nothing marked: says how
        assert any("Mark two images with m" in m for m in said)
        await pilot.press("down", "m", "down", "m")  # the 2nd and the 3rd newest: blue (cfg 9) and red (cfg 5)
        await pilot.pause()
        assert app.screen.marked == [1, 2]
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        diff = str(app.screen.query_one("#compare-diff").render())
        lines = diff.splitlines()
        assert lines[0] == "Differs:"
        differing = [line.split()[0] for line in lines[1:] if line.startswith("  ")]
        assert differing == ["steps", "CFG"]  # seed, prompt, size are the same: not listed as differing
        assert "30  ↔  20" in diff and "9  ↔  5" in diff
        a, b = app.screen.query_one("#compare-a", ImagePane), app.screen.query_one("#compare-b", ImagePane)
        assert a.image.getpixel((0, 0)) == (0, 0, 255) and b.image.getpixel((0, 0)) == (255, 0, 0)
        await pilot.press("space")  # flip: one place, A
        await pilot.pause()
        assert not b.display and a.image.getpixel((0, 0)) == (0, 0, 255) and a.caption.startswith("A:")
        await pilot.press("space")  # B in the same place
        await pilot.pause()
        assert a.image.getpixel((0, 0)) == (255, 0, 0) and a.caption.startswith("B:")
        await pilot.press("s")
        await pilot.pause()
        assert b.display and b.image.getpixel((0, 0)) == (255, 0, 0)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("up", "up", "m")  # a third mark drops the oldest
        await wait_for(pilot, lambda: app.screen.marked == [2, 0], 5, "the marks")
