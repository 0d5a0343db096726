"""The main screen's form without the engine: validation, help on every control, seed, LoRA rows,
settings saved and restored, small terminals, escaped control characters. Real key presses."""

from __future__ import annotations

import json

import pytest
from paths_support import make_paths
from textual.widgets import Checkbox, Input, Select, Static, TextArea
from ui_support import record_notifications, text_of, type_into, wait_for, write_settings

from picotui.engine.request import GenerationRequest
from picotui.ui.app import PicoApp
from picotui.ui.help_texts import HELP, topic_for
from picotui.ui.screens.browser import ModelBrowser
from picotui.ui.screens.help import HelpModal, KeysScreen
from picotui.ui.widgets.lora_rows import LoraRow


@pytest.fixture
def paths(tmp_path):
    return make_paths(tmp_path)


def app_for(paths, **kw) -> PicoApp:
    return PicoApp(paths, graphics_choice="halfcell", start_engine=False, **kw)


async def tokens_become(pilot, selector: str, expected: str) -> None:
    """The counter runs in a thread after a pause in typing: wait for it to say `expected`."""
    await wait_for(pilot, lambda: text_of(pilot.app, selector) == expected, 15,
                   f"{selector} to read {expected!r} (it reads {text_of(pilot.app, selector)!r})")


async def test_token_counter_follows_typing(paths):
    write_settings(paths, prompt="a cat")
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        await tokens_become(pilot, "#prompt-tokens", "2/75 · 1 chunk")
        await pilot.click("#prompt")
        await pilot.press("end", *" sitting on a red mat")
        assert app.query_one("#prompt", TextArea).text == "a cat sitting on a red mat"
        await tokens_become(pilot, "#prompt-tokens", "7/75 · 1 chunk")
        # A1111's way of counting chunks: BREAK fills the first chunk, so one token more is 76 of 150
        await pilot.press("f7", *"cat BREAK dog")  # f7: select all; typing replaces it
        await tokens_become(pilot, "#prompt-tokens", "76/150 · 2 chunks")
        app.query_one("#prompt", TextArea).load_text("word, " * 60)
        await wait_for(pilot, lambda: text_of(app, "#prompt-tokens").endswith("/150 · 2 chunks"), 15, "2 chunks")


async def test_token_counter_counts_an_embedding_as_its_vectors(tmp_path, models_root, cache_dir):
    from conftest import EMBEDDING, EMBEDDING_VECTORS

    paths = make_paths(tmp_path, models=models_root, cache=cache_dir)
    write_settings(paths, prompt="")
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app.model_files, 30, "the scan")
        app.query_one("#prompt").focus()
        await pilot.press(*f"a {EMBEDDING.removesuffix('.safetensors')} cat")
        # "tinyembed" alone is 4 CLIP tokens; as the installed embedding it takes its 2 vectors
        await tokens_become(pilot, "#prompt-tokens", f"{2 + EMBEDDING_VECTORS}/75 · 1 chunk")


async def test_a_huge_paste_neither_freezes_nor_is_counted(paths):
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        area = app.query_one("#prompt", TextArea)
        area.focus()
        area.load_text("")
        area.insert("corgi " * 20_000)  # 120,000 characters, the way a paste arrives: one insert
        await tokens_become(pilot, "#prompt-tokens", "too long: 120,000 characters (max 20,000)")
        await pilot.press("f7", *"a cat")  # and the app still answers keys
        await tokens_become(pilot, "#prompt-tokens", "2/75 · 1 chunk")


async def test_inputs_validate_as_you_type_and_generate_refuses(paths):
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        await type_into(pilot, "steps", "ab")
        await pilot.pause()
        error = app.query_one("#steps-error", Static)
        assert error.display and "whole numbers only" in str(error.render())
        await type_into(pilot, "width", "503")
        await pilot.pause()
        assert "multiple of 8 (try 504)" in text_of(app, "#width-error")
        await type_into(pilot, "cfg", "45")
        await pilot.pause()
        assert "CFG scale: use 1–30" in text_of(app, "#cfg-error")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert "Steps" in text_of(app, "#form-error")  # the first problem, and the app still runs
        await type_into(pilot, "steps", "20")
        await type_into(pilot, "width", "768")
        await type_into(pilot, "cfg", "6.5")
        await pilot.pause()
        assert not app.query_one("#steps-error", Static).display
        request = app.query_one("#form").request()
        assert (request.steps, request.width, request.cfg) == (20, 768, 6.5)
        assert str(app.query_one("#size-preset", Select).value) == "768x512"


