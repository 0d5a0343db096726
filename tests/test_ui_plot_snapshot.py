"""Snapshot of the plot screen with a filled 3x2 grid (CFG scale x Sampler), drawn in half-blocks.

Deterministic: no engine; the cells are plain colour squares put into the app's plot as the worker's
Finished events would, the time taken fixed. Update with `--snapshot-update` after an intended change, and
look at the SVG before committing it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from paths_support import make_paths
from ui_support import wait_for, write_settings

from picotui.engine.plots.run import CellResult
from picotui.ui.app import PicoApp

ROOT = Path("/tmp/picotui-plot-snapshot")  # fixed: the screen shows the grid's path


@pytest.fixture
def paths():
    shutil.rmtree(ROOT, ignore_errors=True)
    paths = make_paths(ROOT)
    write_settings(paths, seed_locked=True, checkpoint="demo", steps=20, width=512, height=512, seed=1234,
                   sampler="Euler a")
    yield paths
    shutil.rmtree(ROOT, ignore_errors=True)


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["wide", "compact"])
def test_filled_3x2_grid(snap_compare, paths, size):
    from PIL import Image

    from picotui.ui.plot_link import PlotSession
    from picotui.ui.screens.plot import PlotScreen

    app = PicoApp(paths, graphics_choice="halfcell", start_engine=False)
    app.animation_level = "none"

    async def fill(pilot):
        await wait_for(pilot, lambda: pilot.app._scanned_once, 20, "the scan")
        texts = ("CFG scale: 4, 8, 12", "Sampler: Euler a, DPM++ 2M Karras", "")
        plan = app.plan_plot(*texts)
        session = PlotSession(plan, texts, started=0.0, ended=83.0)
        for cell in plan.cells:
            colour = (60 + 60 * cell.ix, 40 + 120 * cell.iy, 200 - 50 * cell.ix)
            session.grid.results[cell.index] = CellResult(Image.new("RGB", (512, 512), colour), None, "", cell.request)
        session.grid_path = ROOT / "outputs" / "grids" / "2026-11-29" / "00001-1234.png"
        app.plot = session
        app.clear_notifications()
        await pilot.press("f4")
        await pilot.pause()
        assert isinstance(app.screen, PlotScreen)
        app.screen.query_one("#plot-grid").focus()
        await pilot.press("right", "down")  # the chosen cell outlined: CFG 8, DPM++ 2M Karras
        for widget in app.screen.query("Input").results():
            widget.cursor_blink = False
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=fill)
