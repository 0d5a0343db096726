"""img2img's sampling maths held to independent references: diffusers' StableDiffusionImg2ImgPipeline, k-diffusion's
own sampler functions driven as A1111's sample_img2img drives them (tests/kdiffusion_reference.py), A1111's
documented step rule, diffusers' AutoencoderKL for the encode, torch's interpolate for the latent upscale.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from generation_support import encode, tiny_pipe  # noqa: F401  (fixtures)
from kdiffusion_reference import (
    A1111_TABLE,
    LdmModel,
    NoiseStream,
    _RandnHijack,
    a1111_sigmas,
    cuda_tree_normals,
    load_kdiffusion,
)

from picotui.engine.errors import JobCancelled, RequestError
from picotui.engine.sampling.generate import denoise
from picotui.engine.sampling.img2img import LATENT_UPSCALE_MODES, img2img_steps, img2img_steps_run, latent_upscale

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

SIZE, CFG = 64, 6.0
SHAPE = (1, 4, SIZE // 8, SIZE // 8)


@pytest.fixture(scope="module")
def conds(encode):
    return encode("a corgi on a wooden floor", "blurry")


@pytest.fixture(scope="module")
def init():
    """Init latents of an SD latent's magnitude (unit std), so the result depends on them as much as on the noise
    (the tiny VAE's own latents are ~0.05 and would vanish under the noise)."""
    return torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(99))


def ours(pipe, conds, init, *, sampler, steps, strength, fixed=False, seed=5, schedule="Automatic", **kw):
    cond, uncond = conds
    return denoise(pipe, cond, uncond, sampler=sampler, schedule=schedule, steps=steps, cfg=CFG, width=SIZE,
                   height=SIZE, seed=seed, preview=False, init_latents=init, denoising_strength=strength,
                   fixed_steps=fixed, **kw)


# --- A1111's step rule ------------------------------------------------------------------------------------------
# setup_img2img_steps, written out by hand. Default: schedule = steps, t_enc = int(min(s, 0.999) * steps).
# Fixed (hires pass): schedule = int(steps / min(s, 0.999)) (0 at s = 0), t_enc = steps - 1. t_enc + 1 steps run.
STEP_TABLE = [
    # steps, strength, fixed, schedule, t_enc, steps run
    (20, 0.75, False, 20, 15, 16),  # int(0.75 * 20) = 15
    (20, 0.7, True, 28, 19, 20),  # int(20 / 0.7) = int(28.57) = 28
    (4, 0.5, False, 4, 2, 3),  # int(0.5 * 4) = 2
    (4, 1.0, False, 4, 3, 4),  # int(0.999 * 4) = int(3.996) = 3: every step runs
    (4, 1.0, True, 4, 3, 4),  # int(4 / 0.999) = int(4.004) = 4
    (10, 0.3, True, 33, 9, 10),  # int(10 / 0.3) = int(33.3) = 33
    (3, 0.2, False, 3, 0, 1),  # int(0.6) = 0: one step at the smallest sigma
    (20, 0.0, False, 20, 0, 1),  # strength 0, default rule: still one step (A1111 does it)
    (20, 0.0, True, 0, 19, 0),  # strength 0, fixed rule: an empty schedule, nothing runs
    (1, 0.5, True, 2, 0, 1),  # int(1 / 0.5) = 2
]


@pytest.mark.parametrize("steps, strength, fixed, schedule, t_enc, run", STEP_TABLE)
def test_a1111_img2img_step_rule(steps, strength, fixed, schedule, t_enc, run):
    assert img2img_steps(steps, strength, fixed=fixed) == (schedule, t_enc)
    assert img2img_steps_run(steps, strength, fixed=fixed) == run


@pytest.mark.parametrize("sampler, steps, strength, fixed, run", [
    ("Euler a", 6, 0.5, False, 4),  # t_enc = 3
    ("DPM++ 2M SDE", 3, 0.7, True, 3),  # the hires rule: schedule int(3 / 0.7) = 4, t_enc = 2
    ("DDIM", 6, 0.5, False, 4),
    ("PLMS", 4, 0.5, False, 3),  # diffusers' PLMS repeats its first timestep: 4 evaluations, 3 steps reported
    ("Euler", 4, 1.0, False, 4),  # strength 1: the whole schedule
    ("DDIM", 4, 1.0, False, 4),
    ("Euler", 4, 0.0, False, 1),  # strength 0, default rule: one step at the smallest sigma, as in A1111
    ("DDIM", 4, 0.0, False, 1),
])
def test_step_reports_count_the_steps_that_run(tiny_pipe, conds, init, sampler, steps, strength, fixed, run):
    reports = []
    latents = ours(tiny_pipe, conds, init, sampler=sampler, steps=steps, strength=strength, fixed=fixed,
                   on_step=reports.append)
    assert [(r.index, r.total) for r in reports] == [(i, run) for i in range(1, run + 1)]
    assert latents.shape == SHAPE and torch.isfinite(latents).all()