async def test_f1_explains_every_focusable_control(paths):
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("ctrl+n")  # a LoRA row, so its controls are in the tab order too
        await pilot.pause()
        app.query_one("#prompt").focus()
        await pilot.pause()
        seen = []
        for _ in range(40):
            focused = app.focused
            if seen and focused is seen[0]:
                break
            seen.append(focused)
            topic = topic_for(focused)
            assert topic in HELP, f"no help for {focused!r}"
            await pilot.press("f1")
            assert isinstance(app.screen, HelpModal) and app.screen.topic == topic
            body = str(app.screen.query_one("#help-body", Static).render())
            assert len(body) > 40
            await pilot.press("escape")
            assert app.focused is focused
            await pilot.press("tab")
        topics = {topic_for(w) for w in seen}
        assert {"prompt", "negative", "checkpoint", "vae", "lora-add", "lora-name", "lora-weight", "lora-remove",
                "sampler", "schedule-type", "steps", "cfg", "width", "height", "size-preset", "seed", "seed-lock", "seed-random",
                "clip-skip", "batch", "generate"} <= topics


async def test_keys_screen_lists_every_binding_once(paths):
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        app.query_one("#steps").focus()
        await pilot.pause()
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)
        text = str(app.screen.query_one("#keys-body", Static).render())
        for key in ("ctrl+g", "escape", "ctrl+r", "ctrl+l", "ctrl+o", "ctrl+t", "ctrl+n", "ctrl+f", "f1", "f2", "?",
                    "f3", "ctrl+p", "ctrl+q", "ctrl+t then s"):
            assert key in text, key
        lines = text.splitlines()
        assert len([line for line in lines if line.startswith("ctrl+n ")]) == 1
        assert str(paths.log_file) in str(app.screen.query_one("#keys-log", Static).render())
        await pilot.press("f2")  # the same key closes it
        await pilot.pause()
        assert not isinstance(app.screen, KeysScreen)
        app.query_one("#seed-lock").focus()
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)
        await pilot.press("escape")
        app.query_one("#prompt").focus()
        await pilot.press("f7", *"why?")  # in a text field ? is just a character
        await pilot.pause()
        assert app.query_one("#prompt", TextArea).text == "why?" and not isinstance(app.screen, KeysScreen)


async def test_f1_and_f2_work_inside_dialogs_and_other_screens(paths):
    from PIL import Image

    from picotui.engine.recipes.output import save_png
    from picotui.ui.screens.history import HistoryScreen
    from picotui.ui.screens.open_png import OpenPngModal

    save_png(Image.new("RGB", (64, 64)), paths.outputs, GenerationRequest(seed=1), "a cat")
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("ctrl+p", *"Open PNG")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, OpenPngModal)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal) and app.screen.topic == "open-path"
        await pilot.press("question_mark")  # the help dialog's promise: ? lists every key
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)
        await pilot.press("escape", "f1")  # F1 again closes the help it opened
        await pilot.pause()
        assert isinstance(app.screen, OpenPngModal)
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)
        await pilot.press("escape", "escape")
        await pilot.pause()

        for key, screen_type, topic in (("ctrl+o", ModelBrowser, "browser-table"), ("ctrl+t", HistoryScreen, "history-list")):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen_type)
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpModal) and app.screen.topic == topic
            await pilot.press("escape", "escape")
            await pilot.pause()
        assert app.screen is app.screen_stack[0]


async def test_command_palette_and_footer_list_each_action_once(paths):
    from textual.command import CommandList
    from textual.widgets._footer import FooterKey

    from picotui.ui.commands import COMMANDS

    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        assert [k.key for k in app.query(FooterKey)].count("ctrl+p") == 1
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.query(CommandList) and
                       app.screen.query_one(CommandList).option_count >= len(COMMANDS), 10, "the palette")
        shown = [str(app.screen.query_one(CommandList).get_option_at_index(i).prompt).splitlines()[0]
                 for i in range(app.screen.query_one(CommandList).option_count)]
        assert sorted(shown) == sorted(title for title, _help, _action in COMMANDS)  # ours only, once each
        assert len({action for _t, _h, action in COMMANDS}) == len(COMMANDS)


