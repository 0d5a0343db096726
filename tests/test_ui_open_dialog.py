"""The open dialog: Tab completes a path typed for real, the outputs folder is browsable, and a path
pasted or dropped onto the terminal (quoted, a file:// URL, escaped spaces) opens."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from paths_support import make_paths
from PIL import Image
from textual.widgets import DirectoryTree, Input, Static

from picotui.engine.recipes.output import save_png
from picotui.engine.request import GenerationRequest
from picotui.ui.app import PicoApp
from picotui.ui.screens.open_png import OpenPngModal, clean_pasted


@pytest.mark.parametrize("pasted, path", [
    ("'/tmp/my pics/a.png'", "/tmp/my pics/a.png"),
    ('"/tmp/my pics/a.png"\n', "/tmp/my pics/a.png"),
    ("file:///tmp/my%20pics/a.png", "/tmp/my pics/a.png"),
    ("/tmp/my\\ pics/a\\ \\(1\\).png", "/tmp/my pics/a (1).png"),
    ("  /tmp/a.png  ", "/tmp/a.png"),
])
def test_pasted_paths(pasted, path):
    assert clean_pasted(pasted) == path


async def open_dialog(pilot):
    await pilot.press("ctrl+p", *"Open PNG")  # the palette's fuzzy match still finds it by its old name
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause()


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path: the test types it key by key (pytest's tmp_path is ~60 keys)."""
    with tempfile.TemporaryDirectory(prefix="pt") as folder:
        yield Path(folder)


async def test_tab_completes_and_a_dropped_path_opens(short_tmp):
    paths = make_paths(short_tmp)
    saved = save_png(Image.new("RGB", (64, 64)), paths.outputs, GenerationRequest(seed=11, steps=9), "castle one")
    castle = saved.rename(paths.outputs / "castle at dawn.png")
    (paths.outputs / "castles").mkdir()
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await open_dialog(pilot)
        assert isinstance(app.screen, OpenPngModal)
        field = app.screen.query_one("#open-path", Input)
        assert app.screen.query_one("#open-tree", DirectoryTree).path == paths.outputs  # browsing starts there
        await pilot.press(*f"{paths.outputs}/ca", "tab")
        await pilot.pause()
        assert field.value == f"{paths.outputs}/castle"  # what "castle at dawn.png" and "castles/" share
        candidates = str(app.screen.query_one("#open-candidates", Static).render())
        assert "castles/" in candidates and castle.name in candidates
        assert field.has_focus  # Tab completed instead of moving on
        field.value = ""
        await pilot.press(*f"{paths.outputs}/castle ", "tab")
        await pilot.pause()
        assert field.value == str(castle)  # the one match, whole
        field.value = f"'file://{castle}'"  # what a file manager drops onto the terminal
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, OpenPngModal)
        assert app.query_one("#form").request().steps == 9
