"""A1111's speed keys in recipes: "Token merging ratio" and "NGMS" are written where A1111 writes them (only when
set) and read back onto the request."""

from __future__ import annotations

import pytest

from picotui.engine.errors import RequestError
from picotui.engine.recipes.infotext import a1111_parameters
from picotui.engine.recipes.metadata import parse_parameters, request_from_parameters
from picotui.engine.request import GenerationRequest


def test_speed_keys_are_written_in_a1111_order_and_read_back():
    request = GenerationRequest(prompt="a cat", negative_prompt="", sampler="Euler a", steps=20, cfg=7, seed=1,
                                clip_skip=2, token_merging_ratio=0.3, ngms=1.5, rng="CPU")
    text = a1111_parameters(request, model_name="m", model_hash="0123456789")
    # A1111 (modules/processing.py create_infotext): ... Clip skip, ENSD, Token merging ratio, ..., RNG, NGMS, ...
    assert text.endswith("Clip skip: 2, Token merging ratio: 0.3, RNG: CPU, NGMS: 1.5, Version: picotui 0.1.0")
    back, notes = request_from_parameters(parse_parameters(text))
    assert notes == []
    assert (back.token_merging_ratio, back.ngms) == (0.3, 1.5)


def test_off_means_absent_as_in_a1111():
    text = a1111_parameters(GenerationRequest(seed=1), model_name="m", model_hash=None)
    assert "Token merging" not in text and "NGMS" not in text
    back, _ = request_from_parameters(parse_parameters(text))
    assert (back.token_merging_ratio, back.ngms) == (0.0, 0.0)


def test_an_a1111_text_with_the_keys_reads_and_bad_values_are_reported():
    text = ("a dog\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 3, Size: 512x512, "
            "Model: m, Token merging ratio: 0.5, Token merging ratio hr: 0.7, NGMS: 2, Version: v1.10.1")
    back, notes = request_from_parameters(parse_parameters(text))
    assert (back.token_merging_ratio, back.ngms) == (0.5, 2.0)
    assert any(n.startswith("Token merging ratio hr") for n in notes)  # no hires fix in picotui: said, not guessed
    bad, notes = request_from_parameters(parse_parameters(text.replace("NGMS: 2", "NGMS: 99")))
    assert bad.ngms == 0.0 and any(n.startswith("NGMS: 99") for n in notes)


def test_the_request_checks_the_ranges_and_keeps_them_in_json():
    with pytest.raises(RequestError, match="Token merging ratio"):
        GenerationRequest(token_merging_ratio=0.95)
    with pytest.raises(RequestError, match="NGMS"):
        GenerationRequest(ngms=-1)
    request = GenerationRequest(token_merging_ratio=0.5, ngms=1)
    assert GenerationRequest.from_json(request.to_json()) == request


def test_picotui_paths_shows_the_preview_folder_and_the_few_step_marks(tmp_path):
    import subprocess
    import sys

    from paths_support import make_paths

    paths = make_paths(tmp_path)
    done = subprocess.run([sys.executable, "-m", "picotui", "paths", "--models", str(paths.models), "--state",
                           str(paths.state), "--config", str(paths.config_file)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()}
    assert rows["previews"] == str(paths.models / "vae-approx")
    assert rows["few-step"] == str(paths.state / "few-step-loras.json")


def test_a_headless_job_with_token_merging_writes_a1111s_keys(tmp_path, cache_dir, demo_checkpoint):
    # the whole path: CLI flags -> request -> the worker merges tokens (tomesd) -> the PNG says so, as A1111 would
    from cli_support import picotui_env, run_picotui

    from picotui.engine.recipes.metadata import read_recipe

    (tmp_path / "models").mkdir()
    env = picotui_env(tmp_path, inherit=True, PICOTUI_CONFIG=str(tmp_path / "config.toml"),
                      PICOTUI_STATE=str(tmp_path / "state"), PICOTUI_CACHE=str(cache_dir),
                      PICOTUI_MODELS=str(tmp_path / "models"), PICOTUI_DEVICE="cpu")
    out = run_picotui(env, "generate", "--checkpoint", "demo", "--steps", "2", "--width", "64", "--height", "64",
                      "--seed", "1", "--outdir", str(tmp_path / "out"), "--token-merging", "0.5", "--ngms", "1.5", "--rng", "CPU",
                      "--quiet")
    assert out.returncode == 0, out.stderr
    recipe = read_recipe(out.stdout.strip())
    assert "Token merging ratio: 0.5, RNG: CPU, NGMS: 1.5" in recipe.parameters
    assert (recipe.request.token_merging_ratio, recipe.request.ngms) == (0.5, 1.5)
