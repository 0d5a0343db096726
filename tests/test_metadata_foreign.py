"""Recipes from other tools' images, each file built here the way that tool writes it: A1111's text in the
EXIF UserComment of JPEG and WebP (piexif's big-endian UTF-16 as A1111 writes it, little-endian as some
civitai downloads carry), ComfyUI's `prompt` graph, InvokeAI's `invokeai_metadata`, NovelAI's
`Software`/`Comment` and Fooocus' JSON `parameters`. Hostile bytes in any of them give one clean line."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metadata_support import A1111_SAMPLE, metadata_png
from PIL import Image, PngImagePlugin

from picotui.cli import main
from picotui.engine.errors import PicoError
from picotui.engine.recipes.foreign import decode_user_comment
from picotui.engine.recipes.metadata import read_recipe
from picotui.engine.request import GenerationRequest

EXIF_IFD, USER_COMMENT = 0x8769, 0x9286


def exif_image(path, comment: bytes, fmt: str):
    """A JPEG or WebP whose Exif IFD holds `comment` as UserComment (what piexif.dump gives A1111)."""
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = comment
    Image.new("RGB", (16, 16), (200, 100, 50)).save(path, format=fmt, exif=exif)
    return path


def png_with(path, chunks: dict[str, str]):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


# ---- A1111 text in EXIF --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,suffix", [("JPEG", "jpg"), ("WEBP", "webp")])
@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_a1111_jpeg_and_webp_read_like_the_same_text_in_a_png(tmp_path, fmt, suffix, encoding):
    image = exif_image(tmp_path / f"civitai.{suffix}", b"UNICODE\0" + A1111_SAMPLE.encode(encoding), fmt)
    recipe = read_recipe(image)
    assert recipe.source == "a1111" and recipe.parameters == A1111_SAMPLE
    r = recipe.request
    assert (r.steps, r.cfg, r.seed, r.width, r.height, r.clip_skip) == (30, 7.5, 3141592653, 512, 768, 2)
    assert r.checkpoint == "v1-5-pruned-emaonly"
    png = read_recipe(metadata_png(tmp_path / "same.png", A1111_SAMPLE))
    assert (recipe.request, recipe.unmatched) == (png.request, png.unmatched)


@pytest.mark.parametrize("raw,text", [
    (b"UNICODE\0" + "caf\u00e9, Steps: 5".encode("utf-16-be"), "caf\u00e9, Steps: 5"),
    (b"UNICODE\0" + "\ufeffa cat".encode("utf-16-le"), "a cat"),  # with a byte-order mark
    (b"ASCII\0\0\0a cat", "a cat"),
    (b"\0" * 8 + "caf\u00e9".encode(), "caf\u00e9"),  # undefined code: UTF-8 in practice
    (b"a cat", "a cat"),  # no prefix at all
    (b"UNICODE\0" + b"\xd8\x00\x00a", "a"),  # a lone surrogate: dropped, not an error
])
def test_user_comment_prefixes_as_exif_defines_them(raw, text):
    assert decode_user_comment(raw) == text


def test_a_jpeg_without_settings_says_so_in_one_line(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(PicoError, match="photo.jpg has no generation settings") as info:
        read_recipe(path)
    assert "\n" not in str(info.value)


def test_picotui_info_prints_a_jpegs_recipe(tmp_path, capsys):
    image = exif_image(tmp_path / "civitai.jpg", b"UNICODE\0" + A1111_SAMPLE.encode("utf-16-be"), "JPEG")
    assert main(["info", str(image)]) == 0
    out = capsys.readouterr().out
    assert "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras" in out and "(settings from A1111 text)" in out
    assert "Not reproduced:" in out and "Hires upscale: 2" in out


# ---- ComfyUI ---------------------------------------------------------------------------------------------

# ComfyUI's default workflow as its SaveImage node stores it (API format), with a LoRA loader added.
COMFY = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "dpmpp_2m", "scheduler": "karras",
        "denoise": 1, "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "SD1.5/v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"batch_size": 1, "height": 768, "width": 512}},
    "6": {"class_type": "CLIPTextEncode",
          "inputs": {"clip": ["10", 1], "text": "beautiful scenery nature glass bottle"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["10", 1], "text": "text, watermark"}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "add_detail.safetensors", "strength_model": 0.6,
                                                  "strength_clip": 0.6, "model": ["4", 0], "clip": ["4", 1]}},
}


def test_comfyui_workflow(tmp_path):
    path = png_with(tmp_path / "ComfyUI_00001_.png", {"prompt": json.dumps(COMFY),
                                                     "workflow": json.dumps({"nodes": [], "links": []})})
    recipe = read_recipe(path)
    r = recipe.request
    assert recipe.source == "comfyui"
    assert r.prompt == "beautiful scenery nature glass bottle <lora:add_detail:0.6>"
    assert r.negative_prompt == "text, watermark"
    assert (r.steps, r.cfg, r.width, r.height) == (20, 8.0, 512, 768)
    assert (r.sampler, r.schedule_type) == ("DPM++ 2M", "Karras") and r.checkpoint == "v1-5-pruned-emaonly.safetensors"
    # ComfyUI's seeds are 64-bit; A1111's (and picotui's) stop at 2**32 - 1: named, not wrapped
    assert r.seed is None and any(line.startswith("Seed: 156680208700286 (") for line in recipe.unmatched)
    assert not any(line.startswith("RNG") for line in recipe.unmatched)  # ComfyUI's noise is CPU noise


def test_comfyui_webp(tmp_path):
    """ComfyUI's SaveAnimatedWEBP: the graph as "prompt:{...}" in IFD0's Model tag, the workflow in Make."""
    exif = Image.Exif()
    exif[0x0110] = "prompt:" + json.dumps(COMFY)
    exif[0x010F] = "workflow:" + json.dumps({"nodes": [], "links": []})
    path = tmp_path / "ComfyUI_00003_.webp"
    Image.new("RGB", (16, 16)).save(path, format="WEBP", exif=exif)
    recipe = read_recipe(path)
    assert recipe.source == "comfyui" and recipe.request.steps == 20 and (recipe.request.sampler, recipe.request.schedule_type) == ("DPM++ 2M", "Karras")
    assert recipe.request.negative_prompt == "text, watermark"


def test_comfyui_files_are_looked_up_in_the_library(tmp_path):
    from library_support import sd1, write

    from picotui.engine.models.library import Library

    models = tmp_path / "models"
    for sub in ("checkpoints", "loras"):
        (models / sub).mkdir(parents=True)
    write(models / "checkpoints" / "v1-5-pruned-emaonly.safetensors", sd1())
    recipe = read_recipe(png_with(tmp_path / "c.png", {"prompt": json.dumps(COMFY)}), Library(models, tmp_path / "c"))
    assert recipe.request.checkpoint == "v1-5-pruned-emaonly.safetensors"
    assert not any(line.startswith("Model:") for line in recipe.unmatched)  # found, under ComfyUI's subfolder name
    assert any("add_detail" in line for line in recipe.unmatched)  # the LoRA is not there: named


def test_comfyui_img2img_and_unknown_samplers_are_named(tmp_path):
    graph = json.loads(json.dumps(COMFY))
    graph["3"]["inputs"] |= {"sampler_name": "dpmpp_2m_cfg_pp", "denoise": 0.5, "latent_image": ["11", 0]}
    graph["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["4", 2]}}
    graph["12"] = {"class_type": "LoadImage", "inputs": {"image": "photo.png", "upload": "image"}}
    graph["3"]["inputs"]["positive"] = ["13", 0]
    graph["13"] = {"class_type": "ConditioningCombine",
                   "inputs": {"conditioning_1": ["6", 0], "conditioning_2": ["6", 0]}}
    graph["7"]["inputs"]["text"] = ["14", 0]  # the text widget converted to an input, fed by a string node
    graph["14"] = {"class_type": "PrimitiveString", "inputs": {"value": "text, watermark"}}
    recipe = read_recipe(png_with(tmp_path / "c.png", {"prompt": json.dumps(graph)}))
    notes = " | ".join(recipe.unmatched)
    assert "Sampler: dpmpp_2m_cfg_pp" in notes and "latent from" not in notes  # img2img is read
    assert "Init image: photo.png (image to image: the source picture is not in the recipe; pick photo.png" in notes
    assert recipe.request.denoising_strength == 0.5
    assert "Prompt: from a ConditioningCombine node" in notes
    assert recipe.request.negative_prompt == "text, watermark"


# ---- InvokeAI, NovelAI, Fooocus -----------------------------------------------------------------------------

def test_invokeai_metadata(tmp_path):
    meta = {"generation_mode": "txt2img", "positive_prompt": "a cat in a hat", "negative_prompt": "blurry",
            "width": 512, "height": 640, "seed": 42, "rand_device": "cpu", "cfg_scale": 7.5, "steps": 30,
            "scheduler": "euler_a", "clip_skip": 1, "app_version": "4.2.9",
            "model": {"key": "k", "hash": "blake3:00", "name": "dreamshaper_8", "base": "sd-1", "type": "main"},
            "loras": [{"model": {"key": "l", "name": "add_detail", "base": "sd-1"}, "weight": 0.75}]}
    recipe = read_recipe(png_with(tmp_path / "invoke.png", {"invokeai_metadata": json.dumps(meta)}))
    r = recipe.request
    assert recipe.source == "invokeai"
    assert r.prompt == "a cat in a hat <lora:add_detail:0.75>" and r.negative_prompt == "blurry"
    assert (r.steps, r.cfg, r.seed, r.width, r.height, r.sampler) == (30, 7.5, 42, 512, 640, "Euler a")
    assert r.clip_skip == 2  # InvokeAI counts skipped layers: 1 skipped is A1111's Clip skip 2
    assert r.checkpoint == "dreamshaper_8"


def test_invokeai_karras_and_sdxl_are_mapped_and_named(tmp_path):
    meta = {"positive_prompt": "x", "scheduler": "dpmpp_2m_k", "steps": 20,
            "model": {"name": "juggernautXL", "base": "sdxl"}, "rand_device": "cuda"}
    recipe = read_recipe(png_with(tmp_path / "invoke.png", {"invokeai_metadata": json.dumps(meta)}))
    assert (recipe.request.sampler, recipe.request.schedule_type) == ("DPM++ 2M", "Karras")
    assert any("sdxl" in line and "1.x" in line for line in recipe.unmatched)


def test_novelai_image(tmp_path):
    comment = {"prompt": "1girl, {masterpiece}", "steps": 28, "height": 768, "width": 512, "scale": 5.0,
               "uncond_scale": 1.0, "cfg_rescale": 0.0, "seed": 1234, "n_samples": 1, "noise_schedule": "native",
               "sampler": "k_euler_ancestral", "uc": "lowres, bad anatomy"}
    chunks = {"Title": "AI generated image", "Description": "1girl, {masterpiece}", "Software": "NovelAI",
              "Source": "Stable Diffusion 1D44365E", "Generation time": "5.5", "Comment": json.dumps(comment)}
    recipe = read_recipe(png_with(tmp_path / "nai.png", chunks))
    r = recipe.request
    assert recipe.source == "novelai"
    assert (r.prompt, r.negative_prompt) == ("1girl, {masterpiece}", "lowres, bad anatomy")
    assert (r.steps, r.cfg, r.seed, r.width, r.height, r.sampler) == (28, 5.0, 1234, 512, 768, "Euler a")
    notes = " | ".join(recipe.unmatched)
    assert "Stable Diffusion 1D44365E (NovelAI's own model" in notes and "{braces}" in notes


def test_fooocus_image(tmp_path):
    params = {"prompt": "a cat", "negative_prompt": "ugly", "styles": "['Fooocus V2', 'Fooocus Enhance']",
              "performance": "Speed", "resolution": "(512, 768)", "guidance_scale": 4, "sharpness": 2,
              "adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "realisticVision_v51.safetensors",
              "refiner_model": "None", "refiner_switch": 0.5, "sampler": "dpmpp_2m_sde_gpu",
              "scheduler": "karras", "seed": "12345", "steps": 30,
              "lora_combined_1": "add_detail.safetensors : 0.5", "version": "Fooocus v2.5.5"}
    chunks = {"parameters": json.dumps(params), "fooocus_scheme": "fooocus"}
    recipe = read_recipe(png_with(tmp_path / "fooocus.png", chunks))
    r = recipe.request
    assert recipe.source == "fooocus"
    assert (r.prompt, r.negative_prompt) == ("a cat <lora:add_detail:0.5>", "ugly")
    assert (r.steps, r.cfg, r.seed, r.width, r.height) == (30, 4.0, 12345, 512, 768)
    assert (r.sampler, r.schedule_type) == ("DPM++ 2M SDE", "Karras") and r.checkpoint == "realisticVision_v51.safetensors"
    notes = " | ".join(recipe.unmatched)
    assert "Styles:" in notes and "sharpness: 2" in notes and "adm_guidance" in notes


def test_fooocus_a1111_scheme_is_plain_a1111_text(tmp_path):
    recipe = read_recipe(png_with(tmp_path / "f.png", {"parameters": A1111_SAMPLE, "fooocus_scheme": "a1111"}))
    assert recipe.source == "a1111" and recipe.request.steps == 30


# ---- hostile files ----------------------------------------------------------------------------------------

def _clean(path):
    from picotui.engine.models.library import Library

    library = Library(path.parent / "models", path.parent / "cache")  # empty: every named file is "missing"
    try:
        recipe = read_recipe(path, library)
    except PicoError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
    else:
        assert isinstance(recipe.request, GenerationRequest)
        assert all("\n" not in line for line in recipe.unmatched)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), kind=st.sampled_from(["jpeg", "webp"]))
def test_any_bytes_after_a_jpeg_or_webp_signature_give_a_recipe_or_one_clean_line(tmp_path, data, kind):
    head = b"\xff\xd8\xff" if kind == "jpeg" else b"RIFF" + len(data).to_bytes(4, "little") + b"WEBP"
    path = tmp_path / f"fuzz.{kind}"
    path.write_bytes(head + data)
    _clean(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(comment=st.binary(max_size=512))
def test_any_user_comment_gives_a_recipe_or_one_clean_line(tmp_path, comment):
    _clean(exif_image(tmp_path / "c.jpg", comment, "JPEG"))


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4), max_leaves=20)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["comfy", "invokeai_metadata", "Comment", "parameters"]), value=JSONISH,
       node=st.dictionaries(st.sampled_from(["seed", "steps", "cfg", "sampler_name", "scheduler", "model",
                                             "positive", "negative", "latent_image", "denoise"]), JSONISH))
def test_any_json_in_other_tools_chunks_gives_a_recipe_or_one_clean_line(tmp_path, key, value, node):
    if key == "comfy":  # a KSampler with arbitrary inputs, links that point anywhere (themselves included)
        chunks = {"prompt": json.dumps({"1": {"class_type": "KSampler", "inputs": node | {"model": ["1", 0]}},
                                        "2": value})}
    elif key == "Comment":
        chunks = {"Software": "NovelAI", "Comment": json.dumps(value if isinstance(value, dict) else node)}
    elif key == "parameters":
        chunks = {"parameters": json.dumps(value if isinstance(value, dict) else node), "fooocus_scheme": "fooocus"}
    else:
        chunks = {key: json.dumps(value if isinstance(value, dict) else node)}
    _clean(png_with(tmp_path / "j.png", chunks))


@pytest.mark.parametrize("chunks", [
    {"prompt": "{" * 5000}, {"prompt": "[" * 100_000},
    {"invokeai_metadata": '{"a": ' * 50_000 + "1" + "}" * 50_000},
    {"Software": "NovelAI", "Comment": "not json"},
    {"prompt": json.dumps({"1": {"class_type": "KSampler", "inputs": {"positive": ["1", 0], "model": ["2", 0]}},
                           "2": {"class_type": "Reroute", "inputs": {"input": ["2", 0]}}})},  # cycles
])
def test_damaged_or_cyclic_metadata_is_one_clean_line(tmp_path, chunks):
    _clean(png_with(tmp_path / "bad.png", chunks))


# ---- the TUI's Open dialog ----------------------------------------------------------------------------------

async def test_open_dialog_loads_a_webp_and_a_comfyui_png_into_the_form(tmp_path):
    from paths_support import make_paths
    from textual.widgets import Input

    from picotui.ui.app import PicoApp

    webp = exif_image(tmp_path / "civitai.webp", b"UNICODE\0" + A1111_SAMPLE.encode("utf-16-le"), "WEBP")
    graph = json.loads(json.dumps(COMFY))
    graph["3"]["inputs"]["seed"] = 4242  # within A1111's range, so the form takes it
    comfy = png_with(tmp_path / "ComfyUI_00002_.png", {"prompt": json.dumps(graph)})
    app = PicoApp(make_paths(tmp_path), graphics_choice="none", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        for path, expected in ((webp, (30, "7.5", "3141592653", "512", "768")),
                               (comfy, (20, "8", "4242", "512", "768"))):
            await pilot.press("ctrl+p", *"Open")  # the one command that opens an image's settings
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            app.screen.query_one(Input).value = str(path)  # the dialog's path field (typing it is tested elsewhere)
            await pilot.press("enter")
            await pilot.pause()
            request = app.query_one("#form").request()
            assert request.steps == expected[0]
            assert [app.query_one(f"#{name}", Input).value for name in ("cfg", "seed", "width", "height")] == \
                list(expected[1:])
        assert request.prompt == "beautiful scenery nature glass bottle <lora:add_detail:0.6>"
