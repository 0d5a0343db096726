"""The X/Y/Z plot screen with real key presses: typing axes (count, estimate, one-line errors, the confirm
step), a plot on the demo model filling in, moving through cells, ctrl+f, restoring a cell into the form,
and cancel mid-grid keeping the finished cells."""

from __future__ import annotations

import pytest
from paths_support import make_paths
from textual.widgets import Input
from ui_support import record_notifications, wait_for, write_settings

from picotui.engine.events import Finished
from picotui.engine.recipes.metadata import read_recipe
from picotui.ui.app import PicoApp
from picotui.ui.screens.image_view import ImageModal
from picotui.ui.screens.plot import PlotGrid, PlotScreen


@pytest.fixture
def paths(tmp_path, cache_dir):
    paths = make_paths(tmp_path, cache=cache_dir)
    write_settings(paths, seed_locked=True, checkpoint="demo", steps=2, width=256, height=256, seed=5,
                   sampler="Euler", negative_prompt="")
    return paths


def text_of(app, selector: str) -> str:
    """What a Static of the active screen shows (the app's own queries look at the main screen)."""
    return str(app.screen.query_one(selector).render())


async def type_into(pilot, field_id: str, text: str) -> None:
    pilot.app.screen.query_one(f"#{field_id}").focus()
    await pilot.press("ctrl+a", "ctrl+k", *text)


async def open_plot(pilot, x="", y=""):
    await pilot.press("f4")
    await pilot.pause()
    assert isinstance(pilot.app.screen, PlotScreen)
    if x:
        await type_into(pilot, "plot-x", x)
    if y:
        await type_into(pilot, "plot-y", y)
    await pilot.pause()


async def test_typing_axes_shows_count_estimate_and_errors(paths):
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    said = record_notifications(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_plot(pilot, "CFG scale: 4-")
        assert text_of(app, "#plot-summary") == "X axis: '4-' is not a range A1111 understands: write 1-5, " \
                                                "1-10 (+2) or 1.0-2.0 [5]."
        await type_into(pilot, "plot-x", "CFG scale: 4-12 [3]")
        await type_into(pilot, "plot-y", "Steps: 2, 4")
        await pilot.pause()
        summary = text_of(app, "#plot-summary")
        assert summary.startswith("6 images on a 3x2 grid, 18 steps in all · time unknown")
        from PIL import Image

        from picotui.engine.request import GenerationRequest
        from picotui.ui.engine_link import EngineMessage

        # an image of this session: 9 steps of 256x256 denoised in 3 s, so 3 it/s
        made = GenerationRequest(steps=9, width=256, height=256, seed=1)
        app.post_message(EngineMessage(Finished(7, Image.new("RGB", (256, 256)), None, made, "", {"denoise": 3.0})))
        await pilot.pause()
        await type_into(pilot, "plot-y", "Steps: 3, 6")
        await pilot.pause()
        assert "about 9 s (measured 3.00 it/s)" in text_of(app, "#plot-summary")  # 27 steps at 3 it/s

        await type_into(pilot, "plot-y", "Steps: 1-4")  # 12 images: no confirm needed; 16 asks
        await type_into(pilot, "plot-x", "CFG scale: 4-12 [4]")
        await pilot.press("enter")
        await pilot.pause()
        assert "enter again to start" in text_of(app, "#plot-summary") and app.plot is None
        await pilot.press("enter")  # confirmed: it tries to start (no engine in this test)
        await pilot.pause()
        assert any("engine is not running" in m for m in said)

        await pilot.press("f1")
        await pilot.pause()
        assert "Example 1" in text_of(app, "#help-body") and "Example 2" in text_of(app, "#help-body")


async def test_plot_fills_in_moves_and_restores_a_cell(paths):
    app = PicoApp(paths, graphics_choice="halfcell")
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await open_plot(pilot, "CFG scale: 3, 6, 9", "Steps: 2, 3")
        app.screen.query_one("#plot-y", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.plot is not None and app.focused is app.screen.query_one(PlotGrid)
        grid = app.screen.query_one(PlotGrid)
        shown = []  # every picture the grid pane has held (kept, so no two share an id)
        await wait_for(pilot, lambda: shown.append(grid.image) or not app.plot.running, 180, "the plot")
        assert app.plot.grid.finished == 6, said
        assert len({id(image) for image in shown if image is not None}) >= 3  # redrawn as cells came in
        assert app.plot.grid_path.is_file() and "grid saved" in text_of(app, "#plot-progress")
        assert grid.image.size[0] > 3 * 256
        assert len([e for e in app.history if e.session]) == 6  # every cell in the history
        assert app.measured_speed is not None and app.measured_speed[1] == 256 * 256  # the next estimate's pace

        await pilot.press("right", "down")  # cell (1, 1): CFG 6, 3 steps
        assert "cell 5/6: CFG Scale: 6 · Steps: 3 · made" in text_of(app, "#plot-cell")
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert isinstance(app.screen, ImageModal)
        assert app.screen.image is app.plot.grid.results[4].image
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("enter")  # restore that cell into the form
        await pilot.pause()
        assert not isinstance(app.screen, PlotScreen)
        assert app.query_one("#cfg", Input).value == "6" and app.query_one("#steps", Input).value == "3"
        assert app.query_one("#seed", Input).value == "5"
        assert read_recipe(app.plot.grid.results[4].path).request.cfg == 6.0

        await pilot.press("f4")  # the plot screen shows the finished plot again
        await pilot.pause()
        assert app.screen.query_one("#plot-x", Input).value == "CFG scale: 3, 6, 9"
        assert app.screen.query_one(PlotGrid).image is not None


async def test_escape_mid_grid_cancels_and_keeps_finished_cells(paths):
    app = PicoApp(paths, graphics_choice="none")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_plot(pilot, "Steps: 2, 3, 4", "CFG scale: 4, 5")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.plot.grid.finished >= 2, 180, "two cells")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.plot.running, 60, "the cancel")
        made = app.plot.grid.images()
        assert 2 <= len(made) < 6 and all(app.plot.grid.results[i].path.is_file() for i in made)
        assert text_of(app, "#plot-progress").startswith(f"cancelled: {len(made)}/6 images")
        assert app.plot.grid_path.is_file()  # the grid of the finished cells
        await pilot.press("escape")  # nothing runs now: back to the main screen
        await pilot.pause()
        assert not isinstance(app.screen, PlotScreen)


async def test_a_plot_goes_on_when_its_screen_is_closed(paths):
    from picotui.ui.widgets.progress import ProgressPanel

    app = PicoApp(paths, graphics_choice="none")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_plot(pilot, "Steps: 2-9")
        await pilot.press("enter")
        await pilot.press("f4")  # back to the form; the plot goes on
        await pilot.pause()
        assert not isinstance(app.screen, PlotScreen) and app.plot.running
        await wait_for(pilot, lambda: not app.plot.running, 120, "the plot")
        assert app.plot.grid_path.is_file() and app.plot.grid.finished == 8
        line = str(app.query_one(ProgressPanel).query_one("#progress-text").render())
        assert line.startswith("plot: done: 8/8 images") and str(app.plot.grid_path) in line
