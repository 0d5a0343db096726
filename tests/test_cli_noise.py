"""`picotui generate` with A1111's noise options: a real process for the images, `main` for the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_support import picotui_env, run_picotui
from PIL import Image

from picotui.cli import main


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    for name in ("PICOTUI_MODELS", "PICOTUI_OUTPUTS", "PICOTUI_STATE", "PICOTUI_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))


def test_noise_options_reach_the_images_and_their_recipes(tmp_path, cache_dir, demo_checkpoint):
    from picotui.engine.recipes.metadata import read_recipe

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    env = picotui_env(home, inherit=True, PICOTUI_CONFIG=str(home / "config.toml"), PICOTUI_STATE=str(home / "state"),
                      PICOTUI_CACHE=str(cache_dir), PICOTUI_MODELS=str(home / "models"), PICOTUI_DEVICE="cpu",
                      HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = run_picotui(env, "generate", "--checkpoint", "demo", "--steps", "2", "--width", "64", "--height", "64",
                      "--seed", "1", "--outdir", str(tmp_path), "--batch-count", "2", "--sampler", "Euler a",
                      "--rng", "nv", "--variation-seed", "9", "--variation-strength", "0.3",
                      "--seed-resize-from", "64x96", "--ensd", "31337")
    assert out.returncode == 0, out.stderr
    paths = [Path(line) for line in out.stdout.strip().splitlines()]
    recipes = [read_recipe(p).request for p in paths]
    # A1111's batch with variations: the seed stays, the variation seed counts up
    assert [(r.seed, r.variation_seed) for r in recipes] == [(1, 9), (1, 10)]
    assert {(r.rng, r.variation_strength, r.seed_resize_from, r.eta_noise_seed_delta) for r in recipes} == {
        ("NV", 0.3, (64, 96), 31337)}
    text = read_recipe(paths[0]).parameters
    assert ("Variation seed: 9, Variation seed strength: 0.3, Seed resize from: 64x96, ENSD: 31337, RNG: NV"
            in text)
    a, b = (np.asarray(Image.open(p)).astype(int) for p in paths)
    assert np.abs(a - b).mean() > 1  # another variation seed, another picture


@pytest.mark.parametrize("args, expect", [
    (["--rng", "TPU"], "GPU, CPU, NV"),
    (["--variation-strength", "2"], "Variation strength"),
    (["--seed-resize-from", "512"], "WIDTHxHEIGHT"),
    (["--ensd", "x"], "ENSD"),
])
def test_bad_noise_options_are_one_line(capsys, args, expect):
    assert main(["generate", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err, err
