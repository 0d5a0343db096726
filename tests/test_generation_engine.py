"""One image through the engine's pieces: equal to plain diffusers, reproducible, cancellable, safe decode."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from generation_support import encode, plain_image, render, tiny_pipe  # noqa: F401  (encode, tiny_pipe: fixtures)

from picotui.engine.errors import OutOfMemory, PicoError
from picotui.engine.sampling.generate import JobCancelled, PromptCache, decode
from picotui.engine.sampling.preview import SD15_LATENT_RGB, latents_to_preview

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROMPT, NEGATIVE = "welsh pembroke corgi, sitting on wooden floor, warm lighting", "blurry, watermark"


def engine_image(pipe, encode, *, sampler="DPM++ 2M SDE Karras", steps=4, cfg=7.0, size=64, seed=1, prompt=PROMPT,
                 **kw):
    return render(pipe, encode, prompt, NEGATIVE, sampler=sampler, steps=steps, cfg=cfg, width=size, height=size,
                  seed=seed, **kw)


# The samplers picotui runs through diffusers' own loop (A1111's timestep samplers). The k-diffusion samplers
# (DPM++ 2M SDE Karras, Euler a, Heun, ...) are held to k-diffusion itself in test_sampling_a1111_parity.py:
# diffusers' versions of them are not A1111's maths (sigmas interpolated linearly in t, SDE noise drawn from
# the generator instead of a Brownian tree).
@pytest.mark.parametrize("sampler,cfg,width,height", [("DDIM", 7.0, 64, 80), ("PLMS", 5.5, 96, 64),
                                                      ("UniPC", 7.0, 64, 64), ("DDIM", 1.0, 64, 64)])
def test_engine_image_equals_plain_diffusers(tiny_pipe, tiny_components, encode, sampler, cfg, width, height):
    ours = render(tiny_pipe, encode, PROMPT, NEGATIVE, sampler=sampler, steps=5, cfg=cfg, width=width, height=height,
                  seed=42).astype(np.int16)
    ref = plain_image(tiny_components, PROMPT, NEGATIVE, sampler=sampler, steps=5, cfg=cfg, width=width,
                      height=height, seed=42).astype(np.int16)  # same weights, diffusers' own prompt handling
    assert ours.shape == ref.shape == (height, width, 3)
    assert np.abs(ours - ref).max() <= 1  # uint8 rounding is the only slack
    assert ours.std() > 5  # a real picture of noise, not a flat image that would match anything


def test_same_seed_same_image_other_seed_other_image(tiny_pipe, encode):
    a = engine_image(tiny_pipe, encode, seed=7)
    b = engine_image(tiny_pipe, encode, seed=7)
    c = engine_image(tiny_pipe, encode, seed=8)
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 5


def test_the_noise_comes_from_a_cpu_generator(tiny_pipe, encode):
    # the same seed on another device must give the same start: diffusers draws it from our CPU generator
    seen = []
    hook = tiny_pipe.unet.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()) if not seen else None)
    try:
        engine_image(tiny_pipe, encode, sampler="DDIM", steps=1, cfg=1.0, seed=123)
    finally:
        hook.remove()
    expected = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(123))
    assert torch.allclose(seen[0], expected)  # DDIM: init_noise_sigma 1, no input scaling


def test_cancel_takes_effect_within_one_step(tiny_pipe, encode):
    calls = []
    hook = tiny_pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    reports = []
    try:
        with pytest.raises(JobCancelled):
            engine_image(tiny_pipe, encode, sampler="Euler", steps=20, on_step=reports.append,
                         is_cancelled=lambda: len(reports) >= 2)
    finally:
        hook.remove()
    assert [r.index for r in reports] == [1, 2]
    assert len(calls) == 3  # the cancel is seen right after the step that set it: no more model calls
    engine_image(tiny_pipe, encode, sampler="Euler", steps=2)  # and the pipeline still works


def test_step_reports_carry_speed_eta_and_a_preview(tiny_pipe, encode):
    reports = []
    engine_image(tiny_pipe, encode, sampler="Heun", steps=3, size=96, on_step=reports.append)
    assert [r.index for r in reports] == [1, 2, 3]  # Heun's two model calls per step count as one step
    assert all(r.total == 3 and r.it_per_s > 0 and r.eta_s >= 0 for r in reports)
    assert reports[-1].eta_s == 0
    assert reports[0].preview.size == (12, 12) and reports[0].preview.mode == "RGB"


def test_preview_is_the_linear_latent_to_rgb_map():
    latents = torch.zeros(1, 4, 2, 3)
    latents[0, 3, 1, 2] = 1.0  # channel 3 alone: the 4th row of the factors
    image = np.asarray(latents_to_preview(latents))
    assert image.shape == (2, 3, 3)
    expected = np.round((np.clip(SD15_LATENT_RGB[3], -1, 1) + 1) * 127.5)
    assert np.array_equal(image[1, 2], expected)
    assert np.array_equal(image[0, 0], [128, 128, 128])  # zero latent -> mid grey (127.5 rounds to even)


def test_fp16_vae_nan_is_decoded_again_in_fp32(tiny_pipe):
    from diffusers.image_processor import VaeImageProcessor

    vae = copy.deepcopy(tiny_pipe.vae)
    with torch.no_grad():  # large but finite weights: fp16 overflows to inf -> NaN, fp32 copes (a real fp16 fault)
        vae.post_quant_conv.weight.mul_(3e4)
    vae.half()

    class Pipe:  # decode() needs only these three members of a pipeline
        image_processor = VaeImageProcessor(vae_scale_factor=8)

        def maybe_free_model_hooks(self):
            pass

    pipe = Pipe()
    pipe.vae = vae
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)).half()
    assert not torch.isfinite(vae.decode(latents / 0.18215).sample).all()
    notices = []
    image = np.asarray(decode(pipe, latents, on_notice=notices.append))
    assert len(notices) == 1 and "fp32" in notices[0]
    assert image.shape == (64, 64, 3) and image.std() > 0
    assert vae.dtype == torch.float16  # the VAE goes back to fp16 for the next image


def test_out_of_memory_becomes_a_one_line_message(tiny_pipe, encode):
    def boom(*args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    hook = tiny_pipe.unet.register_forward_pre_hook(boom)
    try:
        with pytest.raises(OutOfMemory) as err:
            engine_image(tiny_pipe, encode, sampler="Euler", steps=2, size=128)
    finally:
        hook.remove()
    assert err.value.kind == "out-of-memory"
    assert "128x128" in str(err.value) and "smaller size" in str(err.value) and "\n" not in str(err.value)


def test_nan_latents_are_reported_not_saved_as_black(tiny_pipe, encode):
    hook = tiny_pipe.unet.register_forward_hook(lambda m, a, out: (out[0] * float("nan"),))
    try:
        with pytest.raises(PicoError) as err:
            engine_image(tiny_pipe, encode, sampler="Euler", steps=1)
    finally:
        hook.remove()
    assert err.value.kind == "nan"


def test_prompt_cache_encodes_an_unchanged_prompt_once():
    cache, calls = PromptCache(size=2), []
    for key in ("a", "a", "b", "a", "c", "b"):
        cache.get(key, lambda k=key: calls.append(k) or k.upper())
    assert calls == ["a", "b", "c", "b"]  # "b" was evicted by "c" (size 2)
    assert cache.get("c", lambda: "new") == "C"
