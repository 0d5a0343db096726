"""`picotui generate`'s second-pass flags: parsed into the request with A1111's defaults, bad values one line and
exit status 2, and one real img2img run with the demo model whose PNG names its source picture."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from picotui.cli import build_parser, main
from picotui.cli.generate import build_request


def request_for(*argv):
    return build_request(build_parser().parse_args(["generate", *argv]))


def test_img2img_flags_make_an_img2img_request():
    r = request_for("--init-image", "photo.png", "--strength", "0.6", "--resize-mode", "crop and resize")
    assert (r.init_image, r.denoising_strength, r.resize_mode, r.hires) == ("photo.png", 0.6, "Crop and resize", False)
    default = request_for("--init-image", "photo.png")
    assert (default.denoising_strength, default.resize_mode) == (0.75, "Just resize")  # A1111's img2img defaults


def test_hires_flags_make_a_hires_request_with_a1111s_defaults():
    r = request_for("--hires", "2")
    assert (r.hires, r.hires_scale, r.hires_resize, r.hires_upscaler, r.hires_steps, r.denoising_strength) == (
        True, 2.0, None, "Latent", 0, 0.7)  # A1111's hires fix: Latent, same steps, strength 0.7
    full = request_for("--hires-resize", "1024x0", "--hires-upscaler", "Lanczos", "--hires-steps", "12",
                       "--hires-strength", "0.45", "--hires-sampler", "DPM++ 2M Karras", "--hires-prompt", "sharp",
                       "--hires-negative", "blurry, soft")
    assert (full.hires, full.hires_resize, full.hires_upscaler, full.hires_steps, full.denoising_strength) == (
        True, (1024, 0), "Lanczos", 12, 0.45)
    assert (full.hires_sampler, full.hires_schedule_type) == ("DPM++ 2M", "Karras")  # the old combined name splits
    assert (full.hires_prompt, full.hires_negative_prompt) == ("sharp", "blurry, soft")
    assert request_for("--hires", "1.5", "--strength", "0.3", "--hires-schedule", "exponential").denoising_strength == 0.3
    assert request_for("--hires", "1.5", "--hires-schedule", "exponential").hires_schedule_type == "Exponential"


BAD = [
    (["--strength", "0.5"], "--strength is for image to image"),
    (["--hires-steps", "5"], "--hires-steps is for hires fix: add --hires 2"),
    (["--init-image", "a.png", "--hires", "2"], "--init-image and hires fix do not go together"),
    (["--hires", "9"], "Hires upscale 9 is out of range: use 1 to 4."),
    (["--hires", "two"], "Hires upscale must be a number"),
    (["--hires-resize", "big"], "Hires resize must be WIDTHxHEIGHT"),
    (["--hires", "2", "--hires-sampler", "Euler Max"], "Unknown hires sampler 'Euler Max'"),
    (["--hires", "2", "--hires-strength", "1.5"], "Denoising strength 1.5 is out of range: use 0 to 1."),
    (["--init-image", "a.png", "--resize-mode", "stretch"], "Unknown resize mode 'stretch'"),
    (["--hires", "2", "--hires-upscaler", "4x-Nowhere"], "No upscaler"),
    (["--init-image", "missing-source.png"], "--init-image missing-source.png: no such file"),
    (["--from", "missing-recipe.png"], "missing-recipe.png does not exist"),
]


@pytest.mark.parametrize("argv, expect", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_second_pass_flags_are_one_line_and_exit_2(capsys, monkeypatch, tmp_path, cache_dir, demo_checkpoint,
                                                       argv, expect):
    for name in ("MODELS", "OUTPUTS", "STATE"):
        monkeypatch.setenv(f"PICOTUI_{name}", str(tmp_path / name.lower()))
    monkeypatch.setenv("PICOTUI_CACHE", str(cache_dir))  # the session's demo model: checked before the upscaler
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.chdir(tmp_path)
    try:  # argparse's errors exit; the request's are returned as the status
        code = main(["generate", "--steps", "2", "--width", "64", "--height", "64", *argv])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and expect in lines[0], captured.err


@pytest.fixture
def generate(tmp_path, monkeypatch, capsys, cache_dir, demo_checkpoint):
    """`picotui generate ARGS` in process (tiny sizes, the session's demo model); returns the PNG's path."""
    for name, value in (("CONFIG", tmp_path / "config.toml"), ("STATE", tmp_path / "state"), ("CACHE", cache_dir),
                        ("MODELS", tmp_path / "models"), ("DEVICE", "cpu")):
        monkeypatch.setenv(f"PICOTUI_{name}", str(value))

    def run(*argv) -> Path:
        code = main(["generate", "--steps", "3", "--seed", "5", "--sampler", "Euler", "--quiet", "--outdir",
                     str(tmp_path / "out"), *argv])
        out = capsys.readouterr()
        assert code == 0, out.err
        return Path(out.out.strip())

    return run


def test_generate_img2img_with_the_demo_model_names_its_source(tmp_path, generate):
    from picotui.engine.recipes.metadata import read_recipe

    source = tmp_path / "source photo.png"
    Image.new("RGB", (80, 48), (180, 90, 30)).save(source)
    png = generate("a castle on a hill, watercolor", "--width", "64", "--height", "64", "--init-image", str(source),
                   "--strength", "0.6", "--resize-mode", "crop and resize")
    assert png.is_file() and Image.open(png).size == (64, 64)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:10]
    recipe = read_recipe(png)
    r = recipe.request
    assert (r.init_image, r.init_image_hash, r.denoising_strength, r.resize_mode) == (
        str(source), digest, 0.6, "Crop and resize")
    assert (f"Denoising strength: 0.6, Init image: source photo.png, Init image file hash: {digest}, "
            f"Resize mode: Crop and resize") in recipe.parameters


def test_generate_hires_then_again_from_its_recipe(generate):
    from picotui.engine.recipes.metadata import read_recipe

    plain = generate("a castle on a hill, watercolor", "--width", "64", "--height", "64")
    png = generate("--from", str(plain), "--hires", "2", "--hires-upscaler", "Latent", "--hires-steps", "2")
    assert Image.open(png).size == (128, 128)  # A1111's hires size; "Size" stays the first pass's
    recipe = read_recipe(png)
    r = recipe.request
    assert (r.prompt, r.seed, r.width, r.hires, r.hires_scale, r.hires_steps, r.denoising_strength) == (
        "a castle on a hill, watercolor", 5, 64, True, 2.0, 2, 0.7)
    assert "Size: 64x64, " in recipe.parameters and "Denoising strength: 0.7" in recipe.parameters
    assert "Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent" in recipe.parameters


def test_generate_hires_with_an_upscaler_model(tmp_path, generate):
    from upscaler_support import build_models

    from picotui.engine.recipes.metadata import read_recipe

    build_models(tmp_path / "models")  # tiny spandrel models: a 4x ESRGAN named as the README's
    folder = tmp_path / "models" / "upscalers"
    (folder / "tiny-esrgan-4x.safetensors").rename(folder / "4x-UltraSharp.safetensors")
    png = generate("a castle on a hill", "--width", "64", "--height", "96", "--hires-resize", "128x192",
                   "--hires-upscaler", "4x-UltraSharp", "--hires-strength", "0.35", "--hires-steps", "2")
    assert Image.open(png).size == (128, 192)
    recipe = read_recipe(png)
    assert (recipe.request.hires_resize, recipe.request.hires_upscaler, recipe.request.denoising_strength) == (
        (128, 192), "4x-UltraSharp", 0.35)
    assert "Hires resize: 128x192, Hires steps: 2, Hires upscaler: 4x-UltraSharp" in recipe.parameters


def test_info_json_carries_the_second_pass_of_an_a1111_recipe(tmp_path, monkeypatch, capsys):
    import json

    from metadata_support import metadata_png

    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("PICOTUI_CACHE", str(tmp_path / "cache"))
    png = metadata_png(tmp_path / "a.png", "a fox\nSteps: 20, Sampler: Euler, Schedule type: Karras, CFG scale: 7, "
                                           "Seed: 3, Size: 512x512, Model: m, Denoising strength: 0.55, "
                                           "Hires resize: 1024x1024, Hires upscaler: Lanczos, Hires steps: 8")
    assert main(["--models", str(tmp_path / "models"), "info", "--json", str(png)]) == 0
    request = json.loads(capsys.readouterr().out)
    assert (request["hires"], request["hires_resize"], request["hires_upscaler"], request["hires_steps"],
            request["denoising_strength"]) == (True, [1024, 1024], "Lanczos", 8, 0.55)


# ---- --from: a recipe as the base, the options given replace its settings ---------------------------------

def _recipe_png(path, **fields):
    from metadata_support import metadata_png

    from picotui.engine.recipes.infotext import a1111_parameters, picotui_chunk
    from picotui.engine.request import GenerationRequest

    request = GenerationRequest(prompt="a lighthouse", seed=11, steps=30, width=512, height=640, **fields)
    return metadata_png(path, a1111_parameters(request, model_name="m", model_hash=None),
                        picotui=picotui_chunk(request)), request


def test_from_a_recipe_keeps_its_second_pass_and_takes_the_options_given(tmp_path):
    png, hires = _recipe_png(tmp_path / "hires.png", hires=True, hires_resize=(1024, 0), hires_upscaler="Lanczos",
                             hires_steps=9, hires_sampler="Euler", denoising_strength=0.4)
    assert request_for("--from", str(png)) == hires
    changed = request_for("--from", str(png), "--steps", "24", "--hires-steps", "5")  # 24: the default, given
    assert (changed.steps, changed.hires_steps, changed.prompt, changed.seed) == (24, 5, "a lighthouse", 11)
    assert (changed.hires, changed.hires_resize, changed.hires_upscaler, changed.hires_sampler,
            changed.denoising_strength) == (True, (1024, 0), "Lanczos", "Euler", 0.4)
    by_scale = request_for("--from", str(png), "--hires", "1.5")  # a scale instead of the recipe's size
    assert (by_scale.hires_scale, by_scale.hires_resize, by_scale.hires_upscaler) == (1.5, None, "Lanczos")
    img2img = request_for("--from", str(png), "--init-image", "photo.png")  # the other second pass
    assert (img2img.hires, img2img.init_image, img2img.denoising_strength) == (False, "photo.png", 0.75)


def test_from_an_img2img_recipe_changes_its_strength_or_turns_to_hires(tmp_path):
    png, _ = _recipe_png(tmp_path / "i2i.png", init_image=str(tmp_path / "src.png"), init_image_hash="0123456789",
                         denoising_strength=0.6, resize_mode="Resize and fill")
    weaker = request_for("--from", str(png), "--strength", "0.3")
    assert (weaker.init_image, weaker.resize_mode, weaker.denoising_strength) == (
        str(tmp_path / "src.png"), "Resize and fill", 0.3)
    hires = request_for("--from", str(png), "--hires", "2")
    assert (hires.init_image, hires.hires, hires.denoising_strength) == (None, True, 0.7)
    plain, _ = _recipe_png(tmp_path / "plain.png")
    with pytest.raises(Exception, match="--hires-steps is for hires fix"):
        request_for("--from", str(plain), "--hires-steps", "5")
