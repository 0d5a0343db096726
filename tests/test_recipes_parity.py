"""`picotui info --check-parity`: exactly, closely or not, with the reason, for A1111 recipes."""

from __future__ import annotations

import pytest
from metadata_support import A1111_SAMPLE, metadata_png

from picotui.engine.recipes.metadata import read_recipe
from picotui.engine.recipes.parity import parity_report

SETTINGS = "Steps: 20, Sampler: {sampler}, Schedule type: {schedule}, CFG scale: 7, Seed: 1, Size: 512x512, " \
           "Model: m, RNG: CPU{extra}"


def report(tmp_path, prompt="a fox in the snow", sampler="DPM++ 2M SDE", schedule="Karras", extra=""):
    text = f"{prompt}\n" + SETTINGS.format(sampler=sampler, schedule=schedule, extra=extra)
    return parity_report(read_recipe(metadata_png(tmp_path / "r.png", text)))


@pytest.mark.parametrize("sampler, schedule", [("DPM++ 2M SDE", "Karras"), ("Euler a", "Automatic"),
                                               ("DPM++ 3M SDE", "SGM Uniform"), ("DPM2 a", "Polyexponential")])
def test_k_diffusion_samplers_with_a1111_schedules_reproduce_exactly(tmp_path, sampler, schedule):
    result = report(tmp_path, sampler=sampler, schedule=schedule)
    assert result.level == "exactly", result.reasons
    assert result.lines()[0].startswith("Parity: exactly")


@pytest.mark.parametrize("sampler", ["UniPC", "DDIM", "PLMS", "LCM"])
def test_samplers_held_only_in_part_are_close(tmp_path, sampler):
    result = report(tmp_path, sampler=sampler, schedule="Automatic")
    assert result.level == "closely" and any(sampler in reason for reason in result.reasons)


def test_restart_from_20_steps_is_close(tmp_path):
    assert report(tmp_path, sampler="Restart", schedule="Karras").level == "closely"


@pytest.mark.parametrize("sampler, schedule, named", [("DPM adaptive", "Automatic", "DPM adaptive"),
                                                      ("Euler", "Align Your Steps", "Align Your Steps")])
def test_a_sampler_or_schedule_picotui_lacks_is_not_reproduced(tmp_path, sampler, schedule, named):
    result = report(tmp_path, sampler=sampler, schedule=schedule)
    assert result.level == "not" and any(named in reason for reason in result.reasons)


def test_settings_picotui_does_not_apply_are_named(tmp_path):
    result = report(tmp_path, extra=", Hires upscale: 2, Eta: 0.67")
    assert result.level == "not"
    assert any("Hires upscale" in r for r in result.reasons) and any("Eta" in r for r in result.reasons)


def test_a_weighted_prompt_is_close_and_other_emphasis_modes_are_not(tmp_path):
    assert report(tmp_path, prompt="a (fox:1.3) in the snow").level == "closely"
    assert report(tmp_path, prompt=r"a \(fox\) in the snow").level == "exactly"  # escaped: literal brackets
    result = report(tmp_path, prompt="a (fox:1.3)", extra=", Emphasis: No norm")
    assert result.level == "not" and any("Emphasis" in r for r in result.reasons)


def test_the_info_command_prints_the_report(tmp_path, monkeypatch, capsys):
    from picotui.cli import main

    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("PICOTUI_CACHE", str(tmp_path / "cache"))
    png = metadata_png(tmp_path / "a.png", A1111_SAMPLE)
    assert main(["--models", str(tmp_path / "models"), "info", "--check-parity", str(png)]) == 0
    out = capsys.readouterr().out
    assert "Parity: not" in out and "add_detail" in out.split("Parity:")[1]  # the LoRA is not installed
