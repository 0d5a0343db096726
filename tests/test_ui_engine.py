"""The app against the real engine on the demo model: the form filled with key presses, generate,
progress and loading text, preview, cancel (also pressed many times fast), queueing, failures, saving
again after a full disk, engine details, quitting mid-job. Small, fast jobs (256×256, a few steps)."""

from __future__ import annotations

import errno
import re
import threading
import types

import pytest
from paths_support import make_paths
from textual.widgets import Checkbox, Input, Static
from ui_support import EngineEvents, record_notifications, spy_calls, text_of, type_into, wait_for, write_settings

from picotui.engine.recipes import output
from picotui.engine.recipes.metadata import read_recipe
from picotui.ui.app import PicoApp
from picotui.ui.screens.engine_details import EngineDetailsModal
from picotui.ui.screens.history import HistoryScreen
from picotui.ui.screens.image_view import ImageModal
from picotui.ui.widgets.image_pane import ImagePane


@pytest.fixture
def paths(tmp_path, cache_dir):
    return make_paths(tmp_path, cache=cache_dir)  # the session's cache: the demo model is built once


def spy_progress(app) -> list[str]:
    """Every progress line shown while loading and stepping (they change faster than a test polls)."""
    seen = []
    for name in ("_on_loading", "_on_step"):
        handler = getattr(app, name)

        def spy(event, handler=handler):
            handler(event)
            seen.append(text_of(app, "#progress-text"))
        setattr(app, name, spy)
    return seen


async def ready(pilot) -> None:
    await wait_for(pilot, lambda: text_of(pilot.app, "#progress-text").startswith("ready"), 120, "the engine")


async def test_fill_the_form_with_keys_generate_and_restore(paths):
    app = PicoApp(paths, graphics_choice="halfcell")
    said = record_notifications(app)
    events = EngineEvents()
    async with app.run_test(size=(140, 45), message_hook=events.hook) as pilot:
        progress = spy_progress(app)
        await ready(pilot)  # the start-up load ends as "ready", not stuck at "loading: importing torch"
        assert any(line.startswith("loading: importing torch") for line in progress)
        app.query_one("#prompt").focus()
        await pilot.press("f7", *"a red boat")
        for field_id, value in (("steps", "3"), ("width", "256"), ("height", "256"), ("seed", "42")):
            await type_into(pilot, field_id, value)
        await pilot.press("ctrl+l")  # lock: this job uses 42
        pane = app.query_one(ImagePane)
        pictures = spy_calls(pane, "show")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert not any("Queued" in m for m in said)  # nothing else runs: it starts, not queues
        await wait_for(pilot, lambda: events.count("Finished") == 1 or events.count("Failed"), 120, "the image")
        assert events.count("Failed") == 0, said
        steps = [line for line in progress if "step" in line]
        assert len(steps) == 3 and all(re.fullmatch(r"step [123]/3 · [\d.]+ it/s · [\d.]+ s/step · UNet 2/step · "
                                                    r"ETA [\d.]+s", s) for s in steps)  # CFG 7: 2 UNet passes a step
        assert len(pictures) >= 4  # three previews, then the final image
        assert pane.image.size == (256, 256) and "seed 42" in pane.caption
        assert text_of(app, "#progress-text").startswith("done")
        assert re.search(r" · [\d.]+ s/step, 6 UNet evals$", text_of(app, "#progress-text"))  # what it cost
        assert "engine: idle" in text_of(app, "#status-line") and "picotui-demo" in text_of(app, "#status-line")
        await wait_for(pilot, lambda: "6 UNet evaluations (2 a step)" in text_of(app, "#status-line"), 10,
                       "the status line's cost")

        await pilot.press("ctrl+f")  # the image full screen (what a compact terminal relies on)
        await pilot.pause()
        assert isinstance(app.screen, ImageModal) and app.screen.image is pane.image
        await pilot.press("escape", "f3")  # engine details: the memory mode and speed path, and why
        await pilot.pause()
        assert isinstance(app.screen, EngineDetailsModal)
        details, status = text_of(app.screen, "#engine-details"), app.engine_status
        assert status.memory_mode and status.detail["memory_reason"] and status.detail["speed_reason"]
        assert f"memory mode {status.memory_mode}\n  why       {status.detail['memory_reason']}" in details
        assert f"speed path  {status.speed_path}\n  why       {status.detail['speed_reason']}" in details
        assert str(paths.log_file) in details
        assert re.search(r"cost +[\d.]+ s/step, 6 UNet evaluations \(2 a step\)", details)
        await pilot.press("escape")

        # change the form, then restore the image's settings from history
        await type_into(pilot, "seed", "7")
        await type_into(pilot, "steps", "9")
        await pilot.press("ctrl+l")  # unlock
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        detail = text_of(app.screen, "#history-detail")
        assert "Differs from your form" in detail and "seed: 42 → yours 7" in detail and "steps: 3 → yours 9" in detail
        assert app.screen.query_one("#history-image", ImagePane).image is pane.image  # drawn beside it
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, HistoryScreen)
        assert app.query_one("#seed", Input).value == "42" and app.query_one("#steps", Input).value == "3"
        assert app.query_one("#seed-lock", Checkbox).value is True
        assert app.query_one("#prompt").text == "a red boat"


