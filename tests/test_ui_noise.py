"""The noise controls in the form (RNG, variation seed and strength, seed resize from, ENSD) and the
"vary this picture" key (F5), with real key presses; the engine is not started: the job a key
asks for is read back from the settings the app saves for it."""

from __future__ import annotations

import json

import pytest
from paths_support import make_paths
from textual.widgets import Checkbox, Input, Select
from ui_support import record_notifications, type_into, wait_for, write_settings

from picotui.engine.request import GenerationRequest
from picotui.ui.app import PicoApp
from picotui.ui.help_texts import HELP, topic_for


@pytest.fixture
def paths(tmp_path):
    return make_paths(tmp_path)


def saved_request(paths) -> GenerationRequest:
    return GenerationRequest.from_dict(json.loads(paths.settings_file.read_text())["request"])


async def test_vary_key_keeps_the_seed_and_draws_a_new_variation_seed(paths):
    write_settings(paths, seed=777, variation_strength=0.25)
    app = PicoApp(paths, graphics_choice="halfcell", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        seen = []
        for _ in range(2):
            await pilot.press("f5")
            await pilot.pause()
            asked = saved_request(paths)  # the job F5 asked for
            assert (asked.seed, asked.variation_strength) == (777, 0.25)
            assert asked.variation_seed is not None
            assert app.query_one("#variation-seed", Input).value == str(asked.variation_seed)
            seen.append(asked.variation_seed)
        assert seen[0] != seen[1]
        assert app.query_one("#seed-lock", Checkbox).value is True  # the seed stays for the next jobs too


async def test_vary_key_with_strength_zero_uses_a_small_strength(paths):
    write_settings(paths, seed=5)
    app = PicoApp(paths, graphics_choice="halfcell", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        asked = saved_request(paths)
        assert (asked.seed, asked.variation_strength) == (5, 0.1) and asked.variation_seed is not None


async def test_vary_key_without_a_seed_says_what_to_do(paths):
    write_settings(paths, seed=None)
    app = PicoApp(paths, graphics_choice="halfcell", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        said = record_notifications(app)
        await pilot.press("f5")
        await wait_for(pilot, lambda: any("Nothing to vary" in m for m in said), 10, "the notice")
        assert app.query_one("#variation-seed", Input).value == ""


async def test_noise_controls_build_the_request_and_load_from_one(paths):
    write_settings(paths, seed=1)
    app = PicoApp(paths, graphics_choice="halfcell", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        form = app.query_one("#form")
        assert app.query_one("#rng", Select).value == "GPU"  # A1111's default
        app.query_one("#rng", Select).value = "NV"
        await type_into(pilot, "variation-seed", "42")
        await type_into(pilot, "variation-strength", "0.3")
        await type_into(pilot, "seed-resize", "512x768")
        await type_into(pilot, "ensd", "31337")
        r = form.request()
        assert (r.rng, r.variation_seed, r.variation_strength, r.seed_resize_from, r.eta_noise_seed_delta) == (
            "NV", 42, 0.3, (512, 768), 31337)
        await type_into(pilot, "seed-resize", "512")
        await pilot.pause()
        assert "WIDTHxHEIGHT" in str(app.query_one("#seed-resize-error").render())
        form.load(GenerationRequest(seed=3, rng="CPU"))
        assert app.query_one("#rng", Select).value == "CPU"
        assert [app.query_one(f"#{i}", Input).value for i in ("variation-seed", "variation-strength",
                                                             "seed-resize", "ensd")] == ["", "0", "", "0"]


async def test_every_noise_control_has_f1_help(paths):
    app = PicoApp(paths, graphics_choice="halfcell", start_engine=False)
    async with app.run_test(size=(140, 45)):
        for control in ("rng", "variation-seed", "variation-strength", "seed-resize", "ensd"):
            assert topic_for(app.query_one(f"#{control}")) == control and HELP[control][1].strip()
        assert HELP["rng"][1].count(". ") + 1 == 2  # the RNG choice in two sentences


def test_history_names_noise_settings_that_differ_and_lists_the_ones_set():
    from picotui.ui.screens.history import HistoryEntry, describe

    picture = GenerationRequest(seed=1, rng="NV", variation_seed=4, variation_strength=0.2, seed_resize_from=(512, 768))
    text = describe(HistoryEntry(None, picture), GenerationRequest(seed=1))
    assert "  RNG: NV → yours GPU" in text and "  var. str.: 0.2 → yours 0" in text
    assert "seed resize 512x768" in text and "ENSD" not in text  # ENSD 0 on both sides: not mentioned
    plain = describe(HistoryEntry(None, GenerationRequest(seed=1)), GenerationRequest(seed=1))
    assert "Same settings as your form." in plain and "RNG" not in plain
