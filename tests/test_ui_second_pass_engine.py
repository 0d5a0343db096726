"""The second pass in the TUI against the real engine on the demo model: a hires fix job shows which pass runs
(with a preview in each), escape cancels it in the hires pass, and "Upscale this image" (ctrl+s) runs the Extras
job with Lanczos. Small, fast jobs (256² upscaled to 320², two steps a pass; long passes only to cancel)."""

from __future__ import annotations

from paths_support import make_paths
from ui_support import EngineEvents, spy_calls, text_of, type_into, wait_for, write_settings

from picotui.engine.upscaling.request import UpscaleRequest
from picotui.ui.app import PicoApp
from picotui.ui.screens.upscale import UpscaleModal


async def test_hires_job_names_its_passes_cancels_in_the_hires_pass_and_upscales(tmp_path, cache_dir):
    paths = make_paths(tmp_path, cache=cache_dir)  # the session's cache: the demo model is built once
    write_settings(paths, seed_locked=True, seed=5, steps=2, width=256, height=256, hires=True, hires_scale=1.25,
                   hires_steps=2, denoising_strength=0.7)
    app = PicoApp(paths, graphics_choice="halfcell")
    events = EngineEvents()
    async with app.run_test(size=(140, 45), message_hook=events.hook) as pilot:
        lines: list[str] = []
        on_step = app._on_step

        def spy(event):
            on_step(event)
            lines.append(f"{text_of(app, '#progress-text')} | {text_of(app, '#status-line')}")
        app._on_step = spy
        shown = spy_calls(app.main.image, "show")
        await wait_for(pilot, lambda: text_of(app, "#progress-text").startswith("ready"), 120, "the engine")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: events.count("Finished") == 1, 120, "the hires job", events)
        first = [line for line in lines if line.startswith("first pass 1/2 · step ")]
        hires = [line for line in lines if line.startswith("hires pass 2/2 · step ")]
        assert first and hires and lines.index(first[-1]) < lines.index(hires[0])  # the first pass, then hires
        assert "step 2/2" in first[-1] and "step 2/2" in hires[-1] and "ETA" in hires[0]
        assert "engine: generating · hires pass 2/2 │" in hires[0]
        captions = [call[1] for call in shown if len(call) > 1]
        assert any(c.startswith("preview · first pass 1/2 · step") for c in captions)
        assert any(c.startswith("preview · hires pass 2/2 · step") for c in captions)
        pane = app.main.image
        assert pane.image.size == (320, 320) and pane.path is not None and pane.path.exists()

        # "Upscale this image": the dialog, then the worker's Extras job
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, UpscaleModal)
        assert "→ 640×640 with Lanczos" in str(app.screen.query_one("#upscale-result").render())
        await pilot.press("enter")  # the factor (2) has focus: enter upscales
        await wait_for(pilot, lambda: events.count("Finished") == 2, 120, "the upscale", events)
        upscaled = [e for e in events.events if type(e).__name__ == "Finished"][-1]
        assert isinstance(upscaled.request, UpscaleRequest) and upscaled.path.parent.name == "extras"
        assert pane.image.size == (640, 640) and pane.path == upscaled.path
        assert text_of(app, "#progress-text").startswith("upscaled in ")

        # escape in the hires pass (the first pass's cancel is a plain job's: tests/test_ui_engine.py)
        await pilot.press("f9")
        await type_into(pilot, "hires-steps", "150")
        lines.clear()
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: any(line.startswith("hires pass") for line in lines), 120, "the hires pass", events)
        await pilot.press("escape")
        await wait_for(pilot, lambda: events.count("Cancelled") == 1, 60, "the cancel", events)
        assert "cancelled in the hires pass at step" in text_of(app, "#progress-text")
        assert events.count("Finished") == 2  # the hires pass never finished
