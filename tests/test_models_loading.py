"""ModelManager: civitai-layout files -> a diffusers pipeline, offline; VAE and LoRA swaps without reloads."""

from __future__ import annotations

import socket

import pytest
import torch
from conftest import DIFFUSERS_LORA, KOHYA_LORA, TINY_VAE
from generation_support import same_tensors as _same
from safetensors.torch import load_file, save_file

from picotui.engine.errors import ModelError
from picotui.engine.models import ldm_layout as L
from picotui.engine.models.library import sniff
from picotui.engine.models.loading import ModelManager


@pytest.fixture(scope="module")
def manager(tiny_checkpoint):
    stages = []
    m = ModelManager(None, "cpu", torch.float32, on_stage=lambda stage, fraction: stages.append((stage, fraction)))
    m.stages = stages
    m.pipeline_for(sniff(tiny_checkpoint))
    return m


def _unet_out(pipe):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 8, 8, generator=gen)
    cond = torch.randn(1, 77, pipe.unet.config.cross_attention_dim, generator=gen)
    with torch.no_grad():
        return pipe.unet(x, torch.tensor([500]), cond).sample


def _text_out(pipe):
    ids = pipe.tokenizer("a corgi on a wooden floor", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


def test_loaded_weights_equal_the_models_the_file_was_written_from(manager, tiny_components):
    unet, vae, text_encoder = tiny_components
    pipe = manager.pipe
    _same(pipe.unet.state_dict(), unet.state_dict())
    _same(pipe.vae.state_dict(), vae.state_dict())
    _same(pipe.text_encoder.state_dict(), text_encoder.state_dict())
    assert pipe.vae.config.scaling_factor == 0.18215
    assert pipe.tokenizer("a cat").input_ids == [49406, 320, 2368, 49407]  # bundled CLIP tokenizer


def test_load_reports_stages_in_order(manager):
    names = [s for s, _ in manager.stages]
    for stage in ("reading checkpoint", "building UNet", "building text encoder", "building VAE"):
        assert stage in names
    assert names.index("reading checkpoint") < names.index("building UNet") < names.index("building VAE")
    fractions = [f for _, f in manager.stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_loading_never_touches_the_network(tiny_checkpoint, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted during loading")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    m = ModelManager(None, "cpu", torch.float32)
    pipe = m.pipeline_for(sniff(tiny_checkpoint))
    image = pipe(prompt_embeds=torch.zeros(1, 77, 32), negative_prompt_embeds=torch.zeros(1, 77, 32),
                 num_inference_steps=2, height=64, width=64, output_type="np").images
    assert image.shape == (1, 64, 64, 3)


def test_same_checkpoint_is_not_reloaded(manager, tiny_checkpoint):
    unet, count = manager.pipe.unet, manager.load_count
    assert manager.pipeline_for(sniff(tiny_checkpoint)).unet is unet
    assert manager.load_count == count


def test_vae_swap_keeps_the_checkpoint_and_own_vae_comes_back(manager, models_root):
    pipe = manager.pipe
    unet, text_encoder, own_vae, count = pipe.unet, pipe.text_encoder, pipe.vae, manager.load_count
    vae_file = sniff(models_root / "vae" / TINY_VAE)
    swapped = manager.pipeline_for(manager.checkpoint, vae_file, [])
    assert swapped.unet is unet and swapped.text_encoder is text_encoder and manager.load_count == count
    assert swapped.vae is not own_vae
    ldm = load_file(str(vae_file.path))
    cfg = dict(swapped.vae.config)
    back = {k: (v[:, :, 0, 0] if v.ndim == 4 and ".attn_1." in k and "norm" not in k else v) for k, v in ldm.items()}
    for key, tensor in swapped.vae.state_dict().items():
        assert torch.equal(tensor, back[L.vae_key_to_ldm(key, cfg)]), key
    restored = manager.pipeline_for(manager.checkpoint, None, [])
    assert restored.vae is own_vae and restored.unet is unet and manager.load_count == count


def test_vae_in_diffusers_key_layout(manager, tmp_path):
    from picotui.engine.models.demo import build_tiny_components

    other = build_tiny_components(seed=7)[1]
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(path))
    pipe = manager.pipeline_for(manager.checkpoint, sniff(path), [])
    _same(pipe.vae.state_dict(), other.state_dict())
    manager.pipeline_for(manager.checkpoint, None, [])


@pytest.mark.parametrize("lora_name", [KOHYA_LORA, DIFFUSERS_LORA])
def test_lora_changes_output_and_weight_changes_do_not_reload(manager, models_root, lora_name):
    lora = sniff(models_root / "loras" / lora_name)
    pipe = manager.pipeline_for(manager.checkpoint, None, [])
    base, unet, count = _unet_out(pipe), pipe.unet, manager.load_count
    with_lora = _unet_out(manager.pipeline_for(manager.checkpoint, None, [(lora, 0.8)]))
    assert not torch.allclose(with_lora, base, atol=1e-4)
    stronger = _unet_out(manager.pipeline_for(manager.checkpoint, None, [(lora, 1.6)]))
    assert not torch.allclose(stronger, with_lora, atol=1e-4)
    zero = _unet_out(manager.pipeline_for(manager.checkpoint, None, [(lora, 0.0)]))
    torch.testing.assert_close(zero, base)
    again = _unet_out(manager.pipeline_for(manager.checkpoint, None, [(lora, 0.8)]))
    torch.testing.assert_close(again, with_lora)
    assert manager.pipe.unet is unet and manager.load_count == count
    # dropping the LoRA removes its adapter and gives back the plain model
    torch.testing.assert_close(_unet_out(manager.pipeline_for(manager.checkpoint, None, [])), base)
    assert not manager._adapters


def test_kohya_lora_reaches_the_text_encoder(manager, models_root):
    lora = sniff(models_root / "loras" / KOHYA_LORA)
    base = _text_out(manager.pipeline_for(manager.checkpoint, None, []))
    assert not torch.allclose(_text_out(manager.pipeline_for(manager.checkpoint, None, [(lora, 1.0)])), base)
    torch.testing.assert_close(_text_out(manager.pipeline_for(manager.checkpoint, None, [])), base)


def test_two_loras_at_once(manager, models_root):
    a = sniff(models_root / "loras" / KOHYA_LORA)
    b = sniff(models_root / "loras" / DIFFUSERS_LORA)
    only_a = _unet_out(manager.pipeline_for(manager.checkpoint, None, [(a, 0.8)]))
    both = _unet_out(manager.pipeline_for(manager.checkpoint, None, [(a, 0.8), (b, 0.5)]))
    assert not torch.allclose(both, only_a, atol=1e-4)
    assert len(manager._adapters) == 2
    torch.testing.assert_close(_unet_out(manager.pipeline_for(manager.checkpoint, None, [(a, 0.8)])), only_a)
    assert len(manager._adapters) == 1
    manager.pipeline_for(manager.checkpoint, None, [])


def test_pickle_checkpoint_needs_opt_in(tiny_checkpoint, tmp_path, tiny_components):
    path = tmp_path / "tinySD15.ckpt"
    torch.save({"state_dict": load_file(str(tiny_checkpoint))}, str(path))
    with pytest.raises(ModelError, match="allow-pickle"):
        ModelManager(None, "cpu", torch.float32).pipeline_for(sniff(path))
    pipe = ModelManager(None, "cpu", torch.float32, allow_pickle=True).pipeline_for(sniff(path))
    _same(pipe.unet.state_dict(), tiny_components[0].state_dict())


def test_pickle_vae_needs_opt_in_and_then_loads(manager, models_root, tmp_path):
    # The classic vae-ft-mse-840000-ema-pruned.ckpt: Lightning wrapper, LDM keys, no prefix, extra loss.* keys.
    sd = load_file(str(models_root / "vae" / TINY_VAE))
    path = tmp_path / "tiny-vae-ema-pruned.ckpt"
    torch.save({"state_dict": {**sd, "loss.logvar": torch.zeros(())}}, str(path))
    unet = manager.pipe.unet
    with pytest.raises(ModelError, match="allow-pickle"):
        manager.pipeline_for(manager.checkpoint, sniff(path), [])
    manager.allow_pickle = True
    try:
        pipe = manager.pipeline_for(manager.checkpoint, sniff(path), [])
        ref = manager.pipeline_for(manager.checkpoint, sniff(models_root / "vae" / TINY_VAE), []).vae
        _same(pipe.vae.state_dict(), ref.state_dict())
        assert manager.pipe.unet is unet
    finally:
        manager.allow_pickle = False
        manager.pipeline_for(manager.checkpoint, None, [])


class _RunsCode:
    """Unpickling this calls os.mkdir(marker): a visible side effect, standing in for any code a file runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.mkdir, (self.marker,))


def _evil_pickle(path, marker, real_weights: dict):
    """A real torch.save zip file (what a .ckpt/.pt is) with the payload next to genuine tensors."""
    torch.save({"state_dict": {**real_weights, "payload": _RunsCode(marker)}}, str(path))
    return path


@pytest.mark.parametrize("slot", ["checkpoints", "loras", "vae"])
def test_a_pickle_that_runs_code_never_runs_it_even_with_opt_in(manager, models_root, tiny_checkpoint, tmp_path,
                                                               slot):
    import warnings

    marker = tmp_path / f"owned-{slot}"
    suffix = ".ckpt" if slot == "checkpoints" else ".pt"
    source = {"checkpoints": tiny_checkpoint, "loras": models_root / "loras" / KOHYA_LORA,
              "vae": models_root / "vae" / TINY_VAE}[slot]
    (tmp_path / slot).mkdir()
    path = _evil_pickle(tmp_path / slot / f"evil{suffix}", marker, load_file(str(source)))
    mf = sniff(path, allow_pickle=True)
    assert mf.usable and mf.folder == slot  # the opt-in is on: the library offers it
    if slot == "checkpoints":
        loader = ModelManager(None, "cpu", torch.float32, allow_pickle=True)
        load = lambda: loader.pipeline_for(mf)  # noqa: E731
    else:
        manager.allow_pickle = True
        load = (lambda: manager.pipeline_for(manager.checkpoint, mf, [])) if slot == "vae" else (  # noqa: E731
            lambda: manager.pipeline_for(manager.checkpoint, None, [(mf, 1.0)]))
    try:
        with pytest.raises(ModelError, match="could not be loaded safely") as info:
            load()
    finally:
        manager.allow_pickle = False
    assert "\n" not in str(info.value) and path.name in str(info.value)
    assert not marker.exists(), "the pickle ran code while being loaded"
    # the payload is real: an unsafe load (what picotui never does) runs it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(str(path), map_location="cpu", weights_only=False)
    assert marker.is_dir()
    assert manager.pipeline_for(manager.checkpoint, None, []).unet is not None  # the manager is unharmed


@pytest.mark.parametrize("module", ["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k",
                                    "mid_block.attentions.0.proj_in"])
def test_kohya_lora_math_matches_a1111(manager, models_root, module):
    # A1111/kohya: W' = W + weight * (alpha / rank) * up @ down, for Linear layers and 1x1 convs alike.
    lora = sniff(models_root / "loras" / KOHYA_LORA)
    pipe = manager.pipeline_for(manager.checkpoint, None, [(lora, 0.7)])
    try:
        layer = pipe.unet.get_submodule(module)
        raw = load_file(str(lora.path))
        base = "lora_unet_" + module.replace(".", "_")
        down, up = raw[base + ".lora_down.weight"], raw[base + ".lora_up.weight"]
        scale = 0.7 * raw[base + ".alpha"].item() / down.shape[0]
        shape = (2, down.shape[1], 4, 4) if down.ndim == 4 else (2, down.shape[1])
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            delta = layer(x) - layer.base_layer(x)
            flat = x.movedim(1, -1) if x.ndim == 4 else x
            expected = scale * flat @ down.flatten(1).T @ up.flatten(1).T
            expected = expected.movedim(-1, 1) if x.ndim == 4 else expected
        torch.testing.assert_close(delta, expected, rtol=1e-4, atol=1e-5)
    finally:
        manager.pipeline_for(manager.checkpoint, None, [])


def test_a_broken_lora_fails_cleanly_and_leaves_the_model_as_it_was(manager, tmp_path):
    path = tmp_path / "notReallyALora.safetensors"
    save_file({"lora_unet_nowhere_to_q.lora_down.weight": torch.zeros(4, 7),
               "lora_unet_nowhere_to_q.lora_up.weight": torch.zeros(7, 4)}, str(path))
    pipe = manager.pipeline_for(manager.checkpoint, None, [])
    base = _unet_out(pipe)
    with pytest.raises(ModelError, match="notReallyALora.*SD1.5") as info:
        manager.pipeline_for(manager.checkpoint, None, [(sniff(path), 1.0)])
    assert "\n" not in str(info.value)
    torch.testing.assert_close(_unet_out(manager.pipeline_for(manager.checkpoint, None, [])), base)
    assert not manager._adapters
