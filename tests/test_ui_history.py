"""History of earlier sessions (PNGs in outputs/) and opening a PNG by path from the command palette:
ours and AUTOMATIC1111's, with unmatched fields reported. Real PNG files, real key presses."""

from __future__ import annotations

import datetime as dt

from metadata_support import metadata_png
from paths_support import make_paths
from PIL import Image
from textual.widgets import Checkbox, Input, Select, Static, TextArea
from ui_support import record_notifications, screen_text, wait_for

from picotui.engine.recipes.infotext import a1111_parameters
from picotui.engine.recipes.output import save_png
from picotui.engine.request import GenerationRequest
from picotui.ui.app import PicoApp
from picotui.ui.screens.history import HistoryScreen
from picotui.ui.screens.image_view import ImageModal
from picotui.ui.widgets.image_pane import ImagePane

A1111 = ("masterpiece, a castle on a hill\nNegative prompt: blurry, lowres\n"
         "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 987654, Size: 512x768, "
         "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Hires upscale: 2, Version: v1.10.1")


def our_png(paths, seed: int, prompt: str, colour=(200, 40, 40)):
    request = GenerationRequest(prompt=prompt, seed=seed, steps=11, width=256, height=256)
    text = a1111_parameters(request, model_name="picotui-demo-sd15-tiny", model_hash="0123456789")
    return save_png(Image.new("RGB", (256, 256), colour), paths.outputs, request, text,
                    today=dt.date(2024, 5, 1))


async def test_earlier_images_are_browsable_and_restorable(tmp_path):
    paths = make_paths(tmp_path)
    our_png(paths, 111, "first \x1b[31mred", colour=(30, 90, 160))
    our_png(paths, 222, "second, " * 40)  # far longer than the list is wide
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        detail = app.screen.query_one("#history-detail", Static)
        await wait_for(pilot, lambda: "seed        222" in str(detail.render()), 10, "the newest recipe")
        picture = app.screen.query_one("#history-image", ImagePane)
        await wait_for(pilot, lambda: picture.image is not None, 10, "the picture, read in a thread")
        assert picture.image.size == (256, 256) and picture.image.getpixel((0, 0)) == (200, 40, 40)
        await pilot.press("ctrl+f")  # full screen, then back to the list
        await pilot.pause()
        assert isinstance(app.screen, ImageModal) and app.screen.image.size == (256, 256)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        list_column = [line[:60] for line in screen_text(app).splitlines()]  # the list is the left half
        rows = [i for i, line in enumerate(list_column) if "-222.png" in line or "-111.png" in line]
        assert len(rows) == 2 and rows[1] == rows[0] + 1  # one line each, even with a long prompt
        await pilot.press("down")
        await wait_for(pilot, lambda: "seed        111" in str(detail.render()), 10, "the older recipe")
        await wait_for(pilot, lambda: picture.image is not None and picture.image.getpixel((0, 0)) == (30, 90, 160),
                       10, "the older picture")
        shown = str(detail.render())
        assert "\x1b" not in shown and "\\x1b[31mred" in shown  # escapes shown, never sent raw
        assert "steps: 11 → yours 24" in shown
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#seed", Input).value == "111"
        assert app.query_one("#seed-lock", Checkbox).value is True
        assert app.query_one("#steps", Input).value == "11"
        main_pane = app.query_one("#image-pane", ImagePane)  # the restored picture is on screen, with its file
        assert main_pane.image is not None and main_pane.image.getpixel((0, 0)) == (30, 90, 160)
        assert main_pane.path is not None and main_pane.path.name.endswith("-111.png")


async def test_open_a1111_png_from_the_command_palette(tmp_path):
    paths = make_paths(tmp_path)
    png = tmp_path / "from-a1111.png"
    metadata_png(png, A1111, size=(64, 96))
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Open PNG")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press(*"nope.png", "enter")  # typed for real: a short name (a missing file) is enough
        await pilot.pause()
        assert "No such file" in str(app.screen.query_one("#open-error", Static).render())
        app.screen.query_one("#open-path", Input).value = str(png)
        await pilot.press("enter")
        await pilot.pause()
        form = app.query_one("#form")
        request = form.request()
        assert request.prompt == "masterpiece, a castle on a hill" and request.negative_prompt == "blurry, lowres"
        assert (request.steps, request.cfg, request.seed, request.width, request.height) == (28, 6.5, 987654, 512, 768)
        assert (request.sampler, request.schedule_type) == ("DPM++ 2M", "Karras")
        assert "not installed" in str(app.query_one("#checkpoint", Select)._options[-1][0]) or \
            request.checkpoint == "v1-5-pruned-emaonly"
        messages = " ".join(said)
        assert "Hires" in messages  # what picotui cannot reproduce is reported
        assert app.query_one("#prompt", TextArea).text.startswith("masterpiece")
