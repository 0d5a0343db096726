"""Untrusted text on screen: file names and prompts may hold control characters (an ESC starts an
ANSI sequence), Textual markup (`[/]` crashes a markup parser, `[bold]` restyles) or bytes that are
not UTF-8. Each must be shown literally and escaped, never reach the terminal raw, and still work as
the value it is (the raw name goes to the engine and into the settings file)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

from conftest import KOHYA_LORA, TINY_CHECKPOINT
from paths_support import copy_models, make_paths
from textual.widgets import Select, Static
from ui_support import record_notifications, screen_text, wait_for, write_settings

from picotui.engine.events import EngineStatus
from picotui.engine.request import GenerationRequest, LoraSpec
from picotui.ui.app import PicoApp
from picotui.ui.engine_link import EngineMessage
from picotui.ui.screens.browser import ModelBrowser
from picotui.ui.screens.history import HistoryScreen
from picotui.ui.widgets.lora_rows import LoraRow

EVIL = "\x1b[31mevil.safetensors"
BOLD = "[bold]x.safetensors"
CLICK = "[@click=app.quit]quit.safetensors"  # as markup: a link that quits the app
EVIL_LORA = "[@click=app.quit]\x1b[2Jwipe.safetensors"


def assert_nothing_raw(app) -> str:
    shot = screen_text(app)
    assert "\x1b" not in shot and "\x9b" not in shot
    return shot


def hostile_models(tmp_path, models_root):
    models = copy_models(models_root, tmp_path / "models")
    for name in (EVIL, BOLD, CLICK):
        shutil.copy(models / "checkpoints" / TINY_CHECKPOINT, models / "checkpoints" / name)
    shutil.copy(models / "loras" / KOHYA_LORA, models / "loras" / EVIL_LORA)
    return models


async def pick_option(pilot, select: Select, value) -> None:
    """Open `select` with enter and move to `value` with the arrow keys, as a user does."""
    select.focus()
    await pilot.press("enter")
    await pilot.pause()
    values = [v for _label, v in select._options]
    current = values.index(select.value) if select.value in values else 0
    key = "down" if values.index(value) >= current else "up"
    await pilot.press(*[key] * abs(values.index(value) - current), "enter")
    await pilot.pause()


async def test_hostile_file_names_in_selects_browser_status_and_notifications(tmp_path, models_root, cache_dir):
    paths = make_paths(tmp_path, models=hostile_models(tmp_path, models_root), cache=cache_dir)
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: len(app.model_files) >= 8, 30, "the scan")
        await pilot.pause()
        checkpoint = app.query_one("#checkpoint", Select)
        checkpoint.focus()
        await pilot.press("enter")  # the open list shows every name, literally
        await pilot.pause()
        shot = assert_nothing_raw(app)
        for shown in ("\\x1b[31mevil.safetensors", "[bold]x.safetensors", "[@click=app.quit]quit.safetensors"):
            assert shown in shot
        await pilot.press("escape")
        await pick_option(pilot, checkpoint, EVIL)
        assert checkpoint.value == EVIL  # the raw name is what the engine gets
        assert app.query_one("#form").request().checkpoint == EVIL
        assert_nothing_raw(app)

        # a LoRA row with a name that is markup and an escape sequence at once
        await pilot.press("ctrl+n")
        await pilot.pause()
        row = app.query_one(LoraRow)
        await pick_option(pilot, row.query_one(Select), EVIL_LORA)
        assert row.spec[0] == EVIL_LORA
        assert "[@click=app.quit]\\x1b[2Jwipe" in assert_nothing_raw(app)  # a long name ends in …

        # the browser: rows, and the notification when one is picked
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, ModelBrowser)
        assert "[bold]x.safetensors" in assert_nothing_raw(app)
        await pilot.press("down", "down", "enter")  # demo, then files sorted by name
        await pilot.pause()
        assert not isinstance(app.screen, ModelBrowser)
        messages = list(said)
        assert any("[bold]x.safetensors" in m or "[@click=app.quit]quit.safetensors" in m for m in messages), messages
        assert not any("\x1b" in m for m in messages)

        # the status line names the loaded checkpoint (the engine reports the file name it loaded)
        app.post_message(EngineMessage(EngineStatus(0, "idle", device="cpu", checkpoint=f"{EVIL} [/]")))
        await pilot.pause()
        status = str(app.query_one("#status-line", Static).render())
        assert "\\x1b[31mevil.safetensors [/]" in status
        assert_nothing_raw(app)


async def test_hostile_prompt_and_lora_in_a_png_open_in_history(tmp_path):
    from PIL import Image

    from picotui.engine.recipes.infotext import a1111_parameters
    from picotui.engine.recipes.output import save_png

    paths = make_paths(tmp_path)
    request = GenerationRequest(prompt="a [/] cat [bold]x \x1b[31mred", seed=5, steps=11, width=256, height=256,
                                loras=(LoraSpec("[/]\x1b[31mbad", 0.8),))
    save_png(Image.new("RGB", (256, 256)), paths.outputs, request, a1111_parameters(request, model_name="m", model_hash="0123456789"))
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        await wait_for(pilot, lambda: "seed        5" in str(app.screen.query_one("#history-detail").render()),
                       10, "the recipe")
        await pilot.pause()
        shot = assert_nothing_raw(app)
        assert "a [/] cat [bold]x \\x1b[31mred" in str(app.screen.query_one("#history-detail").render())
        assert "[/]" in shot
        await pilot.press("enter")  # restore: the LoRA row gets a name nobody has installed
        await pilot.pause()
        row = app.query_one(LoraRow)
        assert row.spec[0] == "[/]\x1b[31mbad"
        assert "[/]\\x1b[31mbad (not installed)" in assert_nothing_raw(app)


async def test_non_utf8_file_name_is_picked_saved_and_restored(tmp_path, models_root, cache_dir):
    models = copy_models(models_root, tmp_path / "models")
    raw = os.fsencode(models / "checkpoints") + b"/caf\xe9.safetensors"
    shutil.copy(os.fsencode(models / "checkpoints" / TINY_CHECKPOINT), raw)
    name = os.fsdecode(b"caf\xe9.safetensors")  # 'caf\udce9.safetensors'
    paths = make_paths(tmp_path, models=models, cache=cache_dir)
    write_settings(paths, width=256, height=256, steps=2)
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app.model_files, 30, "the scan")
        await pilot.pause()
        checkpoint = app.query_one("#checkpoint", Select)
        await pick_option(pilot, checkpoint, name)
        assert "caf\\xe9.safetensors" in assert_nothing_raw(app)
        await pilot.press("ctrl+g")  # saves the settings first (then says the engine is off in this test)
        await pilot.pause()
        assert not any("Could not save settings" in message for message in said)
    assert not list(paths.settings_file.parent.glob(".settings-*"))
    assert json.loads(paths.settings_file.read_text())["request"]["checkpoint"] == name
    again = PicoApp(paths, graphics_choice="none", start_engine=False)
    async with again.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        assert again.query_one("#checkpoint", Select).value == name


async def test_settings_nested_too_deep_are_ignored_with_a_notice(tmp_path):
    paths = make_paths(tmp_path)
    paths.settings_file.parent.mkdir(parents=True)
    paths.settings_file.write_text("[" * 200_000)
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        assert any("Ignored the saved settings" in message for message in said)
        # nothing of the file was taken: the form holds a first start's defaults (the seed aside, which
        # may be drawn at random)
        form_request = app.query_one("#form").request()
        assert replace(form_request, seed=None) == replace(GenerationRequest(), seed=None)
