"""TAESD live previews: a decoder in models/vae-approx/ (madebyollin's file layout, as users download it) makes each
step's preview what diffusers' AutoencoderTiny decodes from that step's latents; without one the colour
approximation stays; a .pth needs the pickle opt-in; the library lists the file."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import TINY_CHECKPOINT
from paths_support import make_paths

from picotui.engine.events import Finished, Notice, Step
from picotui.engine.jobs.runner import JobRunner
from picotui.engine.request import GenerationRequest
from picotui.engine.sampling import generate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def taesd():
    """A random diffusers AutoencoderTiny (SD1.x config) and its decoder in madebyollin's taesd_decoder layout:
    nn.Sequential(Clamp(), conv, ...) keys "1.weight", "3.conv.0.weight", ... (index 0, the clamp, has none)."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(7)
    ae = AutoencoderTiny().eval()
    for p in ae.decoder.parameters():  # default init gives a flat grey picture: make it depend on the latents
        p.data.normal_(0, 0.2)
    layout = {}
    for key, value in ae.decoder.state_dict().items():
        _layers, index, rest = key.split(".", 2)
        layout[f"{int(index) + 1}.{rest}"] = value.clone().contiguous()
    return ae, layout


def models_with(tmp_path, models_root, files: dict):
    models = tmp_path / "models"
    for sub in ("checkpoints", "vae-approx"):
        (models / sub).mkdir(parents=True)
    (models / "checkpoints" / TINY_CHECKPOINT).symlink_to(models_root / "checkpoints" / TINY_CHECKPOINT)
    for relative, write in files.items():
        (models / relative).parent.mkdir(parents=True, exist_ok=True)
        write(models / relative)
    return models


def run_job(models, base, monkeypatch, allow_pickle=False):
    events, latents = [], []
    real = generate.decode
    monkeypatch.setattr(generate, "decode", lambda pipe, lat, **kw: (latents.append(lat.clone()),
                                                                     real(pipe, lat, **kw))[1])
    runner = JobRunner(make_paths(base, models=models), "cpu", allow_pickle, None, events.append)
    request = GenerationRequest(prompt="a corgi", checkpoint=TINY_CHECKPOINT, sampler="Euler", steps=3,
                                width=64, height=64, seed=11)
    runner.run_job(1, request, lambda: False)
    assert len([e for e in events if isinstance(e, Finished)]) == 1
    return events, latents[0]


def reference_image(ae, latents):
    """What diffusers' own AutoencoderTiny makes of the latents (its image processor's rounding)."""
    import torch
    from diffusers.image_processor import VaeImageProcessor

    with torch.no_grad():
        decoded = ae.decode(latents / ae.config.scaling_factor).sample
    return np.asarray(VaeImageProcessor().postprocess(decoded, output_type="pil")[0])


def test_taesd_safetensors_previews_what_autoencoder_tiny_decodes(tmp_path, models_root, taesd, monkeypatch):
    from safetensors.torch import save_file

    ae, layout = taesd
    models = models_with(tmp_path, models_root, {"vae-approx/taesd_decoder.safetensors":
                                                 lambda p: save_file(layout, str(p))})
    events, final_latents = run_job(models, tmp_path, monkeypatch)
    steps = [e for e in events if isinstance(e, Step)]
    assert [s.index for s in steps] == [1, 2, 3]
    last = np.asarray(steps[-1].preview)
    assert last.shape == (64, 64, 3)  # the full picture, not the latent-sized colour map (8x8)
    assert np.abs(last.astype(int) - reference_image(ae, final_latents).astype(int)).max() <= 1
    assert not [e for e in events if isinstance(e, Notice) and "TAESD" in e.message]


def test_without_a_decoder_the_colour_preview_stays(tmp_path, models_root, monkeypatch):
    events, _ = run_job(models_with(tmp_path, models_root, {}), tmp_path, monkeypatch)
    assert [s.preview.size for s in events if isinstance(s, Step)] == [(8, 8)] * 3


def test_a1111_pth_in_a1111_folder_needs_the_pickle_opt_in(tmp_path, models_root, taesd, monkeypatch):
    import torch

    ae, layout = taesd
    write = {"VAE-taesd/taesd_decoder.pth": lambda p: torch.save(layout, str(p))}  # as A1111 downloads it
    events, _ = run_job(models_with(tmp_path / "a", models_root, write), tmp_path / "a", monkeypatch)
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("taesd_decoder.pth is a pickle file" in m and "--allow-pickle" in m for m in notices)
    assert {s.preview.size for s in events if isinstance(s, Step)} == {(8, 8)}

    events, latents = run_job(models_with(tmp_path / "b", models_root, write), tmp_path / "b", monkeypatch,
                              allow_pickle=True)
    last = np.asarray([s for s in events if isinstance(s, Step)][-1].preview)
    assert np.abs(last.astype(int) - reference_image(ae, latents).astype(int)).max() <= 1


def test_a_broken_decoder_file_costs_only_the_preview(tmp_path, models_root, monkeypatch):
    import torch
    from safetensors.torch import save_file

    wrong = {"1.weight": torch.zeros(64, 4, 3, 3), "1.bias": torch.zeros(64)}  # looks like TAESD, is cut short
    models = models_with(tmp_path, models_root, {"vae-approx/taesd_decoder.safetensors":
                                                 lambda p: save_file(wrong, str(p))})
    events, _ = run_job(models, tmp_path, monkeypatch)
    assert any("not an SD1.5 TAESD decoder" in e.message for e in events if isinstance(e, Notice))
    assert {s.preview.size for s in events if isinstance(s, Step)} == {(8, 8)}


def test_the_library_lists_taesd_decoders_and_tells_encoders_apart(tmp_path, taesd, cache_dir):
    import torch
    from safetensors.torch import save_file

    from picotui.engine.models.library import Library

    _ae, layout = taesd
    folder = tmp_path / "models" / "vae-approx"
    folder.mkdir(parents=True)
    save_file(layout, str(folder / "taesd_decoder.safetensors"))
    save_file(layout, str(folder / "taesdxl_decoder.safetensors"))
    save_file({"0.weight": torch.zeros(64, 3, 3, 3)}, str(folder / "taesd_encoder.safetensors"))
    files = {mf.name: mf for mf in Library(tmp_path / "models", cache_dir).scan()}
    assert files["taesd_decoder.safetensors"].kind == "taesd" and files["taesd_decoder.safetensors"].usable
    assert files["taesdxl_decoder.safetensors"].family == "SDXL" and not files["taesdxl_decoder.safetensors"].usable
    assert "encoder" in files["taesd_encoder.safetensors"].reason
