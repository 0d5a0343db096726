"""First-run guidance sits in the empty image pane, never over a picture: snapshots of the first start
(no checkpoints: the demo model's note is in the pane, no toast) and of the same screen once a picture
is drawn (the guidance is gone, nothing covers the picture). Review: the SVGs in __snapshots__/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from paths_support import make_paths
from PIL import Image
from ui_support import wait_for

from picotui.ui import graphics
from picotui.ui.app import PicoApp
from picotui.ui.widgets.image_pane import ImagePane

ROOT = Path("/tmp/picotui-ui-first-run")  # fixed: the guidance shows the models path


@pytest.fixture
def app():
    shutil.rmtree(ROOT, ignore_errors=True)
    saved = dict(graphics._state)
    graphics._state.update(choice=None, widget=None)
    app = PicoApp(make_paths(ROOT), graphics_choice="halfcell", start_engine=False)
    app.animation_level = "none"
    yield app
    graphics._state.update(saved)
    shutil.rmtree(ROOT, ignore_errors=True)


async def _first_start(pilot):
    from textual.widgets import Input, TextArea

    for widget in [*pilot.app.query(TextArea).results(), *pilot.app.query(Input).results()]:
        widget.cursor_blink = False
    await wait_for(pilot, lambda: pilot.app._scanned_once and "chunk" in str(
        pilot.app.query_one("#negative-tokens").render()), 20, "counters and scan")
    # no focus: a prompt's cursor drawn in the blink's "off" phase can stay on screen (see test_ui_snapshots)
    pilot.app.set_focus(None)
    await pilot.pause(0.3)
    assert not pilot.app._notifications, "a toast would sit over the image pane"


def test_first_start_guidance_is_in_the_image_pane(snap_compare, app):
    assert snap_compare(app, terminal_size=(140, 45), run_before=_first_start)


def test_the_guidance_makes_way_for_the_picture(snap_compare, app):
    async def picture(pilot):
        await _first_start(pilot)
        stripes = Image.new("RGB", (64, 64))
        for x in range(64):
            for y in range(64):
                stripes.putpixel((x, y), (x * 4, y * 4, 128))
        pilot.app.query_one(ImagePane).show(stripes, "seed 1 · 64×64 · saved 00001-1.png")
        await pilot.pause(0.3)
        assert not pilot.app.query_one("#image-guide").display
    assert snap_compare(app, terminal_size=(140, 45), run_before=picture)
