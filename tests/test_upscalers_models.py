"""Upscaler models end to end through the library: listed with architecture and scale, loaded under the pickle
rules, refused in one line when they are something else, tiled like the untiled model, A1111's upscale loop."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from upscaler_support import build_models, reference

from picotui.engine.errors import ModelError, RequestError
from picotui.engine.models.library import Library
from picotui.engine.upscaling.tiling import positions
from picotui.engine.upscaling.upscalers import Upscalers, upscaler_names


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("upscaler-models") / "models"
    nets = build_models(root)
    return root, nets


@pytest.fixture(scope="module")
def library(tree, tmp_path_factory):
    return Library(tree[0], tmp_path_factory.mktemp("cache"))


def noise(width, height, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_library_lists_upscalers_with_architecture_and_scale(library):
    found = {mf.name: mf for mf in library.files("upscaler")}
    assert (found["tiny-esrgan-4x.safetensors"].architecture, found["tiny-esrgan-4x.safetensors"].scale) == ("ESRGAN", 4)
    assert (found["tiny-compact-2x.safetensors"].architecture, found["tiny-compact-2x.safetensors"].scale) == \
        ("RealESRGAN Compact", 2)
    assert found["tiny-esrgan-4x.safetensors"].usable and found["tiny-compact-2x.safetensors"].usable
    assert not found["pickled-esrgan-4x.pth"].usable and "--allow-pickle" in found["pickled-esrgan-4x.pth"].reason
    assert "style-lora.safetensors" not in found  # a LoRA by content, wherever it lies
    names = upscaler_names(library)
    assert names[:9] == ["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)",
                         "Latent (nearest)", "Latent (nearest-exact)", "None", "Lanczos", "Nearest"]
    assert {"tiny-esrgan-4x", "tiny-compact-2x"} <= set(names[9:])


def test_single_tile_is_the_model_output(tree, library):
    nets = tree[1]
    image = noise(40, 32)
    out = Upscalers(library).upscale(image, 4, "tiny-esrgan-4x")
    assert out.size == (160, 128)
    assert np.abs(np.asarray(out, dtype=np.float32) - reference(nets["tiny-esrgan-4x"], image)).max() <= 0.51


def test_tiled_equals_untiled_away_from_the_seams(tree, library):
    net = tree[1]["tiny-compact-2x"]
    image = noise(112, 88, seed=1)  # sides a multiple of 8: no LANCZOS after the model
    tile, overlap, radius = 48, 8, 4  # Compact with 2 body convs sees 4 px around each pixel
    upscalers = Upscalers(library, tile=tile, overlap=overlap)
    out = np.asarray(upscalers.upscale(image, 2, "tiny-compact-2x"), dtype=np.float32)
    ref = reference(net, image)
    assert out.shape == ref.shape == (176, 224, 3)
    keep = np.ones(out.shape[:2], bool)
    for axis, size in ((1, 112), (0, 88)):  # A1111's split_grid layout, written out: starts spread evenly
        count = -(-(size - overlap) // (tile - overlap))
        starts = [min(int(i * (size - tile) / (count - 1)), size - tile) for i in range(count)]
        assert positions(size, tile, overlap) == starts
        for start in starts[1:]:  # the fade band and the pixels whose context a tile edge cuts
            band = slice(2 * max(0, start - radius), 2 * (start + overlap + radius))
            if axis == 1:
                keep[:, band] = False
            else:
                keep[band, :] = False
    assert keep.mean() > 0.3
    assert np.abs(out - ref)[keep].max() <= 0.51
    assert np.abs(out - ref).max() < 64  # the seams blend, they do not jump


def test_seams_blend_as_combine_grid(tree, library):
    # A1111's upscale_with_model written out on a float canvas: split_grid's tiles; in each row every tile after
    # the first fades in over its first overlap*scale columns (mask r/overlap), then each row after the first
    # fades in over the rows above the same way; the rest of a tile or row replaces what was there.
    import torch
    from upscaler_support import to_tensor

    net = tree[1]["tiny-compact-2x"]
    image, tile, overlap, s = noise(112, 88, seed=2), 48, 8, 2
    pixels = to_tensor(image)
    xs, ys = [0, 32, 64], [0, 40]  # split_grid: ceil((112-8)/40) = 3 columns 32 apart, ceil((88-8)/40) = 2 rows
    canvas = torch.zeros(3, 88 * s, 112 * s)
    fade = overlap * s
    ramp = torch.arange(fade) / fade
    with torch.no_grad():
        for y in ys:
            row = torch.zeros(3, tile * s, 112 * s)
            for x in xs:
                out = net(pixels[..., y:y + tile, x:x + tile])[0].clamp(0, 1)
                if x:
                    row[:, :, x * s:x * s + fade] = row[:, :, x * s:x * s + fade] * (1 - ramp) + out[:, :, :fade] * ramp
                    row[:, :, x * s + fade:(x + tile) * s] = out[:, :, fade:]
                else:
                    row[:, :, :tile * s] = out
            if y:
                band = canvas[:, y * s:y * s + fade]
                canvas[:, y * s:y * s + fade] = band * (1 - ramp[:, None]) + row[:, :fade] * ramp[:, None]
                canvas[:, y * s + fade:(y + tile) * s] = row[:, fade:]
            else:
                canvas[:, :tile * s] = row
    expected = canvas.flip(0).permute(1, 2, 0).numpy() * 255
    out = Upscalers(library, tile=tile, overlap=overlap).upscale(image, 2, "tiny-compact-2x")
    assert np.abs(np.asarray(out, np.float32) - expected).max() <= 0.51


def test_a1111_upscale_loop_runs_the_model_until_big_enough(library):
    upscalers = Upscalers(library, tile=4096)  # one model call per run
    image = noise(52, 40)
    seen: list[tuple[int, int]] = []
    for name, scale, expected_inputs, size in (("tiny-esrgan-4x", 2, [(40, 52)], (104, 80)),
                                               ("tiny-compact-2x", 8, [(40, 52), (80, 104), (160, 208)], (416, 320)),
                                               ("tiny-compact-2x", 2.5, [(40, 52), (80, 104)], (128, 96))):
        model = upscalers.model(name).descriptor.model
        seen.clear()
        hook = model.register_forward_hook(lambda _m, args, _o: seen.append(tuple(args[0].shape[-2:])))
        try:
            out = upscalers.upscale(image, scale, name)
        finally:
            hook.remove()
        assert seen == expected_inputs, name
        assert out.size == size  # int(w * scale) // 8 * 8, then LANCZOS to it


def test_lanczos_and_nearest_need_no_model(tmp_path):
    upscalers = Upscalers(Library(tmp_path / "empty", tmp_path / "cache"))
    image = noise(50, 30)
    assert upscalers.upscale(image, 2, "Lanczos").size == (96, 56)
    nearest = upscalers.upscale(image, 2, "Nearest")
    assert nearest.size == (96, 56)
    assert upscalers.upscale(image, 1.5, "None").size == (72, 40)
    with pytest.raises(RequestError, match="latents in hires fix"):
        upscalers.upscale(image, 2, "Latent (bicubic)")


def test_pickles_load_only_with_allow_pickle(tree, library, tmp_path):
    image = noise(24, 24)
    with pytest.raises(ModelError) as refused:
        Upscalers(library).upscale(image, 4, "pickled-esrgan-4x")
    assert "--allow-pickle" in str(refused.value) and "\n" not in str(refused.value)
    allowed = Library(tree[0], tmp_path / "cache", allow_pickle=True)
    pickled = lambda lib: next(mf for mf in lib.scan() if mf.name == "pickled-esrgan-4x.pth")  # noqa: E731
    assert (pickled(allowed).architecture, pickled(allowed).scale) == (None, None)  # no header to read
    out = Upscalers(allowed, allow_pickle=True).upscale(image, 4, "pickled-esrgan-4x")
    assert np.abs(np.asarray(out, np.float32) - reference(tree[1]["tiny-esrgan-4x"], image)).max() <= 0.51
    # what spandrel found is remembered in the cache folder: this library and the next session list it
    assert (pickled(allowed).architecture, pickled(allowed).scale) == ("ESRGAN", 4)
    again = Library(tree[0], tmp_path / "cache", allow_pickle=True)
    assert (pickled(again).architecture, pickled(again).scale) == ("ESRGAN", 4)


@pytest.mark.parametrize("name, message", [
    ("style-lora", "style-lora.safetensors is a LoRA, not an upscaler: move it to models/loras."),
    ("denoise-1x", "denoise-1x.safetensors is a 1x restoration model (denoise, deblur), not an upscaler"),
])
def test_other_models_in_the_upscaler_folder_are_refused_in_one_line(library, name, message):
    with pytest.raises(ModelError) as refused:
        Upscalers(library).upscale(noise(24, 24), 2, name)
    assert str(refused.value).startswith(message)


def test_cancel_stops_between_tiles(library):
    from picotui.engine.errors import JobCancelled

    tiles = []
    with pytest.raises(JobCancelled):
        Upscalers(library, tile=32).upscale(noise(96, 64), 2, "tiny-compact-2x", is_cancelled=lambda: len(tiles) >= 2,
                                           on_tile=lambda done, total: tiles.append((done, total)))
    assert tiles == [(1, 12), (2, 12)]  # 4 x 3 tiles of 32 with 8 overlap; stopped after the second


def test_a_changed_file_is_loaded_again(tree, tmp_path):
    import shutil

    root = tmp_path / "models"
    (root / "upscalers").mkdir(parents=True)
    target = root / "upscalers" / "swap.safetensors"
    shutil.copy(tree[0] / "upscalers" / "tiny-esrgan-4x.safetensors", target)
    upscalers = Upscalers(Library(root, tmp_path / "cache"))
    first = upscalers.model("swap")
    assert upscalers.model("swap") is first  # cached
    shutil.copy(tree[0] / "upscalers" / "tiny-compact-2x.safetensors", target)
    assert upscalers.model("swap").architecture == "RealESRGAN Compact"


def test_spandrel_refuses_what_is_not_super_resolution(tree):
    # the header sniff knows ESRGAN; for architectures it does not name, spandrel's purpose decides at load
    from picotui.engine.upscaling.loading import load_upscaler

    with pytest.raises(ModelError) as refused:
        load_upscaler(tree[0] / "upscalers" / "denoise-1x.safetensors", allow_pickle=False)
    assert str(refused.value).startswith("denoise-1x.safetensors is a restoration model (1x: denoise, deblur, JPEG "
                                         "cleanup) (ESRGAN), not an upscaler")


def test_fp16_overflow_reruns_in_fp32(tree, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(1)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2).eval()
    with torch.no_grad():  # activations far beyond fp16's 65504: what makes some upscalers paint black tiles
        net.body[0].weight.mul_(1e5)
        net.body[0].bias.zero_()
    (tmp_path / "models" / "upscalers").mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()},
              str(tmp_path / "models" / "upscalers" / "hot.safetensors"))
    monkeypatch.setattr(Upscalers, "_dtype", lambda self, descriptor: torch.float16)  # as on a CUDA card
    upscalers = Upscalers(Library(tmp_path / "models", tmp_path / "cache"))
    image = noise(32, 24)
    out = upscalers.upscale(image, 2, "hot")
    assert upscalers.notices == ["The RealESRGAN Compact upscaler overflowed in float16: running it in fp32, which "
                                 "is slower."]
    assert np.abs(np.asarray(out, np.float32) - reference(net, image)).max() <= 0.51
    upscalers.upscale(image, 2, "hot")
    assert upscalers.notices == []  # the cached model stays fp32


def test_the_model_only_ever_sees_one_default_tile(library):
    # what keeps the device's memory flat whatever the picture's size: A1111's 192 px tiles, one at a time
    upscalers = Upscalers(library)
    model = upscalers.model("tiny-compact-2x").descriptor.model
    seen: list[tuple[int, ...]] = []
    hook = model.register_forward_hook(lambda _m, args, _o: seen.append(tuple(args[0].shape)))
    try:
        out = upscalers.upscale(noise(500, 300), 2, "tiny-compact-2x")
    finally:
        hook.remove()
    assert out.size == (1000, 600)
    assert seen == [(1, 3, 192, 192)] * 6  # 3 columns x 2 rows (split_grid with overlap 8)


@pytest.mark.filterwarnings("ignore:torch.meshgrid")  # spandrel's SwinIR, not ours
def test_upscalers_the_header_cannot_name_are_named_by_spandrel_once(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file
    from spandrel.architectures.SwinIR import SwinIR

    from picotui.engine.upscaling.describe import describe_upscalers, unnamed_upscalers

    folder = tmp_path / "models" / "SwinIR"  # A1111's folder
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    for name, up in (("swinir-2x", 2), ("swinir-denoise", 1)):
        net = SwinIR(img_size=16, in_chans=3, embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=up,
                     upsampler="pixelshuffledirect" if up > 1 else "", img_range=1.0)
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / f"{name}.safetensors"))
    library = Library(tmp_path / "models", tmp_path / "cache")
    assert {mf.name for mf in unnamed_upscalers(library)} == {"swinir-2x.safetensors", "swinir-denoise.safetensors"}
    assert describe_upscalers(library) == 2
    for lib in (library, Library(tmp_path / "models", tmp_path / "cache")):  # and the next session, from the cache
        found = {mf.name: mf for mf in lib.files("upscaler")}
        assert (found["swinir-2x.safetensors"].architecture, found["swinir-2x.safetensors"].scale) == ("SwinIR", 2)
        assert found["swinir-2x.safetensors"].usable
        denoise = found["swinir-denoise.safetensors"]
        assert not denoise.usable and denoise.reason.startswith("swinir-denoise.safetensors is a restoration model")
        assert unnamed_upscalers(lib) == []
    # A1111 tiles SwinIR with tiled_upscale_2: square tiles of min(tile, w, h), starts every tile - overlap plus
    # one flush with the edge, overlaps averaged. Written out here with the model run on each tile directly.
    import torch
    from upscaler_support import to_tensor

    net = SwinIR(img_size=16, in_chans=3, embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2,
                 upsampler="pixelshuffledirect", img_range=1.0).eval()
    net.load_state_dict(load_file(str(folder / "swinir-2x.safetensors")))
    image = noise(40, 28)
    pixels, tile = to_tensor(image), 16
    total, count = torch.zeros(1, 3, 56, 80), torch.zeros(1, 1, 56, 80)
    with torch.no_grad():
        for y in (0, 12):  # range(0, 28 - 16, 12) + [28 - 16]
            for x in (0, 12, 24):  # range(0, 40 - 16, 12) + [40 - 16]
                total[..., 2 * y:2 * (y + tile), 2 * x:2 * (x + tile)] += net(pixels[..., y:y + tile, x:x + tile]).clamp(0, 1)
                count[..., 2 * y:2 * (y + tile), 2 * x:2 * (x + tile)] += 1
    expected = (total / count)[0].flip(0).permute(1, 2, 0).numpy() * 255
    out = Upscalers(library, tile=tile, overlap=4).upscale(image, 2, "swinir-2x")
    assert out.size == (80, 56)
    assert np.abs(np.asarray(out, np.float32) - expected).max() <= 0.51


def test_files_a1111_downloads_go_by_a1111_names(tree, tmp_path):
    import shutil

    (tmp_path / "models" / "RealESRGAN").mkdir(parents=True)
    shutil.copy(tree[0] / "upscalers" / "tiny-esrgan-4x.safetensors",
                tmp_path / "models" / "RealESRGAN" / "RealESRGAN_x4plus.safetensors")
    library = Library(tmp_path / "models", tmp_path / "cache")
    assert upscaler_names(library)[-1] == "R-ESRGAN 4x+"  # what A1111 writes in "Hires upscaler"
    upscalers = Upscalers(library)
    assert upscalers.resolve("R-ESRGAN 4x+").name == upscalers.resolve("RealESRGAN_x4plus").name == \
        "RealESRGAN_x4plus.safetensors"
    assert upscalers.upscale(noise(16, 16), 4, "r-esrgan 4x+").size == (64, 64)


def test_results_beyond_16384_pixels_are_refused_before_any_work(library):
    upscalers = Upscalers(library)
    with pytest.raises(RequestError, match="makes 19200x19200; picotui makes pictures up to 16384"):
        upscalers.upscale(noise(64, 64), 300, "Lanczos")
    with pytest.raises(RequestError, match="would make 16800x64 on the way to 6296x24"):
        upscalers.upscale(noise(4200, 16), 1.5, "tiny-esrgan-4x")  # the 4x model's step is the large one


def test_a_broken_torchvision_falls_back_to_the_architectures_alone(tmp_path):
    # A torchvision that does not match torch (what pip leaves beside a CPU torch) fails on import: the full
    # `import spandrel` fails with it, and picotui loads the architectures without spandrel's __init__.
    import subprocess
    import sys

    from cli_support import ROOT

    (tmp_path / "torchvision").mkdir()
    (tmp_path / "torchvision" / "__init__.py").write_text("raise ImportError('torchvision built for another torch')\n")
    code = ("from picotui.engine.upscaling.architectures import registry\n"
            "reg = registry()\n"
            "from spandrel.architectures.ESRGAN import ESRGAN\n"
            "d = reg.load(ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4).state_dict())\n"
            "print(d.architecture.id, d.scale, 'ESRGAN' in [a.architecture.id for a in reg])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{tmp_path}"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ESRGAN", "4", "True"]
