"""The form's second pass (img2img and hires fix) in the TUI: F9 opens and folds it, its fields build the
request and come back from history and from a PNG's recipe, F1 explains every control, the progress and
status lines name the pass, and the img2img source comes from the image on screen (F8), a history entry
(i) or a file (the open dialog). Real key presses; engine events are the engine's own dataclasses, handed
to the app the way the worker hands them (`post_message`)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from metadata_support import metadata_png
from paths_support import make_paths
from PIL import Image
from textual.widgets import Checkbox, Input, Select, Static, TextArea
from ui_support import record_notifications, screen_text, text_of, type_into, wait_for, write_settings

from picotui.engine.events import Cancelled, EngineStatus, Finished, Step
from picotui.engine.recipes.output import save_png
from picotui.engine.request import GenerationRequest
from picotui.engine.sampling.samplers import SAMPLER_NAMES
from picotui.ui.app import PicoApp
from picotui.ui.engine_link import EngineMessage
from picotui.ui.help_texts import HELP, topic_for
from picotui.ui.screens.help import HelpModal
from picotui.ui.screens.history import HistoryScreen
from picotui.ui.screens.open_png import OpenPngModal
from picotui.ui.widgets.second_pass import SecondPass

A1111_HIRES = ("a castle\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, "
               "Seed: 12, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, "
               "Hires upscale: 2, Hires steps: 6, Hires upscaler: Latent (bicubic antialiased), Version: v1.10.1")
SECTION_TOPICS = {"second-pass", "source-choose", "source-clear", "resize-mode", "denoising", "hires", "hires-scale",
                  "hires-resize", "hires-upscaler", "hires-steps", "hires-sampler", "hires-schedule", "hires-prompt",
                  "hires-negative"}


def app_for(paths, graphics: str = "none") -> PicoApp:
    return PicoApp(paths, graphics_choice=graphics, start_engine=False)


def section(app) -> SecondPass:
    return app.query_one(SecondPass)


async def test_f9_opens_the_section_its_fields_build_the_request_and_f1_explains_each(tmp_path):
    app = app_for(make_paths(tmp_path))
    async with app.run_test(size=(140, 45)) as pilot:
        form = app.query_one("#form")
        assert section(app).collapsed and not app.query_one("#hires", Checkbox).is_on_screen
        request = form.request()  # folded and untouched: no second pass, A1111's img2img default strength
        assert (request.hires, request.init_image, request.denoising_strength) == (False, None, 0.75)
        assert "Second pass (F9): off" in screen_text(app)

        await pilot.press("f9")
        await pilot.pause()
        assert not section(app).collapsed and app.focused is section(app).query_one("CollapsibleTitle")
        # F1 on each control of the section, in the tab order (focus_next is tab's action; the dialog is
        # opened with F1 on three of them, the rest checked for their topic as F1 finds it)
        seen = set()
        for _ in range(20):
            topic = topic_for(app.focused)
            if topic not in SECTION_TOPICS:
                break
            seen.add(topic)
            if topic in ("second-pass", "denoising", "hires-upscaler"):
                await pilot.press("f1")
                assert isinstance(app.screen, HelpModal) and app.screen.topic == topic
                assert app.screen.query_one("Static").render().plain == HELP[topic][0]
                await pilot.press("f1")  # F1 again closes it
            app.screen.focus_next()
        assert seen == SECTION_TOPICS
        help_body = HELP["denoising"][1]
        assert "How much of the picture is redrawn" in help_body and "duplicated faces" in help_body

        # hires on: the strength follows A1111's hires default (0.7) while the user has not typed one
        app.query_one("#hires").focus()
        await pilot.press("space")
        await pilot.pause()
        assert app.query_one("#hires", Checkbox).value and app.query_one("#denoising", Input).value == "0.7"
        await type_into(pilot, "hires-scale", "1.5")
        await type_into(pilot, "hires-steps", "6")
        app.query_one("#hires-upscaler").focus()
        await pilot.press("enter", "down", "down", "enter")  # the third upscaler: Latent (bicubic)
        app.query_one("#hires-sampler").focus()
        await pilot.press("enter", "down", "enter")  # the first sampler after "same as first pass"
        app.query_one("#hires-prompt").focus()
        await pilot.press(*"sharp details")
        await pilot.pause()
        request = form.request()
        assert (request.hires, request.hires_scale, request.hires_steps, request.denoising_strength) == (True, 1.5, 6, 0.7)
        assert (request.hires_upscaler, request.hires_sampler) == ("Latent (bicubic)", SAMPLER_NAMES[0])
        assert (request.hires_prompt, request.hires_negative_prompt, request.hires_schedule_type) == \
            ("sharp details", "", "")
        assert request.hires_resize is None and request.hires_size()[:2] == (768, 768)  # 512 × 1.5
        await type_into(pilot, "hires-resize", "1024x0")  # a size instead of the factor: 0 follows the other
        await pilot.pause()
        assert form.request().hires_size()[:2] == (1024, 1024)
        await type_into(pilot, "hires-resize", "1024")
        await pilot.pause()
        assert "WIDTHxHEIGHT" in text_of(app, "#hires-resize-error")
        await type_into(pilot, "hires-resize", "")

        # a strength the user typed stays, whatever hires does
        await type_into(pilot, "denoising", "0.45")
        app.query_one("#hires").focus()
        await pilot.press("space", "space")
        await pilot.pause()
        assert app.query_one("#denoising", Input).value == "0.45"
        await pilot.press("f9")  # folded, the title still says what the second pass will do
        await pilot.pause()
        assert section(app).collapsed and app.focused is section(app).query_one("CollapsibleTitle")
        assert str(section(app).title) == "Second pass (F9): hires → 768×768 · denoising 0.45 · Latent (bicubic)"
        assert "Second pass (F9): hires → 768×768 · denoising 0.45" in screen_text(app)  # the form's width cuts the rest
        assert form.request().hires


def hires_request(**kw) -> GenerationRequest:
    return GenerationRequest(prompt="a lighthouse", seed=4242, steps=9, width=256, height=384, hires=True,
                             hires_scale=1.5, hires_upscaler="Latent (nearest-exact)", hires_steps=4,
                             denoising_strength=0.55, hires_sampler="Euler a", hires_schedule_type="Karras",
                             hires_prompt="a lighthouse, fine detail", hires_negative_prompt="blur", **kw)


def second_pass_of(request: GenerationRequest) -> tuple:
    return (request.hires, request.hires_scale, request.hires_resize, request.hires_upscaler, request.hires_steps,
            request.denoising_strength, request.hires_sampler, request.hires_schedule_type, request.hires_prompt,
            request.hires_negative_prompt, request.init_image, request.resize_mode)


async def test_the_second_pass_comes_back_from_history_and_from_a_png_recipe(tmp_path):
    from picotui.engine.recipes.infotext import a1111_parameters

    paths = make_paths(tmp_path)
    saved = hires_request()
    png = save_png(Image.new("RGB", (384, 576), (10, 90, 30)), paths.outputs, saved,
                   a1111_parameters(saved, model_name="demo", model_hash="0123456789"), today=dt.date(2026, 11, 1))
    source = tmp_path / "source photo.jpg"
    Image.new("RGB", (300, 200), (200, 180, 20)).save(source)
    img2img = GenerationRequest(prompt="a lighthouse", seed=7, steps=9, width=256, height=256, init_image=str(source),
                                resize_mode="Crop and resize", denoising_strength=0.35)
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("ctrl+t")  # history: the PNG in outputs/, restored with enter
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        detail = app.screen.query_one("#history-detail", Static)
        await wait_for(pilot, lambda: "hires fix   on" in str(detail.render()), 10, "the recipe's second pass")
        assert "upscaler    Latent (nearest-exact)" in str(detail.render())
        await pilot.press("enter")
        await pilot.pause()
        form = app.query_one("#form")
        assert second_pass_of(form.request()) == second_pass_of(saved)
        assert not section(app).collapsed  # a restored second pass is shown, not hidden in a folded section

        form.load(img2img)  # another recipe in between: the PNG's must replace it, not merge with it
        await pilot.pause()
        assert "source photo.jpg · 300×200" in text_of(app, "#source-name")
        await pilot.press("ctrl+p", *"Open image recipe")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, OpenPngModal)
        app.screen.query_one("#open-path", Input).value = str(png)
        await pilot.press("enter")
        await pilot.pause()
        assert second_pass_of(form.request()) == second_pass_of(saved)
        assert "none (text to image)" in text_of(app, "#source-name")

        form.load(img2img)  # and img2img's fields come back as they were
        await pilot.pause()
        assert second_pass_of(form.request()) == second_pass_of(img2img)

        # AUTOMATIC1111's own hires keys, read as its paste reads them
        await pilot.press("ctrl+p", *"Open image recipe")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        app.screen.query_one("#open-path", Input).value = str(metadata_png(tmp_path / "a1111.png", A1111_HIRES))
        await pilot.press("enter")
        await pilot.pause()
        request = form.request()
        assert (request.hires, request.hires_scale, request.hires_steps, request.hires_upscaler,
                request.denoising_strength, request.hires_resize, request.init_image) == \
            (True, 2.0, 6, "Latent (bicubic antialiased)", 0.45, None, None)
        assert app.query_one("#hires-upscaler", Select).value == "Latent (bicubic antialiased)"


async def test_progress_and_status_name_the_pass_with_its_own_eta(tmp_path):
    app = app_for(make_paths(tmp_path), graphics="halfcell")
    async with app.run_test(size=(140, 45)) as pilot:
        app.shown_job = 3
        app.post_message(EngineMessage(EngineStatus(0, state="generating", checkpoint="demo")))
        preview = Image.new("RGB", (16, 16), (200, 0, 0))
        app.post_message(EngineMessage(Step(3, 2, 4, 2.0, 0.5, preview=preview, pass_label="first pass",
                                            pass_number=1, pass_count=2)))
        await pilot.pause()
        assert text_of(app, "#progress-text") == "first pass 1/2 · step 2/4 · 2.00 it/s · 0.50 s/step · ETA 0.5s"
        assert text_of(app, "#status-line").startswith("engine: generating · first pass 1/2 │")
        app.post_message(EngineMessage(Step(3, 3, 10, 0.5, 14.0, preview=preview, pass_label="hires pass",
                                            pass_number=2, pass_count=2)))
        await pilot.pause()
        assert text_of(app, "#progress-text") == "hires pass 2/2 · step 3/10 · 0.50 it/s · 2.00 s/step · ETA 14s"
        assert text_of(app, "#status-line").startswith("engine: generating · hires pass 2/2 │")
        assert app.main.image.caption == "preview · hires pass 2/2 · step 3/10"  # the preview runs in both passes
        app.post_message(EngineMessage(Cancelled(3)))
        await pilot.pause()
        assert text_of(app, "#progress-text") == "job 3 cancelled in the hires pass at step 3/10"
        app.shown_job = 5  # and in the first pass
        app.post_message(EngineMessage(Step(5, 1, 4, 2.0, 1.5, pass_label="first pass", pass_number=1, pass_count=2)))
        app.post_message(EngineMessage(Cancelled(5)))
        await pilot.pause()
        assert text_of(app, "#progress-text") == "job 5 cancelled in the first pass at step 1/4"
        assert text_of(app, "#status-line").startswith("engine: generating │")  # the pass is over
        app.shown_job = 4  # one pass (txt2img, img2img): no pass named
        app.post_message(EngineMessage(Step(4, 5, 24, 3.0, 6.3)))
        await pilot.pause()
        assert text_of(app, "#progress-text") == "step 5/24 · 3.00 it/s · 0.33 s/step · ETA 6s"


async def test_img2img_source_from_the_image_on_screen_history_and_a_file(tmp_path):
    paths = make_paths(tmp_path)
    write_settings(paths, steps=5, width=256, height=256, hires=True)
    app = app_for(paths, graphics="halfcell")
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f8")
        assert "No image yet" in said[-1]
        # a finished image, saved: what the worker sends
        request = GenerationRequest(seed=99, steps=5, width=256, height=256)
        first = save_png(Image.new("RGB", (256, 256), (0, 0, 255)), paths.outputs, request, "blue",
                         today=dt.date(2026, 11, 2))
        app.post_message(EngineMessage(Finished(1, Image.open(first).copy(), first, request, "blue")))
        await pilot.pause()
        await pilot.press("f8")
        await pilot.pause()
        form = app.query_one("#form")
        made = form.request()
        assert made.init_image == str(first) and not made.hires  # hires fix is text to image only: switched off
        assert made.denoising_strength == 0.75  # img2img's default again, with hires off
        assert f"{first.name} · 256×256" in text_of(app, "#source-name") and not section(app).collapsed
        assert "hires fix switched off" in said[-1]

        # the result of that img2img job is drawn beside its source, read from the source's file
        result = GenerationRequest(seed=100, steps=5, width=256, height=256, init_image=str(first))
        second = save_png(Image.new("RGB", (256, 256), (255, 0, 0)), paths.outputs, result, "red",
                          today=dt.date(2026, 11, 2))
        app.post_message(EngineMessage(Finished(2, Image.open(second).copy(), second, result, "red")))
        await pilot.pause()
        pane = app.main.image
        source_picture = pane.query_one("#source-picture")
        assert source_picture.display and source_picture.image.getpixel((0, 0)) == (0, 0, 255)
        assert pane.query_one("#picture").image.getpixel((0, 0)) == (255, 0, 0)
        assert pane.path == second

        # a history entry: i makes it the source
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        await wait_for(pilot, lambda: app.screen.highlighted is not None and app.screen.highlighted.path == second,
                       10, "the newest entry")
        await pilot.press("down", "i")
        await pilot.pause()
        assert not isinstance(app.screen, HistoryScreen) and form.request().init_image == str(first)

        # any image file through the open dialog (a JPEG here); a file that is no image says so and stays
        photo = tmp_path / "photo.jpg"
        Image.new("RGB", (320, 240), (9, 9, 9)).save(photo)
        (tmp_path / "notes.png").write_text("not a picture")
        await pilot.press("ctrl+p", *"Source image from a file")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, OpenPngModal) and "source image for img2img" in screen_text(app)
        app.screen.query_one("#open-path", Input).value = str(tmp_path / "notes.png")
        await pilot.press("enter")
        await pilot.pause()
        assert "notes.png is not an image picotui can read" in str(app.screen.query_one("#open-error").render())
        app.screen.query_one("#open-path", Input).value = str(photo)
        await pilot.press("enter")
        await pilot.pause()
        assert form.request().init_image == str(photo) and "photo.jpg · 320×240" in text_of(app, "#source-name")
        app.query_one("#hires").focus()  # hires fix with a source: the title and generate say what to do
        await pilot.press("space")
        await pilot.pause()
        assert str(section(app).title).startswith("Second pass (F9): Hires fix is for text to image")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert text_of(app, "#form-error").startswith("Hires fix is for text to image: clear the source image")
        app.query_one("#source-clear").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert form.request().init_image is None and form.request().hires


SNAPSHOT_ROOT = Path("/tmp/picotui-ui-second-pass-snapshot")  # fixed: the image pane's first-run note shows it


@pytest.fixture
def snapshot_paths():
    import fcntl

    with open(f"{SNAPSHOT_ROOT}.lock", "w") as lock:  # two checkouts on one machine take turns
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)
        yield make_paths(SNAPSHOT_ROOT)
        shutil.rmtree(SNAPSHOT_ROOT, ignore_errors=True)


def test_snapshot_of_the_open_section(snap_compare, snapshot_paths):
    write_settings(snapshot_paths, seed=1234, steps=20, hires=True, hires_scale=2.0, denoising_strength=0.7,
                   hires_upscaler="Latent (bicubic)", hires_steps=10, hires_prompt="fine detail")
    app = app_for(snapshot_paths)
    app.animation_level = "none"

    async def open_section(pilot):
        for widget in [*pilot.app.query(TextArea).results(), *pilot.app.query(Input).results()]:
            widget.cursor_blink = False
        await wait_for(pilot, lambda: pilot.app._scanned_once and "chunk" in str(
            pilot.app.query_one("#negative-tokens").render()), 20, "counters and scan")
        pilot.app.clear_notifications()
        await pilot.press("f9")
        await pilot.pause(0.3)
        pilot.app.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause(0.3)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(140, 45), run_before=open_section)


def test_the_folded_title_names_the_final_hires_size():
    from picotui.ui.widgets.second_pass import summary

    # A1111's "Hires resize" to another shape: the upscale covers 1024×1024 and is cropped to it
    crop = GenerationRequest(width=512, height=768, hires=True, hires_resize=(1024, 1024), denoising_strength=0.5)
    assert summary(crop) == "Second pass (F9): hires → 1024×1024 · denoising 0.5 · Latent"
    follow = GenerationRequest(width=512, height=768, hires=True, hires_resize=(1024, 0), hires_upscaler="Lanczos")
    assert summary(follow) == "Second pass (F9): hires → 1024×1536 · denoising 0.75 · Lanczos"


def test_history_and_compare_name_a_second_pass_that_differs():
    from picotui.ui.screens.compare import differences
    from picotui.ui.screens.history import HistoryEntry, describe

    hires, plain = hires_request(), GenerationRequest(prompt="a lighthouse", seed=4242, steps=9, width=256, height=384)
    assert ("hires fix", "on", "off") in differences(hires, plain) and ("hires steps", "4", "0") in differences(hires, plain)
    assert differences(plain, plain) == []
    text = describe(HistoryEntry(None, plain), hires)  # a plain picture, a hires form: the form's hires is named
    assert "  hires fix: off → yours on" in text and "hires fix" not in text.split("\n\n")[-1]
