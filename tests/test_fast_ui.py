"""The fast path in the TUI, with real key presses: the form says what a few-step LoRA in the job needs and F6 applies
it; the browser marks any LoRA as few-step (kept in the state folder); token merging and NGMS are form fields."""

from __future__ import annotations

import shutil

from conftest import KOHYA_LORA
from paths_support import make_paths
from textual.widgets import DataTable, Input, Select
from ui_support import record_notifications, text_of, type_into, wait_for, write_settings

from picotui.engine.models.few_step import FewStepMarks
from picotui.engine.request import LoraSpec
from picotui.ui.app import PicoApp
from picotui.ui.screens.browser import ModelBrowser

LCM = "lcm-lora-sdv1-5.safetensors"


def fast_models(tmp_path, models_root):
    models = tmp_path / "models"
    (models / "loras").mkdir(parents=True)
    shutil.copy(models_root / "loras" / KOHYA_LORA, models / "loras" / LCM)  # a real kohya LoRA, as renamed
    shutil.copy(models_root / "loras" / KOHYA_LORA, models / "loras" / "style.safetensors")
    return models


async def test_f6_applies_what_the_few_step_lora_needs(tmp_path, models_root, cache_dir):
    paths = make_paths(tmp_path, models=fast_models(tmp_path, models_root), cache=cache_dir)
    write_settings(paths, loras=(LoraSpec(LCM, 1.0),), steps=24, cfg=7.0, sampler="Euler")
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    async with app.run_test(size=(140, 50)) as pilot:
        await wait_for(pilot, lambda: app.model_files, 30, "the scan")
        await wait_for(pilot, lambda: "F6 applies" in text_of(app, "#few-step-hint"), 10, "the few-step hint")
        assert "LCM-LoRA" in text_of(app, "#few-step-hint") and "4–8 steps, CFG 1–2" in text_of(app, "#few-step-hint")
        app.query_one("#steps").focus()
        await pilot.press("f6")
        await pilot.pause()
        form = app.query_one("#form")
        request = form.request()
        profile = form.few_step_lookup(LCM)
        assert (request.steps, request.cfg, request.sampler) == (6, 1.0, profile.sampler)
        await wait_for(pilot, lambda: "the settings fit" in text_of(app, "#few-step-hint"), 5, "the hint to agree")
        await type_into(pilot, "steps", "20")  # out of its range again: the hint offers F6 again
        await wait_for(pilot, lambda: "F6 applies" in text_of(app, "#few-step-hint"), 5, "the hint to follow")


async def test_browser_marks_a_lora_few_step_and_it_persists(tmp_path, models_root, cache_dir):
    import torch
    from safetensors.torch import save_file

    paths = make_paths(tmp_path, models=fast_models(tmp_path, models_root), cache=cache_dir)
    save_file({"1.weight": torch.zeros(64, 4, 3, 3), "1.bias": torch.zeros(64)},  # a TAESD decoder's first conv
              str(paths.models / "vae-approx" / "taesd_decoder.safetensors"))
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    said = record_notifications(app)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app.model_files, 30, "the scan")
        await pilot.press("ctrl+o", "3")
        await pilot.pause()
        browser = app.screen
        assert isinstance(browser, ModelBrowser)
        table = browser.query_one("#table-lora", DataTable)
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert names == [LCM, "style.safetensors"]
        assert "few-step LCM-LoRA (by name)" in str(table.get_row_at(0)[4])
        assert str(table.get_row_at(1)[4]) == ""
        await pilot.press("down", "f")
        await pilot.pause()
        assert "few-step few-step (marked)" in str(table.get_row_at(1)[4])
        assert table.cursor_row == 1
        await pilot.press("up", "f")  # a recognised one can be unmarked
        await pilot.pause()
        assert str(table.get_row_at(0)[4]) == ""
        await pilot.press("5")  # the Previews tab lists the TAESD decoder; there is nothing to pick
        await pilot.pause()
        previews = browser.query_one("#table-taesd", DataTable)
        assert [str(previews.get_row_at(i)[0]) for i in range(previews.row_count)] == ["taesd_decoder.safetensors"]
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ModelBrowser) and any("live preview by itself" in m for m in said)
    marks = FewStepMarks(paths.state)  # a new session sees both
    assert marks.profile("style.safetensors").source == "marked"
    assert marks.profile(LCM) is None


async def test_token_merging_and_ngms_fields_make_the_request(tmp_path):
    paths = make_paths(tmp_path)
    write_settings(paths, token_merging_ratio=0.3, ngms=2.0)
    app = PicoApp(paths, graphics_choice="none", start_engine=False)
    async with app.run_test(size=(140, 50)) as pilot:
        form = app.query_one("#form")
        assert (form.request().token_merging_ratio, form.request().ngms) == (0.3, 2.0)  # restored
        await type_into(pilot, "tome", "0.5")
        await type_into(pilot, "ngms", "0")
        await pilot.pause()
        assert (form.request().token_merging_ratio, form.request().ngms) == (0.5, 0.0)
        await type_into(pilot, "tome", "0.95")
        await pilot.pause()
        assert "Token merging ratio: use 0–0.9" in text_of(app, "#tome-error")
        assert isinstance(app.query_one("#sampler"), Select) and isinstance(app.query_one("#tome"), Input)