async def test_seed_keys_and_lora_rows(paths):
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        form = app.query_one("#form")
        await pilot.press("ctrl+r")
        seed = app.query_one("#seed", Input).value
        assert seed.isdigit()
        await pilot.press("ctrl+l")
        assert app.query_one("#seed-lock", Checkbox).value is True
        assert form.next_request().seed == int(seed)  # locked: the field's seed
        await pilot.press("ctrl+l")
        drawn = form.next_request().seed  # unlocked: a new seed each job, shown in the field
        assert app.query_one("#seed", Input).value == str(drawn)
        assert drawn != int(seed)  # two equal draws from 2^32 seeds: once in four billion runs
        await pilot.press("ctrl+n", "ctrl+n")
        await pilot.pause()
        assert len(app.query(LoraRow)) == 2
        assert isinstance(app.focused, Select)  # the new row's file list has the focus
        await pilot.press("delete")
        await pilot.pause()
        assert len(app.query(LoraRow)) == 1
        await pilot.press("ctrl+g")  # a row without a file is refused with a reason
        await pilot.pause()
        assert "LoRA row 1 has no file" in text_of(app, "#form-error")


async def test_settings_are_saved_and_restored(paths):
    write_settings(paths, seed_locked=True, prompt="a lighthouse", steps=12, cfg=5.5, width=640, height=384,
                   seed=1234, clip_skip=2, batch_count=3, sampler="Euler a", schedule_type="SGM Uniform")
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        request = app.query_one("#form").request()
        assert (request.prompt, request.steps, request.cfg, request.width, request.height, request.seed,
                request.clip_skip, request.batch_count, request.sampler, request.schedule_type) == \
               ("a lighthouse", 12, 5.5, 640, 384, 1234, 2, 3, "Euler a", "SGM Uniform")
        app.query_one("#steps", Input).value = "30"
        await pilot.press("ctrl+q")
    saved = json.loads(paths.settings_file.read_text())
    assert saved["request"]["steps"] == 30 and saved["seed_locked"] is True


async def test_corrupt_settings_are_ignored_with_a_notice(paths):
    paths.settings_file.parent.mkdir(parents=True)
    paths.settings_file.write_text("{not json")
    app = app_for(paths)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        assert app.query_one("#form").request().steps == GenerationRequest().steps
        assert any("Ignored the saved settings" in message for message in said)


async def test_tiny_terminal_gets_a_compact_layout(paths):
    app = app_for(paths)
    said = record_notifications(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.has_class("compact")
        assert app.query_one("#image-pane").size.height == 0  # its room goes to the form
        assert app.query_one("#prompt").size.height > 0 and app.query_one("#progress").size.height > 0
        await pilot.resize_terminal(90, 26)  # a small pane is kept from here up
        await pilot.pause()
        assert not app.has_class("compact") and app.query_one("#image-pane").size.height > 0
        await pilot.resize_terminal(140, 45)
        await pilot.pause()
        assert not app.has_class("compact")
        # absurdly small: nothing crashes, every key still works
        await pilot.resize_terminal(20, 8)
        await pilot.pause()
        assert app.has_class("compact")
        await pilot.press("tab", "ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, ModelBrowser)
        await pilot.press("escape", "f2")
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)
        await pilot.press("escape", "ctrl+f")  # no image yet: says so
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert any("No image to show yet" in message for message in said)


async def test_control_characters_are_shown_escaped(paths):
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        notes = app.query_one("#form").load(GenerationRequest(prompt="red \x1b[31mcat\x07", seed=5))
        await pilot.pause()
        text = app.query_one("#prompt", TextArea).text
        assert "\x1b" not in text and "\\x1b[31mcat\\x07" in text
        assert notes and "escaped" in notes[0]


async def test_a_failure_stays_in_the_progress_line_and_names_the_log_file(paths):
    from picotui.engine.events import Failed
    from picotui.ui.engine_link import EngineMessage

    app = app_for(paths)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        # what the worker sends when a job dies of an unexpected error
        app.post_message(EngineMessage(Failed(4, "internal", "boom [/] (details in the log)")))
        await pilot.pause()
        assert f"boom [/] (details in the log: {paths.log_file})" in said
        assert text_of(app, "#progress-text") == "failed: boom [/] (details in the log)"


async def test_the_demo_model_makes_a_fast_256_picture_until_a_size_is_chosen(paths):
    app = app_for(paths)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        form = app.query_one("#form")
        assert str(app.query_one("#checkpoint", Select).value) == "demo"
        note = app.query_one("#size-note", Static)
        assert note.display and "256×256" in str(note.render())
        request = form.next_request()
        assert (request.width, request.height) == (256, 256)
        assert (form.request().width, form.request().height) == (512, 512)  # the fields keep what they show
        await type_into(pilot, "width", "512")  # typed for real: a chosen size, even the same one
        request = form.next_request()
        assert (request.width, request.height) == (512, 512)
        assert not note.display