async def test_queue_rapid_escapes_cancel_and_failure(paths):
    write_settings(paths, seed_locked=True, seed=1, width=256, height=256, steps=150)
    app = PicoApp(paths, graphics_choice="halfcell")
    said = record_notifications(app)
    events = EngineEvents()
    async with app.run_test(size=(140, 45), message_hook=events.hook) as pilot:
        await ready(pilot)
        # Hold the engine's events back on demand: the app then still shows job 1 while the worker has
        # moved on, which is what a late (stale) escape looks like.
        gate, ended = threading.Event(), []
        gate.set()
        deliver = app.worker.on_event

        def held(event):
            gate.wait()
            if type(event).__name__ in ("Cancelled", "Finished", "Failed"):
                ended.append((type(event).__name__, event.job_id))
            deliver(event)
        app.worker.on_event = held

        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: events.count("Step") >= 1, 120, "job 1's first step")
        await type_into(pilot, "steps", "30")  # long enough to be running when the late escapes come
        await pilot.press("ctrl+g")  # busy: queued, and the queue says so
        await pilot.pause()
        assert any("Queued job 2" in m for m in said), said
        assert text_of(app, "#queue") == "running · 1 queued"

        gate.clear()
        await pilot.press("escape")  # cancels job 1 (the one on screen)
        await wait_for(pilot, lambda: app.worker.running_job == 2, 60, "the worker to move on to job 2")
        await pilot.press("escape", "escape", "escape")  # late: the screen still shows job 1
        gate.set()
        await wait_for(pilot, lambda: ("Finished", 2) in ended or ("Cancelled", 2) in ended, 120, "job 2")
        assert ended == [("Cancelled", 1), ("Finished", 2)]
        await pilot.pause()
        pane = app.query_one(ImagePane)
        final = pane.image
        assert final.size == (256, 256) and text_of(app, "#queue") == ""

        # cancel with a finished image on screen: the noisy preview goes, the last image comes back
        await type_into(pilot, "steps", "150")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.last_step.get(3, (0, 0))[0] >= 1, 120, "job 3's first step")
        assert pane.image is not final  # the preview
        await pilot.press("escape")
        await wait_for(pilot, lambda: events.count("Cancelled") == 2, 60, "the cancel")
        assert re.fullmatch(r"job 3 cancelled at step \d+/150", text_of(app, "#progress-text"))
        assert pane.image is final and "seed 1" in pane.caption
        assert not [p for p in paths.outputs.rglob("*.png")][1:]  # only job 2's image was written

        # a missing checkpoint fails with the engine's one line, kept in the progress line; the form keeps its values
        app.query_one("#form").set_model("checkpoint", "no-such-model")
        await type_into(pilot, "steps", "2")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: events.count("Failed") == 1, 60, "the failure")
        assert any("no-such-model" in m for m in said), said
        assert text_of(app, "#progress-text").startswith("failed: ") and "no-such-model" in text_of(app, "#progress-text")
        request = app.query_one("#form").request()
        assert (request.checkpoint, request.steps, request.seed) == ("no-such-model", 2, 1)


async def test_save_again_after_a_full_disk(paths, monkeypatch):
    write_settings(paths, seed_locked=True, seed=9, width=256, height=256, steps=2)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(output, "tempfile", types.SimpleNamespace(mkstemp=disk_full))
    app = PicoApp(paths, graphics_choice="halfcell")
    said = record_notifications(app)
    events = EngineEvents()
    async with app.run_test(size=(140, 45), message_hook=events.hook) as pilot:
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: events.count("Finished") == 1 or events.count("Failed"), 120, "the image")
        assert "NOT SAVED" in text_of(app, "#progress-text")
        assert any("ctrl+t then s" in m for m in said), said
        assert not list(paths.outputs.rglob("*.png"))
        await pilot.press("ctrl+t")
        await pilot.pause()
        await pilot.press("s")  # still full: says so, keeps the image
        await pilot.pause()
        assert any(m.startswith("Still not saved") for m in said)
        monkeypatch.undo()  # space freed
        await pilot.press("s")
        await pilot.pause()
        entry = app.history[0]
        assert entry.path is not None and entry.path.is_file() and entry.save_error is None
        assert read_recipe(entry.path).request.seed == 9
        assert str(entry.path.name) in str(app.screen.query_one("#history-detail", Static).render())
        assert not [p for p in paths.outputs.rglob(".*") if p.is_file()]  # no temp or marker files


async def test_quit_while_generating_cancels_cleanly(paths):
    write_settings(paths, seed_locked=True, seed=3, width=256, height=256, steps=80)
    app = PicoApp(paths, graphics_choice="halfcell")
    events = EngineEvents()
    async with app.run_test(size=(140, 45), message_hook=events.hook) as pilot:
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: events.count("Step") >= 1, 120, "the first step")
        worker = app.worker
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert not worker._thread.is_alive()
    assert events.count("Finished") == 0
    # what output.save_png leaves while it works: .picotui-*.part temp files and .NNNNN.reserved markers
    leftovers = [p for pattern in ("*.png", ".picotui-*.part", ".*.reserved") for p in paths.outputs.rglob(pattern)]
    assert not leftovers


async def test_no_graphics_and_resizing_while_it_generates(paths):
    """A terminal that draws no pictures (graphics: none), resized to tiny and back while steps arrive:
    the job finishes, is saved, and the pane describes the image in words."""
    write_settings(paths, seed_locked=True, seed=11, width=256, height=256, steps=6)
    app = PicoApp(paths, graphics_choice="none")
    events = EngineEvents()
    async with app.run_test(size=(140, 45), message_hook=events.hook) as pilot:
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: events.count("Step") >= 1, 120, "the first step")
        for size in ((60, 20), (20, 8), (95, 28), (140, 45)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
        await wait_for(pilot, lambda: events.count("Finished") == 1 or events.count("Failed"), 120, "the image")
        assert events.count("Failed") == 0
        assert app.history[0].path.is_file()
        assert str(app.query_one("#image-none", Static).render()) == "image 256×256 (graphics: none)"
        assert text_of(app, "#progress-text").startswith("done")
