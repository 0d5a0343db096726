"""The memory plans as a GPU run would drive them, on CPU: accelerate's offload hooks work with the CPU as the
execution device, so VAE switches, mode changes and the leanest mode run for real here. Where the only
difference is *which* device a call names, the call is recorded (injected), and the test says so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_VAE
from generation_support import encoder_for, render

from picotui.engine.hardware.memory import MemoryPlan, apply_plan
from picotui.engine.models.library import sniff
from picotui.engine.models.loading import ModelManager

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FULL = MemoryPlan("full-gpu")
MODEL = MemoryPlan("model-offload", model_offload=True, text_encoder_offload=True)
SEQUENTIAL = MemoryPlan("sequential-offload", sequential_offload=True, text_encoder_offload=True, vae_tiling=True)
LEANEST = MemoryPlan("attention-slicing", sequential_offload=True, text_encoder_offload=True, vae_tiling=True,
                     attention_slicing=True)


@pytest.fixture
def manager(tiny_checkpoint):
    m = ModelManager(None, "cpu", torch.float32)
    m.pipeline_for(sniff(tiny_checkpoint))
    return m


def picture(manager, plan, vae=None):
    pipe = manager.pipeline_for(manager.checkpoint, vae, [])
    if not hasattr(manager, "prompts"):  # encoded once, before any offload: accelerate's sequential hooks
        manager.prompts = encoder_for(pipe)("a corgi", "blurry")  # fail on CLIP's embeddings on CPU
    apply_plan(pipe, plan, torch.device("cpu"))
    return render(pipe, lambda *_: manager.prompts, sampler="Euler", steps=2, seed=3).astype(int)


def placed(manager, plan, vae=None):
    pipe = manager.pipeline_for(manager.checkpoint, vae, [])
    apply_plan(pipe, plan, torch.device("cpu"))
    return pipe


def hooked(module) -> bool:
    return any(hasattr(m, "_hf_hook") for m in module.modules())


def test_switching_the_vae_under_sequential_offload_and_back(manager, models_root, tiny_components):
    """Issue 11.2, CPU-real: the old VAE's weights sit on "meta" under sequential offload (its `.to("cpu")`
    raised "Cannot copy out of meta tensor"); the swapped-in VAE gets the plan (offload hooks, tiling); the
    checkpoint's own VAE comes back with its real weights. (A sequentially offloaded forward pass does not run
    on CPU with accelerate 1.15 / torch 2.13, so images are compared under model offload below.)"""
    from generation_support import same_tensors

    vae_file = sniff(models_root / "vae" / TINY_VAE)
    own = placed(manager, SEQUENTIAL).vae
    assert hooked(own) and any(p.device.type == "meta" for p in own.parameters())
    other = placed(manager, SEQUENTIAL, vae_file).vae
    assert other is not own and hooked(other), "the swapped-in VAE got no offload hooks"
    assert other.use_tiling, "the swapped-in VAE did not get the plan's tiling"
    assert not hooked(own) and all(p.device.type == "cpu" for p in own.parameters())
    back = placed(manager, SEQUENTIAL).vae
    assert back is own and hooked(back) and back.use_tiling
    placed(manager, FULL)  # and out of offload: every weight real again, equal to what the file holds
    assert not hooked(own) and not own.use_tiling
    same_tensors(own.state_dict(), tiny_components[1].state_dict())


def test_a_vae_switched_under_model_offload_is_offloaded_and_decodes_as_without_offload(manager, models_root):
    vae_file = sniff(models_root / "vae" / TINY_VAE)
    own_full, other_full = picture(manager, FULL), picture(manager, FULL, vae_file)
    assert np.abs(own_full - other_full).max() > 10  # the two VAEs do differ
    own = picture(manager, MODEL)
    other = picture(manager, MODEL, vae_file)
    assert hasattr(manager.pipe.vae, "_hf_hook"), "the new VAE would sit on the GPU outside the plan"
    back = picture(manager, MODEL)
    for got, want in ((own, own_full), (other, other_full), (back, own_full)):  # equal up to uint8 rounding
        assert np.abs(got - want).max() <= 1


def test_the_leanest_mode_keeps_sdpa_attention(manager):
    """Issue 11.3, CPU-real: sliced attention materialises N x N scores; SDPA is leaner, so it stays."""
    pipe = manager.pipe
    before = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    assert before == {"AttnProcessor2_0"}
    placed(manager, LEANEST)
    assert {type(p).__name__ for p in pipe.unet.attn_processors.values()} == before


def test_mode_changes_into_offload_never_put_everything_on_the_card(manager, monkeypatch):
    """Issue 11.7, the call injected: on CPU "the card" is the CPU, so each `.to()` a mode change makes is
    recorded; moving between offload modes must not send the whole pipeline to the execution device."""
    from diffusers import StableDiffusionPipeline

    card = torch.device("cpu")
    calls = []
    real_to = StableDiffusionPipeline.to

    def to(self, *args, **kwargs):
        calls.append(args[0] if args else kwargs.get("device"))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "to", to)
    pipe = manager.pipe
    for before, after in ((MODEL, SEQUENTIAL), (SEQUENTIAL, MODEL), (FULL, SEQUENTIAL), (LEANEST, MODEL)):
        apply_plan(pipe, before, card)
        calls.clear()
        apply_plan(pipe, after, card)
        # diffusers' enable_*_offload move to "cpu" by name; a move to the execution device object is ours
        assert all(c is not card for c in calls), (before.mode, after.mode, calls)


def test_a_vae_that_fails_in_fp16_is_decoded_tiled_in_fp32_and_remembered(tiny_components, monkeypatch):
    """Issue 11.8, CPU-real with the fp16 NaN injected (a tiny VAE does not overflow): the fp32 retry tiles a
    more-than-one-tile image (fp32 doubles the decode's peak), and the next image skips the fp16 attempt."""
    import copy

    from diffusers import AutoencoderKL
    from generation_support import plain_pipeline

    from picotui.engine.sampling.generate import NAN_RETRY_NOTICE, decode

    pipe = plain_pipeline(*copy.deepcopy(tiny_components))
    pipe.vae.to(torch.float16)
    calls = []
    real = AutoencoderKL.decode

    def fp16_overflows(self, z, *args, **kwargs):
        calls.append((self.dtype, self.use_tiling))
        if self.dtype == torch.float16:
            return (torch.full((z.shape[0], 3, z.shape[2] * 8, z.shape[3] * 8), float("nan")),)
        return real(self, z, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, "decode", fp16_overflows)
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(4))  # 128², tiles of 64²
    notices = []
    first = np.asarray(decode(pipe, latents, on_notice=notices.append))
    assert calls == [(torch.float16, False), (torch.float32, True)] and notices == [NAN_RETRY_NOTICE]
    calls.clear()
    second = np.asarray(decode(pipe, latents, on_notice=notices.append))
    assert calls == [(torch.float32, True)], "fp16 was tried again for a VAE known to fail in it"
    assert notices == [NAN_RETRY_NOTICE]
    assert pipe.vae.dtype == torch.float16 and not pipe.vae.use_tiling  # the plan's state is back
    # the reference: diffusers' own tiled fp32 decode of the same latents
    reference = copy.deepcopy(tiny_components[1]).half().float()  # the weights as fp16 stored them
    reference.enable_tiling()
    with torch.no_grad():
        out = real(reference, latents / reference.config.scaling_factor, return_dict=False)[0]
    # to 8 bits as A1111 does (truncated): (x + 1) / 2 clamped, times 255
    expected = (255.0 * np.moveaxis(((out[0].float() + 1) / 2).clamp(0, 1).numpy(), 0, 2)).astype(np.uint8)
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)
