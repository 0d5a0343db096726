"""The app against the real engine on the demo model: generate, progress, preview, cancel, history,
failures, quitting mid-job. Real key presses; small, fast jobs (256×256, a few steps)."""

from __future__ import annotations

import pytest
from textual.widgets import Checkbox, Input, Static

from picotui.ui.app import PicoApp
from picotui.ui.screens.history import HistoryScreen
from picotui.ui.widgets.image_pane import ImagePane
from ui_support import make_paths, wait_for, write_settings


@pytest.fixture
def paths(tmp_path, cache_dir):
    return make_paths(tmp_path, cache=cache_dir)  # the session's cache: the demo model is built once


def text_of(app, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def count(app, name: str) -> int:
    return app.events_seen.count(name)


async def test_generate_then_restore_from_history(paths):
    write_settings(paths, seed_locked=True, seed=42, width=256, height=256, steps=3, prompt="a red boat")
    app = PicoApp(paths, graphics_choice="halfcell")
    async with app.run_test(size=(140, 45)) as pilot:
        pane = app.query_one(ImagePane)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: count(app, "Finished") == 1 or count(app, "Failed"), 120, "the first image")
        assert count(app, "Failed") == 0, [n.message for n in app._notifications]
        assert count(app, "Step") == 3 and "Loading" in app.events_seen
        assert pane.version >= 4  # three previews, then the final image
        assert pane.image.size == (256, 256)
        assert "seed 42" in pane.caption
        assert text_of(app, "#progress-text").startswith("done")
        assert "engine: idle" in text_of(app, "#status-line") and "picotui-demo" in text_of(app, "#status-line")

        # change the form, then restore the image's settings from history
        app.query_one("#seed", Input).value = "7"
        app.query_one("#steps", Input).value = "9"
        await pilot.press("ctrl+l")  # unlock
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        detail = text_of(app.screen, "#history-detail")
        assert "Differs from your form" in detail and "seed: 42 → yours 7" in detail and "steps: 3 → yours 9" in detail
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, HistoryScreen)
        assert app.query_one("#seed", Input).value == "42" and app.query_one("#steps", Input).value == "3"
        assert app.query_one("#seed-lock", Checkbox).value is True


async def test_cancel_with_escape_then_queue_and_fail(paths):
    write_settings(paths, seed_locked=True, seed=1, width=256, height=256, steps=60)
    app = PicoApp(paths, graphics_choice="halfcell")
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: count(app, "Step") >= 1, 120, "the first step")
        await pilot.press("escape")
        await wait_for(pilot, lambda: count(app, "Cancelled") == 1, 60, "the cancel")
        assert count(app, "Finished") == 0 and count(app, "Step") < 60
        assert text_of(app, "#progress-text") == "cancelled"
        assert not list(paths.outputs.rglob("*.png"))  # nothing half-written

        # a missing checkpoint fails with the engine's one line; the form keeps its values
        app.query_one("#form").set_model("checkpoint", "no-such-model")
        app.query_one("#steps", Input).value = "2"
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: count(app, "Failed") == 1, 60, "the failure")
        messages = [n.message for n in app._notifications]
        assert any("no-such-model" in m for m in messages), messages
        request = app.query_one("#form").request()
        assert (request.checkpoint, request.steps, request.seed) == ("no-such-model", 2, 1)


async def test_quit_while_generating_cancels_cleanly(paths):
    write_settings(paths, seed_locked=True, seed=3, width=256, height=256, steps=80)
    app = PicoApp(paths, graphics_choice="halfcell")
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: count(app, "Step") >= 1, 120, "the first step")
        worker = app.worker
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert not worker._thread.is_alive()
    assert count(app, "Finished") == 0
    assert not list(paths.outputs.rglob("*.png")) and not list(paths.outputs.rglob("*.tmp"))
