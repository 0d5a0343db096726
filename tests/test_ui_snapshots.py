"""Snapshot tests (pytest-textual-snapshot): main screen (defaults, a filled form, 80×24), model
browser (empty, and with usable, unusable and hashed files), F1 help, the keys screen, engine
details, history, and a job running, jobs queued behind it, and a failed job.

Deterministic: fixed folders and terminal sizes; what the engine says that depends on the machine or
the moment (device, it/s, ETA) is a fixed event posted the way the worker posts its own. The running
and queued states have a real worker (CPU) holding real jobs, so the queue line's counts are the
worker's; the failed state shows the worker's own message for a checkpoint that is not there. Update after an intended change with
`pytest tests/test_ui_snapshots.py --snapshot-update`, and look at the SVGs before committing them.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from conftest import DIFFUSERS_LORA, EMBEDDING, TINY_CHECKPOINT, TINY_VAE
from paths_support import copy_models, make_paths
from ui_support import wait_for, write_settings

from picotui.engine.request import GenerationRequest, LoraSpec
from picotui.paths import Paths
from picotui.ui.app import PicoApp

ROOT = Path("/tmp/picotui-ui-snapshot")  # fixed: screens show the models path


def fresh_paths() -> Paths:
    shutil.rmtree(ROOT, ignore_errors=True)
    return make_paths(ROOT)


def make_app(paths: Paths) -> PicoApp:
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    app.animation_level = "none"  # no smooth scrolling: a screenshot must not catch a scroll half-way
    return app


@pytest.fixture(autouse=True)
def one_run_at_a_time():
    """ROOT is fixed (screens show it), so two runs on one machine (two checkouts) take turns."""
    import fcntl

    with open(f"{ROOT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def paths():
    yield fresh_paths()
    shutil.rmtree(ROOT, ignore_errors=True)


@pytest.fixture
def app(paths):
    return make_app(paths)


async def _settle(pilot):
    from textual.widgets import Input, TextArea

    for widget in pilot.app.query(TextArea).results():
        widget.cursor_blink = False  # the blink phase depends on timing
    for widget in pilot.app.query(Input).results():
        widget.cursor_blink = False
    # token counters (a thread) and the library scan land after the first paint
    await wait_for(pilot, lambda: pilot.app._scanned_once and "chunk" in str(
        pilot.app.query_one("#negative-tokens").render()), 20, "counters and scan")
    pilot.app.clear_notifications()  # the start-up notice ("no checkpoints yet") would cover the screen
    # No focus: a prompt's cursor drawn in the blink's "off" phase can stay on screen after blinking
    # stops (TextArea's line cache does not key on cursor_blink), so a focused prompt varies run to run.
    pilot.app.set_focus(None)
    await pilot.pause(0.3)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def test_main_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=(140, 45), run_before=_settle)


def test_main_screen_filled_form(snap_compare, paths):
    write_settings(paths, seed_locked=True, prompt="a lighthouse at dusk, (dramatic sky:1.2), BREAK oil painting",
                   negative_prompt="blurry", checkpoint="dreamshaper_8.safetensors", steps=30, cfg=6.5,
                   width=512, height=768, seed=1234, clip_skip=2, batch_count=4, sampler="Euler a",
                   loras=(LoraSpec("add_detail.safetensors", 0.6),))
    assert snap_compare(make_app(paths), terminal_size=(140, 45), run_before=_settle)


def test_main_screen_compact(snap_compare, app):
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settle)


def test_model_browser_empty(snap_compare, app):
    assert snap_compare(app, press=["ctrl+o"], terminal_size=(140, 45), run_before=_settle)


def test_model_browser_with_files(snap_compare, paths, models_root):
    copy_models(models_root, paths.models, names={TINY_CHECKPOINT, TINY_VAE, DIFFUSERS_LORA, EMBEDDING})
    (paths.models / "checkpoints" / "half-downloaded.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    (paths.models / "checkpoints" / "empty.safetensors").write_bytes(b"")
    app = make_app(paths)

    async def open_browser(pilot):
        await _settle(pilot)
        await wait_for(pilot, lambda: len(pilot.app.hashes) >= 4, 30, "the hashes")
        await pilot.press("ctrl+o")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 30), run_before=open_browser)


def test_help_for_cfg(snap_compare, app):
    async def focus_cfg(pilot):
        await _settle(pilot)
        pilot.app.query_one("#cfg").focus()
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 45), run_before=focus_cfg)


def test_keys_screen(snap_compare, app):
    assert snap_compare(app, press=["f2"], terminal_size=(140, 45), run_before=_settle)


def test_engine_details(snap_compare, app, monkeypatch):
    from picotui.engine.events import EngineStatus
    from picotui.ui import graphics, image_widgets

    # F3 shows the process's byte meter and preview budget: fresh ones, whatever earlier tests drew
    monkeypatch.setattr(image_widgets, "meter", image_widgets.ByteMeter())
    monkeypatch.setitem(graphics._preview, "budget", None)
    from picotui.ui.engine_link import EngineMessage

    status = EngineStatus(
        0, "idle", device="cuda:0 NVIDIA GeForce GTX 1060 6GB", dtype="float16", vram_used_gib=2.1,
        vram_total_gib=5.93, checkpoint="dreamshaper_8.safetensors", memory_mode="text encoder off the GPU",
        speed_path="eager", detail={"memory_reason": "5.1 GiB free: UNet and VAE fit, the text encoder waits in RAM",
                                    "speed_reason": "sm_61 (Pascal): no CUDA graphs or compile below sm_70",
                                    "capability": "6.1"})

    async def details(pilot):
        await _settle(pilot)
        pilot.app.post_message(EngineMessage(status))
        await pilot.pause()
        await pilot.press("f3")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 36), run_before=details)


def test_history(snap_compare, paths):
    from PIL import Image

    from picotui.engine.recipes.infotext import a1111_parameters
    from picotui.engine.recipes.output import save_png

    for seed, prompt in ((11, "a red boat on a calm lake"), (12, "a corgi, (warm lighting:1.2)")):
        request = GenerationRequest(prompt=prompt, seed=seed, steps=20, width=512, height=512)
        save_png(Image.new("RGB", (512, 512), (90, 120, 200)), paths.outputs, request,
                 a1111_parameters(request, model_name="v1-5-pruned-emaonly", model_hash="6ce0161689"),
                 today=dt.date(2025, 1, 31))
    app = make_app(paths)

    async def history(pilot):
        await _settle(pilot)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: "seed        12" in str(pilot.app.screen.query_one("#history-detail").render())
                       and pilot.app.screen.query_one("#history-image").image is not None, 10, "the newest entry")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 40), run_before=history)


# ---- a job running, jobs queued, a job failed ----------------------------------------------------
BUSY = dict(seed_locked=True, seed=1234, prompt="a lighthouse at dusk", width=512, height=512, steps=24,
            batch_count=100)  # a long job: still running when the screenshot is taken


@pytest.fixture
def engine_paths(cache_dir):
    shutil.rmtree(ROOT, ignore_errors=True)
    yield make_paths(ROOT, cache=cache_dir)  # the session's cache: the demo model is built once
    shutil.rmtree(ROOT, ignore_errors=True)


def with_worker(app: PicoApp, deliver=lambda event: False):
    """A real worker (CPU) for `app`. Only the events `deliver` accepts reach the app; the test posts
    fixed ones for the rest (a real job's speed and the machine's device differ run to run)."""
    from picotui.engine.jobs.worker import Worker
    from picotui.ui.engine_link import EngineMessage

    def on_event(event):
        if deliver(event):
            app.post_message(EngineMessage(event))
    app.worker = Worker(app.paths, on_event, device="cpu", preview=False).start()
    return app.worker


def fixed_status(state: str):
    from picotui.engine.events import EngineStatus

    return EngineStatus(0, state, device="cpu", dtype="float32", checkpoint="demo", memory_mode="full-gpu",
                        speed_path="eager")


async def start_jobs(pilot, count: int) -> None:
    """ctrl+g `count` times, then wait until the worker runs job 1 (the rest wait in its queue)."""
    await _settle(pilot)
    for _ in range(count):
        await pilot.press("ctrl+g")
    await wait_for(pilot, lambda: pilot.app.worker.running_job == 1, 120, "job 1 to start")


async def show_step(pilot) -> None:
    from PIL import Image

    from picotui.engine.events import Step
    from picotui.ui.engine_link import EngineMessage

    preview = Image.new("RGB", (512, 512), (200, 120, 60))
    for event in (fixed_status("generating"), Step(1, 12, 24, 3.1, 3.9, preview, 49, 100)):
        pilot.app.post_message(EngineMessage(event))
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


def test_job_running(snap_compare, engine_paths):
    write_settings(engine_paths, **BUSY)
    app = make_app(engine_paths)
    worker = with_worker(app)

    async def running(pilot):
        await start_jobs(pilot, 1)
        await show_step(pilot)

    try:
        assert snap_compare(app, terminal_size=(140, 45), run_before=running)
    finally:
        worker.shutdown(10)


def test_jobs_queued(snap_compare, engine_paths):
    write_settings(engine_paths, **BUSY)
    app = make_app(engine_paths)
    worker = with_worker(app)

    async def queued(pilot):
        await start_jobs(pilot, 3)
        await show_step(pilot)

    try:
        assert snap_compare(app, terminal_size=(140, 45), run_before=queued)
    finally:
        worker.shutdown(10)


def test_job_failed(snap_compare, engine_paths):
    from picotui.engine.events import Failed

    write_settings(engine_paths, **{**BUSY, "checkpoint": "no-such-model.safetensors", "batch_count": 1})
    app = make_app(engine_paths)
    worker = with_worker(app, deliver=lambda event: isinstance(event, Failed))  # the engine's own words

    async def failed(pilot):
        from picotui.ui.engine_link import EngineMessage

        await _settle(pilot)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: str(pilot.app.query_one("#progress-text").render()).startswith("failed"),
                       120, "the failure")
        pilot.app.post_message(EngineMessage(fixed_status("idle")))
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=(140, 45), run_before=failed)
    finally:
        worker.shutdown(10)