@pytest.mark.parametrize("sampler", ["DPM++ 2M", "UniPC"])
def test_strength_0_with_the_hires_rule_returns_the_init_latents(tiny_pipe, conds, init, sampler):
    reports = []
    latents = ours(tiny_pipe, conds, init, sampler=sampler, steps=4, strength=0.0, fixed=True, on_step=reports.append)
    assert torch.equal(latents, init) and reports == []


def test_noise_of_another_size_than_the_init_latents_is_refused(tiny_pipe, conds, init):
    from picotui.engine.sampling.noise import ImageNoise

    noise = ImageNoise((1, 4, 16, 16), 5, source="CPU", device="cpu")  # e.g. the first pass's size in a hires pass
    with pytest.raises(ValueError, match="latent size being denoised"):
        ours(tiny_pipe, conds, init, sampler="Euler", steps=4, strength=0.5, noise=noise)


def test_img2img_starts_from_the_init_latents(tiny_pipe, conds, init):
    a = ours(tiny_pipe, conds, init, sampler="Euler", steps=4, strength=0.5)
    b = ours(tiny_pipe, conds, init * 0.0, sampler="Euler", steps=4, strength=0.5)
    assert (a - b).abs().mean() > 0.1  # the test inputs can tell an ignored init apart


@pytest.mark.parametrize("sampler", ["Euler a", "DDIM"])
def test_cancel_and_preview_work_in_img2img(tiny_pipe, conds, init, sampler):
    previews = []
    with pytest.raises(JobCancelled):
        cond, uncond = conds
        denoise(tiny_pipe, cond, uncond, sampler=sampler, steps=4, cfg=CFG, width=SIZE, height=SIZE, seed=1,
                init_latents=init, denoising_strength=0.75, on_step=lambda r: previews.append(r.preview),
                is_cancelled=lambda: len(previews) >= 1)
    assert len(previews) == 1 and previews[0].size == (SIZE // 8, SIZE // 8)


# --- diffusers' img2img pipeline ----------------------------------------------------------------------------------
def diffusers_img2img(components, conds, init, scheduler, *, steps, strength, seed, eta=0.0):
    """diffusers' own img2img: its timesteps (the last int(steps * strength)), its add_noise with the noise its CPU
    generator draws first (what picotui's CPU noise source draws first for the seed), its loop."""
    from diffusers import StableDiffusionImg2ImgPipeline
    from generation_support import clip_tokenizer

    unet, vae, text_encoder = components
    pipe = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=text_encoder, tokenizer=clip_tokenizer(), unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    cond, uncond = conds
    with torch.no_grad():
        return pipe(prompt_embeds=cond, negative_prompt_embeds=uncond, image=init, strength=strength,
                    num_inference_steps=steps, guidance_scale=CFG, generator=torch.Generator("cpu").manual_seed(seed),
                    eta=eta, output_type="latent").images


def scheduler_for(name):
    import diffusers

    from picotui.engine.sampling.samplers import make_scheduler
    from picotui.paths import assets_dir

    config = diffusers.PNDMScheduler.load_config(str(assets_dir() / "sd15" / "scheduler"), local_files_only=True)
    if name != "Euler":  # the timestep samplers: the scheduler picotui runs them with
        return make_scheduler(name, config)
    # A1111's Euler (Uniform schedule) is t = linspace(999, 0, n) through t_to_sigma: diffusers' "linspace"
    # spacing. At 4 steps the timesteps are 999, 666, 333, 0: integers, where k-diffusion's log-sigma
    # interpolation and diffusers' linear one agree exactly.
    return diffusers.EulerDiscreteScheduler.from_config(config, timestep_spacing="linspace")


@pytest.mark.parametrize("sampler, steps, strength, fixed", [
    ("Euler", 4, 0.5, False), ("DDIM", 4, 0.5, False), ("PLMS", 4, 0.5, False), ("UniPC", 4, 0.5, False),
    ("TCD", 4, 0.5, False),
    ("Euler", 3, 0.75, True),  # the hires rule: schedule int(3 / 0.75) = 4, t_enc + 1 = 3 steps run
    ("DDIM", 3, 0.75, True),
])
def test_img2img_equals_diffusers_img2img_pipeline(tiny_pipe, tiny_components, conds, init, sampler, steps,
                                                    strength, fixed):
    # A1111 at 4 steps and strength 0.5 runs t_enc + 1 = int(0.5 * 4) + 1 = 3 steps: the 4-step schedule's last
    # three (Euler: sigmas at t = 666, 333, 0; DDIM: timesteps 501, 251, 1); so does its hires rule at 3 steps and
    # 0.75. diffusers runs the last int(4 * strength) of 4: strength 0.75 runs those same three. (The two rules
    # differ by one step for the same strength.) TCD's step noise comes from the generator after the first draw.
    from picotui.engine.sampling.samplers import STEP_ETA

    got = ours(tiny_pipe, conds, init, sampler=sampler, steps=steps, strength=strength, fixed=fixed, seed=21)
    eta = STEP_ETA.get(sampler, 0.0)
    expected = diffusers_img2img(tiny_components, conds, init, scheduler_for(sampler), steps=4, strength=0.75,
                                 seed=21, eta=eta)
    assert expected.abs().mean() > 0.1
    torch.testing.assert_close(got, expected, atol=2e-3, rtol=2e-3)
    other = diffusers_img2img(tiny_components, conds, init, scheduler_for(sampler), steps=4, strength=0.5, seed=21,
                              eta=eta)
    assert (other - got).abs().mean() > 0.05  # one step fewer is a different result: the comparison can fail


# --- k-diffusion's own samplers, as A1111's sample_img2img drives them ----------------------------------------------
def a1111_img2img(unet, conds, init, *, sampler, steps, strength, fixed, seed, tree_over_slice=False):
    """A1111's KDiffusionSampler.sample_img2img with k-diffusion's sampler function: A1111's setup_img2img_steps
    written out here, sigma_sched = sigmas[schedule - t_enc - 1:], xi = init + first noise * sigma_sched[0],
    ancestral noise from the same stream (TorchHijack), the SDE Brownian tree over the full sigmas."""
    sampling, external = load_kdiffusion()
    function, options = A1111_TABLE[sampler]
    capped = min(strength, 0.999)
    schedule, t_enc = (int(steps / capped), steps - 1) if fixed else (steps, int(capped * steps))
    model_wrap = external.CompVisDenoiser(LdmModel(unet), quantize=False)
    cond, uncond = conds

    def cfg_denoiser(x, sigma):
        out = model_wrap(torch.cat([x, x]), torch.cat([sigma, sigma]), cond=torch.cat([cond, uncond]))
        return out[1:] + (out[:1] - out[1:]) * CFG

    sigmas = a1111_sigmas(sampling, model_wrap, "Automatic", schedule, options)
    sigma_sched = sigmas[schedule - t_enc - 1:]
    stream = NoiseStream(SHAPE[1:], [seed])
    xi = init + stream.first() * sigma_sched[0]
    extra = {}
    if options.get("brownian_noise"):
        span = sigma_sched if tree_over_slice else sigmas
        with cuda_tree_normals():
            extra["noise_sampler"] = sampling.BrownianTreeNoiseSampler(init, span[span > 0].min(), span.max(),
                                                                       seed=[seed])
    saved = sampling.torch
    sampling.torch = _RandnHijack(stream)
    try:
        with torch.no_grad(), cuda_tree_normals():
            return getattr(sampling, function)(cfg_denoiser, xi, sigma_sched, disable=True, **extra)
    finally:
        sampling.torch = saved


@pytest.mark.parametrize("sampler, steps, strength, fixed", [
    ("Euler a", 4, 0.6, False),  # ancestral: draws after the first from the image's noise stream
    ("DPM++ 2M SDE", 3, 0.6, True),  # SDE, hires rule: schedule int(3 / 0.6) = 5, the last 3 steps run
])
def test_img2img_equals_k_diffusion_driven_as_a1111(tiny_pipe, conds, init, sampler, steps, strength, fixed):
    expected = a1111_img2img(tiny_pipe.unet, conds, init, sampler=sampler, steps=steps, strength=strength,
                             fixed=fixed, seed=13)
    got = ours(tiny_pipe, conds, init, sampler=sampler, steps=steps, strength=strength, fixed=fixed, seed=13)
    torch.testing.assert_close(got, expected, atol=2e-3, rtol=2e-3)
    if sampler == "DPM++ 2M SDE":  # a tree over the img2img slice alone would give other noise: the test can tell
        sliced = a1111_img2img(tiny_pipe.unet, conds, init, sampler=sampler, steps=steps, strength=strength,
                               fixed=fixed, seed=13, tree_over_slice=True)
        assert (sliced - got).abs().mean() > 1e-2


# --- encode ---------------------------------------------------------------------------------------------------------
def picture(width, height):
    rng = np.random.RandomState(3)
    from PIL import Image

    return Image.fromarray(rng.randint(0, 256, (height, width, 3), dtype=np.uint8))


def reference_latents(vae, image):
    """diffusers' AutoencoderKL directly: A1111's pixels (x / 255 * 2 - 1), the posterior mean, the scaling factor."""
    pixels = torch.from_numpy(np.asarray(image).astype(np.float32) / 255.0 * 2.0 - 1.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        return vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor


def test_encode_is_the_vae_posterior_mean_times_the_scaling_factor(tiny_pipe):
    from picotui.engine.sampling.encode import encode as vae_encode

    image = picture(64, 48)
    got = vae_encode(tiny_pipe, image)
    assert got.shape == (1, 4, 6, 8) and got.dtype == torch.float32
    torch.testing.assert_close(got, reference_latents(tiny_pipe.vae, image), atol=1e-5, rtol=1e-5)


def test_encode_honours_the_pipelines_vae_tiling(tiny_pipe, monkeypatch):
    from picotui.engine.sampling.encode import encode as vae_encode

    vae = tiny_pipe.vae
    image = picture(160, 128)  # more than one 64-pixel tile of the tiny VAE
    tiled = []
    original = vae._tiled_encode
    monkeypatch.setattr(vae, "_tiled_encode", lambda x: tiled.append(x.shape) or original(x))
    vae.enable_tiling()
    try:
        got = vae_encode(tiny_pipe, image)
        expected = reference_latents(vae, image)  # diffusers' own tiled encode
    finally:
        vae.disable_tiling()
    assert len(tiled) == 2  # ours, then the reference's
    assert got.shape == (1, 4, 16, 20)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_an_fp16_encode_that_overflows_is_done_again_in_fp32(tiny_components):
    import copy

    from generation_support import plain_pipeline

    from picotui.engine.sampling.encode import ENCODE_NAN_NOTICE
    from picotui.engine.sampling.encode import encode as vae_encode

    unet, vae, text_encoder = tiny_components
    vae = copy.deepcopy(vae)
    with torch.no_grad():  # an encoder whose output is finite in fp32 and beyond fp16's range (65504)
        vae.encoder.conv_out.weight.mul_(1e6)
        vae.encoder.conv_out.bias.mul_(1e6)
    pipe = plain_pipeline(unet, vae.half(), text_encoder)
    image = picture(64, 64)
    notices = []
    got = vae_encode(pipe, image, on_notice=notices.append)
    assert notices == [ENCODE_NAN_NOTICE] and pipe.vae.dtype == torch.float16  # the VAE is back in fp16
    torch.testing.assert_close(got, reference_latents(copy.deepcopy(pipe.vae).float(), image), rtol=1e-4, atol=1e-2)
    assert torch.equal(vae_encode(pipe, image, on_notice=notices.append), got)
    assert len(notices) == 1  # said once: the next encode goes straight to fp32


# --- latent upscale -------------------------------------------------------------------------------------------------
# A1111's modules/shared_items.py latent_upscale_modes, written out independently.
A1111_LATENT_MODES = {
    "Latent": dict(mode="bilinear", antialias=False),
    "Latent (antialiased)": dict(mode="bilinear", antialias=True),
    "Latent (bicubic)": dict(mode="bicubic", antialias=False),
    "Latent (bicubic antialiased)": dict(mode="bicubic", antialias=True),
    "Latent (nearest)": dict(mode="nearest", antialias=False),
    "Latent (nearest-exact)": dict(mode="nearest-exact", antialias=False),
}


def test_the_latent_upscalers_are_a1111s():
    assert set(LATENT_UPSCALE_MODES) == set(A1111_LATENT_MODES)


@pytest.mark.parametrize("name", list(A1111_LATENT_MODES))
def test_latent_upscale_equals_torch_interpolate_with_a1111s_mode(name):
    latents = torch.randn((1, 4, 8, 6), generator=torch.Generator("cpu").manual_seed(1))
    got = latent_upscale(latents, 100, 132, name)  # target in pixels: 132 // 8 = 16 rows, 100 // 8 = 12 columns
    expected = torch.nn.functional.interpolate(latents, size=(16, 12), **A1111_LATENT_MODES[name])
    assert torch.equal(got, expected)


def test_an_unknown_latent_upscaler_says_which_exist():
    with pytest.raises(RequestError, match="Latent \\(bicubic\\)"):
        latent_upscale(torch.zeros(SHAPE), 128, 128, "Lanczos")
