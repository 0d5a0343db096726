"""A1111 "parameters" text: written exactly as A1111 writes it, read as A1111 reads it, mapped back to a request
(and matched against a models/ library). Hostile and fuzzed input: test_metadata_hostile.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metadata_support import A1111_SAMPLE, metadata_png
from PIL import Image

from picotui.engine.errors import RequestError
from picotui.engine.recipes.infotext import a1111_parameters
from picotui.engine.recipes.metadata import parse_parameters, read_recipe, request_from_parameters, sampler_from_a1111
from picotui.engine.request import GenerationRequest, LoraSpec
from picotui.engine.sampling.samplers import SAMPLERS

FULL = GenerationRequest(prompt="a corgi, sitting", negative_prompt="blurry", checkpoint="dreamshaper_8.safetensors",
                         sampler="DPM++ 2M SDE Karras", steps=24, cfg=7, width=512, height=768, seed=1234567890,
                         clip_skip=2, loras=(LoraSpec("addDetail", 0.6), LoraSpec("style.safetensors", 1.0)),
                         rng="CPU")


def test_golden_full_parameters_text():
    # Model/VAE hashes: 10 hex of the file's sha256; Lora hashes: 12 hex of the addnet hash; TI: 12 of sha256
    text = a1111_parameters(FULL, model_name="dreamshaper_8", model_hash="879db523c3",
                            vae_name="vae-ft-mse-840000-ema-pruned.safetensors", vae_hash="735e4c3a44",
                            lora_hashes={"addDetail": "7c6bad76eb5b", "style": "0123456789ab", "gone": None},
                            ti_hashes={"easynegative": "c74b4e810b03"})
    assert text == (
        "a corgi, sitting <lora:addDetail:0.6> <lora:style:1>\n"
        "Negative prompt: blurry\n"
        "Steps: 24, Sampler: DPM++ 2M SDE, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 512x768, "
        "Model hash: 879db523c3, Model: dreamshaper_8, VAE hash: 735e4c3a44, "
        "VAE: vae-ft-mse-840000-ema-pruned.safetensors, Clip skip: 2, RNG: CPU, "
        "Lora hashes: \"addDetail: 7c6bad76eb5b, style: 0123456789ab\", TI hashes: \"easynegative: c74b4e810b03\", "
        "Version: picotui 0.1.0")


def test_hashes_that_could_not_be_computed_are_left_out():
    text = a1111_parameters(FULL, model_name="dreamshaper_8", model_hash=None, vae_name="vae.safetensors",
                            vae_hash=None, lora_hashes={"addDetail": None}, ti_hashes={})
    assert "hash" not in text.split("\n")[-1].lower()
    assert "Model: dreamshaper_8, VAE: vae.safetensors" in text


def test_golden_minimal_parameters_text():
    request = GenerationRequest(prompt="a cat", negative_prompt="", sampler="Euler a", steps=20, cfg=7.5, seed=1,
                                rng="CPU")
    text = a1111_parameters(request, model_name="tiny, v1: final", model_hash="0123456789")
    assert text == ("a cat\n"
                    "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.5, Seed: 1, Size: 512x512, "
                    "Model hash: 0123456789, Model: \"tiny, v1: final\", RNG: CPU, Version: picotui 0.1.0")
    # Clip skip 1 and no VAE: left out, as A1111 does; the quoted model name reads back whole
    assert parse_parameters(text)["Model"] == "tiny, v1: final"


def test_parse_follows_a1111_rules():
    p = parse_parameters(A1111_SAMPLE)
    assert p["Prompt"] == "masterpiece, best quality, 1girl, (blue eyes:1.2),\ncity street at night <lora:add_detail:0.6>"
    assert p["Negative prompt"] == "(worst quality, low quality:1.4), easynegative,\nlowres"
    assert p["Lora hashes"] == "add_detail: 7c6bad76eb" and p["Size"] == "512x768" and p["Steps"] == "30"
    # fewer than 3 pairs on the last line: it is part of the prompt
    assert parse_parameters("a: b, c: d") == {"Prompt": "a: b, c: d", "Negative prompt": ""}
    assert parse_parameters("only a prompt") == {"Prompt": "only a prompt", "Negative prompt": ""}


def test_an_a1111_png_reads_back_with_unmatched_keys_reported(tmp_path):
    recipe = read_recipe(metadata_png(tmp_path / "00001-3141592653.png", A1111_SAMPLE))
    r = recipe.request
    assert recipe.source == "a1111" and recipe.parameters == A1111_SAMPLE
    assert (r.steps, r.sampler, r.schedule_type, r.cfg, r.seed, r.width, r.height, r.clip_skip) == (
        30, "DPM++ 2M", "Karras", 7.5, 3141592653, 512, 768, 2)
    assert r.checkpoint == "v1-5-pruned-emaonly" and r.vae == "vae-ft-mse-840000-ema-pruned.safetensors"
    assert r.prompt.endswith("<lora:add_detail:0.6>")  # the engine applies prompt tags, as A1111 does
    assert recipe.unmatched == []  # hires fix is read too (tests/test_recipes_second_pass.py)
    assert (r.hires, r.hires_scale, r.hires_upscaler, r.denoising_strength) == (True, 2.0, "Latent", 0.45)
    # no RNG key: A1111's default, GPU noise; ENSD is A1111's eta noise seed delta
    assert (r.rng, r.eta_noise_seed_delta, r.variation_strength, r.seed_resize_from) == ("GPU", 31337, 0.0, None)


def test_old_style_sampler_names_and_out_of_range_values(tmp_path):
    text = ("a house\nSteps: 200, Sampler: DPM++ 2M Karras, CFG scale: 45, Seed: 5, Size: 500x512, "
            "Model: foo, Clip skip: 12, RNG: CPU")
    recipe = read_recipe(metadata_png(tmp_path / "old.png", text))
    assert (recipe.request.sampler, recipe.request.schedule_type, recipe.request.seed) == ("DPM++ 2M", "Karras", 5)
    defaults = GenerationRequest()
    assert (recipe.request.steps, recipe.request.cfg, recipe.request.width, recipe.request.clip_skip) == (
        defaults.steps, defaults.cfg, defaults.width, defaults.clip_skip)
    bad = " | ".join(recipe.unmatched)
    for piece in ("Steps: 200", "CFG scale: 45", "Size: 500x512", "multiple of 8", "Clip skip: 12"):
        assert piece in bad


def read_sampler(sampler, schedule):
    """(sampler, schedule type) of the request a recipe with these A1111 values reads back as, and its notes."""
    name, label, note = sampler_from_a1111(sampler, schedule)
    request = GenerationRequest(sampler=name, schedule_type=label) if name else None
    return ((request.sampler, request.schedule_type) if request else None), note


@pytest.mark.parametrize("sampler, schedule, expected", [
    ("DPM++ 2M", "Karras", ("DPM++ 2M", "Karras")),
    ("DPM++ 2M", "Automatic", ("DPM++ 2M", "Karras")),  # A1111's automatic schedule for DPM++ 2M is Karras
    ("DPM++ 2M", None, ("DPM++ 2M", "Uniform")),  # before A1111 1.9 this name meant the plain schedule
    ("DPM++ 2M Karras", None, ("DPM++ 2M", "Karras")),
    ("DPM++ 2M SDE", "Karras", ("DPM++ 2M SDE", "Karras")),
    ("DPM++ 2M SDE", "Automatic", ("DPM++ 2M SDE", "Exponential")),  # A1111 1.9+: its automatic schedule
    ("DPM++ SDE Karras", None, ("DPM++ SDE", "Karras")),
    ("Euler a", "Automatic", ("Euler a", "Automatic")),
    ("Euler", "Uniform", ("Euler", "Uniform")),
    ("Euler", "Exponential", ("Euler", "Exponential")),
    ("DDIM", None, ("DDIM", "Automatic")),
    ("DDIM", "Karras", ("DDIM", "Automatic")),  # A1111's timestep samplers ignore the schedule type
    ("DPM2", "Automatic", ("DPM2", "Karras")),
    ("DPM2 a", None, ("DPM2 a", "Uniform")),  # before 1.9: DPM2 a meant the uniform schedule
    ("DPM++ 3M SDE", "sgm_uniform", ("DPM++ 3M SDE", "SGM Uniform")),  # A1111's internal name
    ("Restart", "Polyexponential", ("Restart", "Polyexponential")),
    ("LCM", "Automatic", ("LCM", "Automatic")),
])
def test_sampler_and_schedule_type_map_to_our_fields(sampler, schedule, expected):
    assert read_sampler(sampler, schedule) == (expected, None)


def test_unknown_samplers_and_schedules_are_reported():
    fields, note = read_sampler("Euler", "Align Your Steps")
    assert fields == ("Euler", "Automatic") and note.startswith("Schedule type: Align Your Steps") and "\n" not in note
    fields, note = read_sampler("DPM adaptive", "Automatic")
    assert fields is None and "DPM adaptive" in note


def test_reading_an_a1111_text_takes_both_fields(tmp_path):
    text = "a fox\nSteps: 20, Sampler: DPM++ 2M SDE, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x512"
    recipe = read_recipe(metadata_png(tmp_path / "sde.png", text))
    assert (recipe.request.sampler, recipe.request.schedule_type) == ("DPM++ 2M SDE", "Exponential")
    assert not [line for line in recipe.unmatched if "Sampler" in line or "Schedule" in line]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_survives_the_a1111_text(name):
    request = GenerationRequest(sampler=name, seed=7)
    text = a1111_parameters(request, model_name="m", model_hash="0123456789")
    assert f"Sampler: {name}," in text
    back = request_from_parameters(parse_parameters(text))[0]
    assert (back.sampler, back.schedule_type) == (request.sampler, request.schedule_type)


@pytest.mark.parametrize("sampler, schedule, written", [
    ("DPM++ 2M", "Automatic", "Karras"),  # A1111 records the schedule "Automatic" ran
    ("DPM++ 2M SDE Karras", "Automatic", "Karras"),
    ("DPM++ 3M SDE", "Automatic", "Exponential"),
    ("Euler", "Automatic", "Automatic"),
    ("Euler", "SGM Uniform", "SGM Uniform"),
    ("UniPC", "Karras", "Automatic"),
])
def test_the_schedule_type_is_written_as_a1111_writes_it(sampler, schedule, written):
    request = GenerationRequest(sampler=sampler, schedule_type=schedule, seed=1)
    text = a1111_parameters(request, model_name="m", model_hash=None)
    assert f"Sampler: {request.sampler}, Schedule type: {written}, " in text


def test_old_picotui_requests_keep_their_schedule():
    # before sampler and schedule were two fields, picotui's "DPM++ 2M" meant the uniform schedule
    assert GenerationRequest.from_dict({"sampler": "DPM++ 2M"}).schedule_type == "Uniform"
    assert GenerationRequest.from_dict({"sampler": "DPM++ 2M Karras"}).schedule_type == "Karras"
    assert GenerationRequest.from_dict({"sampler": "Euler", "scheduler": "Karras"}).schedule_type == "Karras"
    with pytest.raises(RequestError) as err:
        GenerationRequest(schedule_type="Beta")
    assert "Karras" in str(err.value) and "\n" not in str(err.value)


line_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200).map(str.strip)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=line_text.filter(lambda s: not s.startswith("Negative prompt:")), negative=line_text,
       steps=st.integers(1, 150), cfg=st.sampled_from([1, 4.5, 7, 12.25, 30]), seed=st.integers(0, 2**32 - 1),
       clip=st.integers(1, 4), model=line_text.filter(bool), sampler=st.sampled_from(list(SAMPLERS)))
def test_a1111_text_round_trip(prompt, negative, steps, cfg, seed, clip, model, sampler):
    request = GenerationRequest(prompt=prompt, negative_prompt=negative, steps=steps, cfg=cfg, seed=seed,
                                clip_skip=clip, sampler=sampler, checkpoint=model, width=640, height=384)
    params = parse_parameters(a1111_parameters(request, model_name=model, model_hash="0123456789"))
    back, notes = request_from_parameters(params)
    assert back == request and notes == []


def test_with_a_library_missing_models_are_reported_and_hashes_find_renamed_files(tmp_path):
    import hashlib

    from library_support import CASES, sd1, write

    from picotui.engine.models.library import Library

    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    (root / "loras").mkdir()
    ckpt = write(root / "checkpoints" / "renamed_by_user.safetensors", sd1())
    write(root / "loras" / "add_detail.safetensors", CASES["kohya.safetensors"][0])
    library = Library(root, tmp_path / "cache")
    text = A1111_SAMPLE.replace("6ce0161689", hashlib.sha256(ckpt.read_bytes()).hexdigest()[:10])
    png = metadata_png(tmp_path / "a.png", text)
    recipe = read_recipe(png, library)
    assert recipe.request.checkpoint == "v1-5-pruned-emaonly"  # hash unknown until hashed: reported
    assert any(line.startswith("Model: v1-5-pruned-emaonly (No checkpoint named") for line in recipe.unmatched)
    assert any(line.startswith("VAE: vae-ft-mse") for line in recipe.unmatched)
    assert not any(line.startswith("LoRA") for line in recipe.unmatched)  # add_detail is there
    library.autov2(library.resolve("renamed_by_user", "checkpoint"))
    recipe = read_recipe(png, library)
    assert recipe.request.checkpoint == "renamed_by_user.safetensors"
    assert not any(line.startswith("Model:") for line in recipe.unmatched)


def test_a_picotui_chunk_with_bad_values_falls_back_to_the_a1111_text(tmp_path):
    import json

    path = metadata_png(tmp_path / "future.png",
                        "a fox\nSteps: 9, Sampler: Euler, CFG scale: 5, Seed: 3, Size: 64x64, Model: m",
                        picotui=json.dumps({"version": "9.0", "request": {"steps": 999}}))
    recipe = read_recipe(path)
    assert recipe.source == "a1111" and recipe.request.steps == 9 and recipe.request.prompt == "a fox"
    assert any("picotui settings ignored" in line for line in recipe.unmatched)
    metadata_png(path, picotui=json.dumps({"version": "9.0", "request": {"steps": 10, "refiner_switch_at": 0.8}}))
    recipe = read_recipe(path)
    assert recipe.request.steps == 10 and recipe.unmatched == ["refiner_switch_at: 0.8 (unknown setting)"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.text(max_size=300), negative=st.text(max_size=100), seed=st.integers(0, 2**32 - 1),
       weight=st.floats(0, 2), sampler=st.sampled_from(list(SAMPLERS)))
def test_any_request_round_trips_through_a_png(tmp_path, prompt, negative, seed, weight, sampler):
    from picotui.engine.recipes.output import save_png

    request = GenerationRequest(prompt=prompt, negative_prompt=negative, seed=seed, sampler=sampler,
                                loras=(LoraSpec("x", weight),))
    text = a1111_parameters(request, model_name="demo", model_hash=None)
    path = save_png(Image.new("RGB", (8, 8)), tmp_path, request, text)
    recipe = read_recipe(path)
    assert recipe.request == request and recipe.parameters == text
    path.unlink()


def test_with_a_library_renamed_loras_and_vaes_are_found_by_their_a1111_hashes(tmp_path):
    import hashlib

    from library_support import CASES, sd1, write

    from picotui.engine.models.library import Library

    root = tmp_path / "models"
    for sub in ("checkpoints", "vae", "loras", "embeddings"):
        (root / sub).mkdir(parents=True)
    write(root / "checkpoints" / "v1-5-pruned-emaonly.safetensors", sd1())
    vae = write(root / "vae" / "my_vae.safetensors", CASES["vae-ldm.safetensors"][0])
    write(root / "loras" / "detail_tweaker.safetensors", CASES["kohya.safetensors"][0])
    write(root / "embeddings" / "easyneg_v2.safetensors", CASES["emb.safetensors"][0])
    library = Library(root, tmp_path / "cache")
    lora_hash = library.lora_hash(library.resolve("detail_tweaker", "lora"))
    ti_hash = library.ti_hash(library.resolve("easyneg_v2", "embedding"))
    library.autov2(library.resolve("my_vae", "vae"))
    text = (A1111_SAMPLE.replace("7c6bad76eb", lora_hash).replace("c74b4e810b", ti_hash)
            .replace("735e4c3a44", hashlib.sha256(vae.read_bytes()).hexdigest()[:10])
            .replace('TI hashes: "easynegative', 'TI hashes: "missingTI: 0123456789ab, easynegative'))
    recipe = read_recipe(metadata_png(tmp_path / "a.png", text), library)
    request = recipe.request
    assert request.prompt.endswith("city street at night <lora:detail_tweaker:0.6>")  # the tag names our file
    assert request.vae == "my_vae.safetensors"
    assert not [line for line in recipe.unmatched if line.startswith(("LoRA", "VAE", "Model"))]
    embedding_notes = sorted(line for line in recipe.unmatched if line.startswith("Embedding"))
    assert embedding_notes[0].startswith("Embedding: easynegative (it is easyneg_v2.safetensors here")
    assert embedding_notes[1].startswith("Embedding: missingTI (not in models/embeddings")
