"""The second pass in recipes: A1111's img2img and hires fix keys written where and as A1111 writes them
(modules/processing.py create_infotext, StableDiffusionProcessingTxt2Img.init and calculate_target_resolution),
read back as A1111's paste reads them (infotext_utils: "Hires resize" splits into -1/-2, hires fix is on with a
Denoising strength and Hires upscale/upscaler/resize-1; sd_samplers.get_hr_sampler_and_scheduler), and
the source picture of img2img named, never embedded."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
from metadata_support import metadata_png

from picotui.engine.models.library import Library
from picotui.engine.recipes.infotext import PICOTUI_CHUNK, a1111_parameters, picotui_chunk
from picotui.engine.recipes.metadata import Recipe, parse_parameters, read_recipe, request_from_parameters
from picotui.engine.recipes.parity import parity_report
from picotui.engine.request import GenerationRequest

BASE = GenerationRequest(prompt="a castle, at dusk", negative_prompt="blurry", seed=7, steps=20, width=512,
                         height=768, sampler="Euler a", schedule_type="Automatic", cfg=7.0)


def settings(request: GenerationRequest, **kw) -> str:
    return a1111_parameters(request, model_name="v1-5-pruned-emaonly", model_hash="6ce0161689",
                            version="9.9.9", **kw).split("\n")[-1]


# ---- writing ---------------------------------------------------------------------------------------------

def test_a_hires_recipe_is_written_in_a1111s_order():
    text = settings(replace(BASE, hires=True, denoising_strength=0.45, hires_upscaler="4x-UltraSharp",
                            hires_steps=10, clip_skip=2), lora_hashes={"add_detail": "7c6bad76eb"})
    # A1111 1.10: Denoising strength after Seed resize from and before Clip skip; the hires keys from its
    # extra generation parameters, before the extra networks' hashes
    assert text == ("Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 7, Size: 512x768, "
                    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, Clip skip: 2, "
                    "Hires upscale: 2, Hires steps: 10, Hires upscaler: 4x-UltraSharp, "
                    "Lora hashes: \"add_detail: 7c6bad76eb\", Version: picotui 9.9.9")


def test_hires_keys_appear_only_where_a1111_writes_them():
    same = settings(replace(BASE, hires=True, hires_sampler="Euler a", hires_prompt=BASE.prompt,
                            hires_negative_prompt="blurry", hires_schedule_type="Automatic"))
    assert "Hires sampler" not in same and "Hires prompt" not in same and "Hires negative prompt" not in same
    assert "Hires steps" not in same and "Hires schedule type" not in same  # steps 0: as many as the first pass
    assert "Denoising strength: 0.75" in same and "Hires upscale: 2, Hires upscaler: Latent" in same
    other = settings(replace(BASE, hires=True, hires_resize=(1024, 0), hires_sampler="DPM++ 2M",
                             hires_schedule_type="Karras", hires_prompt="a castle, sharp: detailed",
                             hires_negative_prompt="lowres\nugly", hires_upscaler="Latent (bicubic antialiased)"),
                     ti_hashes={"easynegative": "c74b4e810b"})
    assert other.endswith("Hires sampler: DPM++ 2M, Hires prompt: \"a castle, sharp: detailed\", "
                          "Hires negative prompt: \"lowres\\nugly\", Hires resize: 1024x0, "
                          "Hires upscaler: Latent (bicubic antialiased), TI hashes: \"easynegative: c74b4e810b\", "
                          "Hires schedule type: Karras, Version: picotui 9.9.9")
    assert "Hires upscale:" not in other and "\n" not in other


def test_text_to_image_writes_no_second_pass_keys():
    text = settings(BASE)
    assert "Denoising strength" not in text and "Hires" not in text and "Init image" not in text


def test_img2img_names_its_source_by_file_name_and_hash_never_the_pixels():
    request = replace(BASE, init_image="/photos/holiday, 2024/beach.png", init_image_hash="0a1b2c3d4e",
                      denoising_strength=0.6, resize_mode="Crop and resize")
    text = settings(request)
    assert ("Denoising strength: 0.6, Init image: beach.png, Init image file hash: 0a1b2c3d4e, "
            "Resize mode: Crop and resize, Version") in text
    assert "Mask blur" not in text and "Hires" not in text  # no inpainting in picotui
    assert "Resize mode" not in settings(replace(request, resize_mode="Just resize"))  # A1111's default


# ---- round trips -----------------------------------------------------------------------------------------

ROUND_TRIPS = {
    "img2img": dict(init_image="src.png", init_image_hash="0123456789", denoising_strength=0.35,
                    resize_mode="Resize and fill"),
    "img2img latent resize": dict(init_image="src.png", denoising_strength=0.8,
                                  resize_mode="Just resize (latent upscale)"),
    "hires by scale": dict(hires=True, hires_scale=1.5, denoising_strength=0.55),
    "hires resize": dict(hires=True, hires_resize=(1024, 1280), hires_steps=12, hires_upscaler="Lanczos"),
    "hires resize one side": dict(hires=True, hires_resize=(0, 1536), hires_upscaler="Latent (nearest-exact)"),
    "hires other pass": dict(hires=True, hires_sampler="DPM++ 2M", hires_schedule_type="Exponential",
                             hires_prompt="a castle, (sharp:1.2)", hires_negative_prompt="blurry, noise",
                             hires_upscaler="4x-UltraSharp", hires_steps=8, denoising_strength=0.3),
    "hires other schedule only": dict(hires=True, hires_schedule_type="Karras"),
}


@pytest.mark.parametrize("fields", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_request_to_parameters_and_back(fields):
    request = replace(BASE, **fields)
    text = a1111_parameters(request, model_name="v1-5-pruned-emaonly", model_hash="6ce0161689")
    back, notes = request_from_parameters(parse_parameters(text))
    expect = replace(request, checkpoint="v1-5-pruned-emaonly", init_image=None, init_image_hash=None)
    assert back == expect
    if request.init_image:  # the source picture is not in the file: one line names it
        assert len(notes) == 1 and notes[0].startswith("Init image: src.png") and "pick src.png" in notes[0]
        assert ("0123456789" in notes[0]) == bool(request.init_image_hash)
    else:
        assert notes == []


# ---- reading A1111's texts -------------------------------------------------------------------------------

CIVITAI = ("1girl, city street at night\nNegative prompt: lowres\n"
           "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768, "
           "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, Hires upscale: 2, "
           "Hires steps: 10, Hires upscaler: 4x-UltraSharp, Version: v1.10.1")


def test_a_civitai_hires_recipe_reads_back_and_names_the_missing_upscaler(tmp_path):
    recipe = read_recipe(metadata_png(tmp_path / "civitai.png", CIVITAI))
    r = recipe.request
    assert (r.hires, r.hires_scale, r.hires_resize, r.hires_steps, r.hires_upscaler, r.denoising_strength) == (
        True, 2.0, None, 10, "4x-UltraSharp", 0.45)
    assert (r.hires_sampler, r.hires_schedule_type, r.hires_prompt, r.hires_negative_prompt) == ("", "", "", "")
    assert (r.width, r.height) == (512, 768) and r.hires_size()[:2] == (1024, 1536)  # Size is the first pass's
    assert recipe.unmatched == []
    library = Library(tmp_path / "models", tmp_path / "cache")
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    checked = read_recipe(tmp_path / "civitai.png", library)
    lines = [n for n in checked.unmatched if n.startswith("Hires upscaler:")]
    assert len(lines) == 1 and "4x-UltraSharp" in lines[0] and "\n" not in lines[0]
    latent = read_recipe(metadata_png(tmp_path / "l.png", CIVITAI.replace("4x-UltraSharp", "Latent (bicubic)")),
                         library)
    assert not any(n.startswith("Hires upscaler") for n in latent.unmatched)


def test_an_upscaler_model_in_the_library_is_found_by_its_name_or_a1111s(tmp_path):
    from upscaler_support import build_models

    build_models(tmp_path / "models")  # tiny spandrel models in models/upscalers
    folder = tmp_path / "models" / "upscalers"
    (folder / "tiny-esrgan-4x.safetensors").rename(folder / "RealESRGAN_x4plus.safetensors")
    (tmp_path / "models" / "checkpoints").mkdir()
    library = Library(tmp_path / "models", tmp_path / "cache")
    for name in ("R-ESRGAN 4x+", "RealESRGAN_x4plus", "tiny-compact-2x"):  # A1111 names the first file so
        recipe = read_recipe(metadata_png(tmp_path / "u.png", CIVITAI.replace("4x-UltraSharp", name)), library)
        assert not any(n.startswith("Hires upscaler") for n in recipe.unmatched), (name, recipe.unmatched)
    lora = read_recipe(metadata_png(tmp_path / "u.png", CIVITAI.replace("4x-UltraSharp", "style-lora")), library)
    assert any(n.startswith("Hires upscaler: style-lora") for n in lora.unmatched)  # a LoRA, not an upscaler


@pytest.mark.parametrize("keys, resize", [
    ("Hires resize: 1024x0", (1024, 0)),
    ("Hires resize: 0x1536", (0, 1536)),
    ("Hires resize-1: 1024, Hires resize-2: 1280", (1024, 1280)),  # A1111's reading of it, as the API writes it
    ("Hires upscale: 1.5, Hires resize: 0x0", None),  # 0x0: by the scale
])
def test_hires_resize_is_read_as_a1111_reads_it(keys, resize):
    params = parse_parameters(f"p\nSteps: 20, Sampler: Euler, Size: 512x768, Denoising strength: 0.7, {keys}")
    request, notes = request_from_parameters(params)
    assert request.hires and request.hires_resize == resize and notes == [n for n in notes if "Model" in n]


def test_hires_is_on_only_with_a_denoising_strength_as_in_a1111s_paste():
    request, notes = request_from_parameters(parse_parameters(
        "p\nSteps: 20, Sampler: Euler, Size: 512x512, Model: m, Hires upscale: 2, Hires upscaler: Latent"))
    assert not request.hires
    assert len(notes) == 1 and notes[0].startswith("Hires upscale: 2") and "Denoising strength" in notes[0]
    request, _ = request_from_parameters(parse_parameters(
        "p\nSteps: 20, Sampler: Euler, Size: 512x512, Model: m, Denoising strength: 0.6, Hires upscaler: Lanczos"))
    assert request.hires and request.hires_upscaler == "Lanczos" and request.hires_scale == 2.0


@pytest.mark.parametrize("text, sampler, schedule", [
    # A1111 before 1.9: combined names; "Hires sampler: DPM++ 2M Karras" is DPM++ 2M with Karras
    ("Sampler: Euler a, Hires sampler: DPM++ 2M Karras", "DPM++ 2M", "Karras"),
    # 1.10: the hires pass keeps the first pass's schedule type unless "Hires schedule type" names another
    ("Sampler: DPM++ 2M, Schedule type: Karras, Hires sampler: Euler", "Euler", ""),
    ("Sampler: DPM++ 2M, Schedule type: Karras, Hires sampler: Euler, Hires schedule type: Exponential",
     "Euler", "Exponential"),
    ("Sampler: DPM++ 2M, Schedule type: Karras, Hires schedule type: Uniform", "", "Uniform"),
    ("Sampler: DPM++ 2M, Schedule type: Karras, Hires sampler: DPM++ 2M", "", ""),
])
def test_hires_sampler_and_schedule_are_read_as_a1111_reads_them(text, sampler, schedule):
    request, notes = request_from_parameters(parse_parameters(
        f"p\nSteps: 20, {text}, Size: 512x512, Model: m, Denoising strength: 0.5, Hires upscale: 2"))
    assert (request.hires_sampler, request.hires_schedule_type) == (sampler, schedule) and notes == []


def test_an_unknown_hires_sampler_is_named_not_guessed():
    request, notes = request_from_parameters(parse_parameters(
        "p\nSteps: 20, Sampler: Euler, Size: 512x512, Model: m, Denoising strength: 0.5, Hires upscale: 2, "
        "Hires sampler: Euler Max"))
    assert request.hires and request.hires_sampler == ""
    assert notes == ["Hires sampler: Euler Max (picotui has no such sampler; the hires pass uses the first pass's)"]
    request, notes = request_from_parameters(parse_parameters(
        "p\nSteps: 20, Sampler: Euler, Schedule type: Karras, Size: 512x512, Model: m, Denoising strength: 0.5, "
        "Hires upscale: 2, Hires sampler: DPM++ 2M, Hires schedule type: Beta"))
    assert (request.hires_sampler, request.hires_schedule_type) == ("DPM++ 2M", "")
    assert notes == ["Hires schedule type: Beta (not supported by picotui; the hires pass uses the first pass's)"]


def test_an_a1111_img2img_recipe_says_the_source_must_be_picked():
    request, notes = request_from_parameters(parse_parameters(
        "p\nSteps: 20, Sampler: Euler, Size: 512x512, Model: m, Denoising strength: 0.6, Mask blur: 4, "
        "Init image hash: 9f86d081884c7d659a2feaa0c55ad015, Version: v1.10.1"))
    assert not request.hires and request.init_image is None and request.denoising_strength == 0.6
    assert len(notes) == 2
    assert notes[0].startswith("Denoising strength: 0.6 (an image to image recipe") and "9f86d081" in notes[0]
    assert notes[1].startswith("Mask blur: 4") and "inpainting" in notes[1]


# ---- our own PNGs: the source picture checked ------------------------------------------------------------

def test_our_img2img_png_names_a_missing_or_changed_source(tmp_path):
    source = tmp_path / "source.png"
    source.write_bytes(b"a picture's bytes")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:10]
    request = replace(BASE, init_image=str(source), init_image_hash=digest, denoising_strength=0.5)
    png = metadata_png(tmp_path / "out.png", a1111_parameters(request, model_name="m", model_hash=None),
                       picotui=picotui_chunk(request))
    library = Library(tmp_path / "models", tmp_path / "cache")
    recipe = read_recipe(png, library)
    assert recipe.source == "picotui" and recipe.request.init_image == str(source)
    assert not any(n.startswith("Init image") for n in recipe.unmatched)
    source.write_bytes(b"another picture")
    changed = [n for n in read_recipe(png, library).unmatched if n.startswith("Init image")]
    assert len(changed) == 1 and digest in changed[0] and "changed" in changed[0]
    source.unlink()
    missing = [n for n in read_recipe(png, library).unmatched if n.startswith("Init image")]
    assert len(missing) == 1 and "not found" in missing[0]
    assert json.loads(read_recipe(png).request.to_json())["init_image_hash"] == digest
    assert PICOTUI_CHUNK == "picotui"


# ---- parity ----------------------------------------------------------------------------------------------

def _parity(request: GenerationRequest, notes=()):
    return parity_report(Recipe(request, list(notes), "picotui", ""))


def test_parity_says_what_it_means_for_the_second_pass():
    latent = _parity(replace(BASE, hires=True))
    assert latent.level == "exactly" and any("Latent" in r and "hires" in r.lower() for r in latent.reasons)
    model = _parity(replace(BASE, hires=True, hires_upscaler="4x-UltraSharp"))
    assert model.level == "closely" and any("4x-UltraSharp" in r for r in model.reasons)
    img2img = _parity(replace(BASE, init_image="src.png", init_image_hash="0123456789"))
    assert img2img.level == "exactly" and any("0123456789" in r for r in img2img.reasons)
    other = _parity(replace(BASE, hires=True, hires_sampler="UniPC"))
    assert other.level == "closely" and any("UniPC" in r for r in other.reasons)


# ---- other tools' second pass ----------------------------------------------------------------------------

def _comfy_png(path, graph: dict):
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(graph))
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


# ComfyUI's own "hires fix" example: a KSampler, LatentUpscale of its samples, a second KSampler at denoise 0.5
COMFY_HIRES = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 5, "steps": 12, "cfg": 8, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"batch_size": 1, "height": 512, "width": 768}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "a fjord at dawn"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "blurry"}},
    "10": {"class_type": "LatentUpscale", "inputs": {"upscale_method": "nearest-exact", "width": 1152,
                                                     "height": 768, "crop": "disabled", "samples": ["3", 0]}},
    "11": {"class_type": "KSampler", "inputs": {
        "seed": 5, "steps": 14, "cfg": 8, "sampler_name": "euler_ancestral", "scheduler": "karras", "denoise": 0.5,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["10", 0]}},
}


def test_a_comfyui_latent_hires_workflow_is_read_as_hires_fix(tmp_path):
    recipe = read_recipe(_comfy_png(tmp_path / "c.png", COMFY_HIRES))
    r = recipe.request
    assert recipe.source == "comfyui" and (r.width, r.height, r.steps, r.sampler) == (768, 512, 12, "DPM++ 2M")
    assert (r.hires, r.hires_resize, r.hires_upscaler, r.hires_steps, r.denoising_strength) == (
        True, (1152, 768), "Latent (nearest-exact)", 14, 0.5)
    assert (r.hires_sampler, r.hires_schedule_type, r.hires_prompt) == ("Euler a", "", "")
    assert len(recipe.unmatched) == 1 and recipe.unmatched[0].startswith("LatentUpscale: crop disabled")
    by = json.loads(json.dumps(COMFY_HIRES))
    by["10"] = {"class_type": "LatentUpscaleBy", "inputs": {"upscale_method": "area", "scale_by": 1.5,
                                                            "samples": ["3", 0]}}
    by["11"]["inputs"]["seed"] = 6
    other = read_recipe(_comfy_png(tmp_path / "by.png", by))
    assert (other.request.hires, other.request.hires_scale, other.request.hires_upscaler) == (True, 1.5, "Latent")
    notes = " | ".join(other.unmatched)
    assert "upscale_method: area" in notes and "hires seed: 6" in notes


def test_an_upscaled_picture_says_its_recipe_makes_the_picture_before(tmp_path):
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()  # what A1111's Extras tab keeps and adds (modules/postprocessing.py)
    info.add_text("parameters", CIVITAI)
    info.add_text("postprocessing", "Postprocess upscale by: 4, Postprocess upscaler: R-ESRGAN 4x+")
    Image.new("RGB", (8, 8)).save(tmp_path / "up.png", pnginfo=info)
    recipe = read_recipe(tmp_path / "up.png")
    assert recipe.request.hires and recipe.request.seed == 1
    assert len(recipe.unmatched) == 1 and recipe.unmatched[0].startswith(
        "postprocessing: Postprocess upscale by: 4, Postprocess upscaler: R-ESRGAN 4x+ (upscaled after it was made")


def test_an_invokeai_img2img_recipe_names_its_source(tmp_path):
    from PIL import Image, PngImagePlugin

    data = {"generation_mode": "img2img", "positive_prompt": "a harbour", "negative_prompt": "", "width": 512,
            "height": 512, "seed": 4, "steps": 25, "cfg_scale": 7, "scheduler": "euler", "strength": 0.4,
            "init_image": "a1b2c3.png", "model": {"name": "v1-5", "base": "sd-1"}}
    info = PngImagePlugin.PngInfo()
    info.add_text("invokeai_metadata", json.dumps(data))
    Image.new("RGB", (8, 8)).save(tmp_path / "i.png", pnginfo=info)
    recipe = read_recipe(tmp_path / "i.png")
    assert recipe.source == "invokeai" and recipe.request.denoising_strength == 0.4
    assert len(recipe.unmatched) == 1 and recipe.unmatched[0].startswith("Init image: a1b2c3.png (image to image")


def test_a_comfyui_model_upscale_hires_workflow_is_read_as_hires_fix(tmp_path):
    graph = json.loads(json.dumps(COMFY_HIRES))  # the first pass decoded, upscaled by a model, halved, encoded
    del graph["10"]
    graph |= {"8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
              "12": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x-UltraSharp.pth"}},
              "13": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["12", 0], "image": ["8", 0]}},
              "14": {"class_type": "ImageScaleBy", "inputs": {"upscale_method": "lanczos", "scale_by": 0.5,
                                                              "image": ["13", 0]}},
              "15": {"class_type": "VAEEncode", "inputs": {"pixels": ["14", 0], "vae": ["4", 2]}}}
    graph["11"]["inputs"] |= {"latent_image": ["15", 0], "sampler_name": "dpmpp_2m", "steps": 12}
    recipe = read_recipe(_comfy_png(tmp_path / "m.png", graph))
    r = recipe.request
    assert (r.hires, r.hires_upscaler, r.hires_scale, r.hires_resize, r.hires_steps, r.denoising_strength) == (
        True, "4x-UltraSharp", 2.0, None, 0, 0.5)  # 4x from the name, times 0.5
    assert (r.hires_sampler, r.init_image) == ("", None) and recipe.unmatched == []
    graph["14"] = {"class_type": "ImageScale", "inputs": {"upscale_method": "bilinear", "width": 1536, "height": 1024,
                                                          "crop": "disabled", "image": ["13", 0]}}
    graph["12"]["inputs"]["model_name"] = "mystery.safetensors"
    resized = read_recipe(_comfy_png(tmp_path / "r.png", graph)).request
    assert (resized.hires_upscaler, resized.hires_resize) == ("mystery", (1536, 1024))
