"""The noise settings in requests (validation, A1111's batch seeding) and in A1111's parameters text
(written where A1111 writes them, read back, no RNG key meaning GPU)."""

from __future__ import annotations

import pytest
from metadata_support import metadata_png

from picotui.engine.errors import RequestError
from picotui.engine.recipes.infotext import a1111_parameters
from picotui.engine.recipes.metadata import parse_parameters, read_recipe, request_from_parameters
from picotui.engine.request import GenerationRequest


def settings_line(request):
    return a1111_parameters(request, model_name="m", model_hash=None).split("\n")[-1]


def test_defaults_are_a1111s():
    r = GenerationRequest()
    assert (r.rng, r.variation_seed, r.variation_strength, r.seed_resize_from, r.eta_noise_seed_delta) == (
        "GPU", None, 0.0, None, 0)


@pytest.mark.parametrize("kwargs, words", [
    ({"rng": "TPU"}, "GPU, CPU, NV"),
    ({"variation_strength": 1.5}, "Variation strength"),
    ({"variation_seed": -2}, "Variation seed"),
    ({"seed_resize_from": "512"}, "WIDTHxHEIGHT"),
    ({"seed_resize_from": "512x9000"}, "height"),
    ({"eta_noise_seed_delta": "lots"}, "ENSD"),
])
def test_bad_noise_settings_are_one_line_errors(kwargs, words):
    with pytest.raises(RequestError) as info:
        GenerationRequest(**kwargs)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_seed_resize_from_accepts_text_and_pairs_and_zero_means_off():
    assert GenerationRequest(seed_resize_from="512x768").seed_resize_from == (512, 768)
    assert GenerationRequest(seed_resize_from=[640, 448]).seed_resize_from == (640, 448)
    assert GenerationRequest(seed_resize_from=(0, 0)).seed_resize_from is None
    assert GenerationRequest(rng="nv").rng == "NV"


def test_batch_seeds_as_a1111():
    # processing.py: all_seeds = seed + (i if subseed_strength == 0 else 0); all_subseeds = subseed + i
    plain = GenerationRequest(seed=10, batch_count=3)
    assert plain.seeds() == [10, 11, 12] and plain.variation_seeds() == [None] * 3
    varied = GenerationRequest(seed=10, variation_seed=50, variation_strength=0.3, batch_count=3)
    assert varied.seeds() == [10, 10, 10] and varied.variation_seeds() == [50, 51, 52]
    third = varied.image_request(2)
    assert (third.seed, third.variation_seed, third.batch_count) == (10, 52, 1)
    rest = varied.remaining(1)
    assert (rest.seeds(), rest.variation_seeds()) == ([10, 10], [51, 52])
    assert plain.remaining(2).seeds() == [12]


def test_a_random_variation_seed_is_drawn_only_when_variations_are_on():
    assert GenerationRequest(seed=1, variation_strength=0.5).with_seed().variation_seed is not None
    assert GenerationRequest(seed=1).with_seed().variation_seed is None


def test_request_json_round_trip_keeps_the_noise_settings():
    r = GenerationRequest(seed=1, rng="NV", variation_seed=2, variation_strength=0.25, seed_resize_from=(512, 768),
                          eta_noise_seed_delta=31337)
    assert GenerationRequest.from_json(r.to_json()) == r


def test_gpu_is_not_written_and_other_sources_are():
    assert "RNG" not in settings_line(GenerationRequest(seed=1))
    assert ", RNG: CPU, " in settings_line(GenerationRequest(seed=1, rng="CPU"))
    assert ", RNG: NV, " in settings_line(GenerationRequest(seed=1, rng="NV"))


def test_noise_keys_in_a1111s_order_and_read_back():
    r = GenerationRequest(prompt="a cat", sampler="Euler a", seed=7, clip_skip=2, rng="NV", variation_seed=99,
                          variation_strength=0.35, seed_resize_from=(512, 768), eta_noise_seed_delta=31337)
    line = settings_line(r)
    assert ("Model: m, Variation seed: 99, Variation seed strength: 0.35, Seed resize from: 512x768, Clip skip: 2, "
            "ENSD: 31337, RNG: NV, Version: picotui") in line
    back, notes = request_from_parameters(parse_parameters(a1111_parameters(r, model_name="m", model_hash=None)))
    assert notes == []
    assert (back.rng, back.variation_seed, back.variation_strength, back.seed_resize_from,
            back.eta_noise_seed_delta, back.seed) == ("NV", 99, 0.35, (512, 768), 31337, 7)


def test_keys_left_out_where_a1111_leaves_them_out():
    # strength 0: no variation keys even with a seed; ENSD only for samplers that use it (A1111's uses_ensd)
    line = settings_line(GenerationRequest(seed=1, sampler="Euler", variation_seed=5, eta_noise_seed_delta=31337))
    assert "Variation" not in line and "ENSD" not in line and "Seed resize" not in line


def test_an_a1111_png_with_variation_and_no_rng_key(tmp_path):
    text = ("a lighthouse\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1234, "
            "Size: 512x512, Model hash: 6ce0161689, Model: v1-5, Variation seed: 4321, Variation seed strength: 0.2, "
            "Seed resize from: 640x448, ENSD: 31337, Version: v1.10.1")
    recipe = read_recipe(metadata_png(tmp_path / "a.png", text))
    r = recipe.request
    assert recipe.unmatched == []
    assert (r.rng, r.variation_seed, r.variation_strength, r.seed_resize_from, r.eta_noise_seed_delta) == (
        "GPU", 4321, 0.2, (640, 448), 31337)


def test_unusable_noise_values_are_reported_not_guessed(tmp_path):
    text = ("a lighthouse\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512, Model: v1-5, "
            "RNG: TPU, Variation seed strength: 3, Seed resize from: big")
    recipe = read_recipe(metadata_png(tmp_path / "b.png", text))
    keys = sorted(line.split(":")[0] for line in recipe.unmatched)
    assert keys == ["RNG", "Seed resize from", "Variation seed strength"]
    assert recipe.request.rng == "GPU" and recipe.request.variation_strength == 0


def test_picotui_pngs_from_before_the_noise_sources_read_back_as_cpu_noise(tmp_path):
    # older picotui wrote no "rng" in its own chunk and always drew the noise on the CPU
    import json

    old = GenerationRequest(seed=3).to_dict()
    del old["rng"]
    recipe = read_recipe(metadata_png(tmp_path / "old.png", picotui=json.dumps({"version": "0.1.0", "request": old})))
    assert recipe.source == "picotui" and recipe.request.rng == "CPU"
    new = GenerationRequest(seed=3, rng="NV").to_dict()
    recipe = read_recipe(metadata_png(tmp_path / "new.png", picotui=json.dumps({"version": "0.2.0", "request": new})))
    assert recipe.request.rng == "NV"
