"""A1111's sampler names and schedule types: the table, the sigmas, every sampler on the tiny model, and the
samplers that have a reference outside k-diffusion (diffusers' DPM++ SDE and LCM schedulers, diffusers' own
DDIM/PLMS/UniPC)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from generation_support import encode, plain_image, render, tiny_pipe  # noqa: F401  (encode, tiny_pipe: fixtures)
from kdiffusion_reference import ldm_alphas_cumprod, load_kdiffusion

from picotui.engine.errors import RequestError
from picotui.engine.sampling.samplers import (
    DEFAULT_SAMPLER,
    DEFAULT_SCHEDULE_TYPE,
    SAMPLER_NAMES,
    SAMPLERS,
    a1111_schedule,
    make_scheduler,
    split_sampler_name,
)
from picotui.engine.sampling.schedules import SCHEDULE_TYPES, LCMSigmas, ModelSigmas, sigmas_for
from picotui.paths import assets_dir

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

BASE = json.loads((assets_dir() / "sd15" / "scheduler" / "scheduler_config.json").read_text())
# A1111 >= 1.9's sampler list and schedule types, written out by hand.
A1111_SAMPLERS = ["DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
                  "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "Restart", "DDIM", "PLMS", "UniPC", "LCM"]
A1111_SCHEDULES = ["Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform"]
# modules/sd_samplers_kdiffusion.py: the schedule each sampler's "Automatic" means (absent: Uniform).
A1111_AUTOMATIC = {"DPM++ 2M": "Karras", "DPM++ SDE": "Karras", "DPM++ 2M SDE": "Exponential",
                   "DPM++ 2M SDE Heun": "Exponential", "DPM++ 2S a": "Karras", "DPM++ 3M SDE": "Exponential",
                   "DPM2": "Karras", "DPM2 a": "Karras", "Restart": "Karras"}


def test_the_names_are_a1111s_and_the_default_is_dpmpp_2m_sde_karras():
    assert list(SAMPLER_NAMES) == [*A1111_SAMPLERS, "TCD"]  # TCD: picotui's one sampler A1111 lacks (issue 15)
    assert list(SCHEDULE_TYPES) == A1111_SCHEDULES
    assert (DEFAULT_SAMPLER, DEFAULT_SCHEDULE_TYPE) == ("DPM++ 2M SDE", "Karras")


@pytest.mark.parametrize("name", A1111_SAMPLERS)
def test_automatic_resolves_as_in_a1111(name):
    expected = "Automatic" if name in ("DDIM", "PLMS", "UniPC") else A1111_AUTOMATIC.get(name, "Automatic")
    assert a1111_schedule(name, "Automatic") == expected
    timestep = name in ("DDIM", "PLMS", "UniPC")  # they take no schedule
    assert a1111_schedule(name, "SGM Uniform") == ("Automatic" if timestep else "SGM Uniform")


def test_old_combined_names_split():
    assert split_sampler_name("DPM++ 2M Karras") == ("DPM++ 2M", "Karras")
    assert split_sampler_name("DPM++ 2M SDE Karras") == ("DPM++ 2M SDE", "Karras")
    assert split_sampler_name("DPM++ 2M SDE Heun Exponential") == ("DPM++ 2M SDE Heun", "Exponential")
    assert split_sampler_name("Euler a") == ("Euler a", None)
    assert split_sampler_name("Euler b") == (None, None)


# ---- sigmas, against k-diffusion's own schedule functions and DiscreteSchedule ----------------------------

@pytest.fixture(scope="module")
def kd():
    sampling, external = load_kdiffusion()
    return sampling, external.DiscreteSchedule(
        ((1 - ldm_alphas_cumprod()) / ldm_alphas_cumprod()) ** 0.5, quantize=False)


def test_model_sigmas_are_sd15s(kd):
    levels = ModelSigmas(ldm_alphas_cumprod())
    assert levels.sigma_min.item() == pytest.approx(0.0292, abs=1e-4)
    assert levels.sigma_max.item() == pytest.approx(14.6146, abs=1e-4)
    sigmas = torch.tensor([14.6, 3.3, 1.0, 0.2, 0.03])
    assert torch.allclose(levels.sigma_to_t(sigmas), kd[1].sigma_to_t(sigmas))
    t = torch.tensor([999.0, 612.5, 3.25, 0.0])
    assert torch.allclose(levels.t_to_sigma(t), kd[1].t_to_sigma(t))


@pytest.mark.parametrize("steps", [1, 4, 24])
def test_schedules_equal_k_diffusions(kd, steps):
    sampling, schedule = kd
    levels = ModelSigmas(ldm_alphas_cumprod())
    lo, hi = schedule.sigmas[0].item(), schedule.sigmas[-1].item()
    assert torch.equal(sigmas_for("Uniform", steps, levels), schedule.get_sigmas(steps))
    assert torch.equal(sigmas_for("Karras", steps, levels), sampling.get_sigmas_karras(steps, lo, hi))
    assert torch.equal(sigmas_for("Exponential", steps, levels), sampling.get_sigmas_exponential(steps, lo, hi))
    assert torch.equal(sigmas_for("Polyexponential", steps, levels),
                       sampling.get_sigmas_polyexponential(steps, lo, hi, rho=1.0))


def test_sgm_uniform_drops_the_last_timestep_and_automatic_follows_the_sampler():
    levels = ModelSigmas(ldm_alphas_cumprod())
    sgm = sigmas_for("SGM Uniform", 4, levels)
    assert len(sgm) == 5 and sgm[-1] == 0 and sgm[0].item() == pytest.approx(14.6146, abs=1e-3)
    assert sgm[-2].item() > 0.5  # t = 999 * 1/4: far above sigma_min, unlike Uniform's last level
    assert torch.equal(sigmas_for("Automatic", 6, levels, automatic="Exponential"), sigmas_for("Exponential", 6, levels))
    assert torch.equal(sigmas_for("Automatic", 6, levels), sigmas_for("Uniform", 6, levels))


def test_discarding_the_next_to_last_sigma():
    levels = ModelSigmas(ldm_alphas_cumprod())
    full = sigmas_for("Karras", 6, levels)  # 6 steps of 7 sigmas + 0
    kept = sigmas_for("Karras", 5, levels, discard_next_to_last=True)
    assert len(kept) == 6 and torch.equal(kept, torch.cat([full[:-2], full[-1:]]))


def test_lcm_uses_its_50_distilled_timesteps():
    levels = LCMSigmas(ldm_alphas_cumprod())
    assert len(levels.sigmas) == 50
    assert levels.sigma_to_t(levels.sigma_max).item() == 999 and levels.sigma_to_t(levels.sigma_min).item() == 19
    assert [round(levels.sigma_to_t(s).item()) for s in sigmas_for("Automatic", 2, levels)[:-1]] == [999, 19]


# ---- timestep samplers: diffusers' schedulers, with A1111's discretisation ---------------------------------

TIMESTEP = {"DDIM": ("DDIMScheduler", dict(timestep_spacing="leading", steps_offset=1, clip_sample=False,
                                          set_alpha_to_one=False)),
            "PLMS": ("PNDMScheduler", dict(timestep_spacing="leading", steps_offset=1, skip_prk_steps=True)),
            "UniPC": ("UniPCMultistepScheduler", dict(timestep_spacing="linspace")),
            # not in A1111; diffusers' TCD docs build it from the checkpoint's config as it is
            "TCD": ("TCDScheduler", dict(timestep_spacing="leading", steps_offset=1))}


@pytest.mark.parametrize("name", sorted(TIMESTEP))
def test_timestep_samplers_build_the_pinned_diffusers_scheduler(name):
    cls, config = TIMESTEP[name]
    scheduler = make_scheduler(name, BASE)
    assert type(scheduler).__name__ == cls
    assert {k: scheduler.config[k] for k in config} == config
    assert scheduler.config.beta_schedule == "scaled_linear"


def test_a1111_ddim_timesteps():
    ddim = make_scheduler("DDIM", BASE)  # A1111's DDIM: arange(0, 1000, 1000 // n) + 1
    ddim.set_timesteps(20)
    assert [int(t) for t in ddim.timesteps] == list(range(951, 0, -50))


def test_a_k_sampler_is_no_diffusers_scheduler():
    with pytest.raises(RequestError) as err:
        make_scheduler("Euler", BASE)
    assert "\n" not in str(err.value)


# ---- every sampler runs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", A1111_SAMPLERS)
def test_each_sampler_denoises_the_tiny_model_in_two_steps(tiny_pipe, encode, name):
    steps = []
    image = render(tiny_pipe, encode, sampler=name, steps=2, seed=3, on_step=steps.append)
    assert [s.index for s in steps] == [1, 2] and all(s.total == 2 for s in steps)
    assert image.shape == (64, 64, 3) and image.std() > 1


def test_an_unknown_sampler_is_a_one_line_request_error(tiny_pipe, encode):
    with pytest.raises(RequestError) as err:
        render(tiny_pipe, encode, sampler="Euler b", steps=2, seed=1)
    assert "\n" not in str(err.value) and "Euler a" in str(err.value)


def test_an_old_combined_name_runs_its_schedule(tiny_pipe, encode):
    old = render(tiny_pipe, encode, sampler="DPM++ 2M Karras", steps=3, seed=9)
    new = render(tiny_pipe, encode, sampler="DPM++ 2M", schedule="Karras", steps=3, seed=9)
    uniform = render(tiny_pipe, encode, sampler="DPM++ 2M", schedule="Uniform", steps=3, seed=9)
    assert np.array_equal(old, new) and np.abs(old.astype(int) - uniform).mean() > 1


# ---- references outside k-diffusion ------------------------------------------------------------------------

def test_dpmpp_sde_karras_equals_plain_diffusers_with_the_same_scheduler(tiny_pipe, tiny_components, encode):
    # diffusers' DPMSolverSDEScheduler is k-diffusion's sample_dpmpp_sde with a Brownian tree seeded by
    # noise_sampler_seed: A1111's maths, so the two must agree (its tree's normals drawn as on CUDA, as picotui's are)
    from diffusers import DPMSolverSDEScheduler
    from kdiffusion_reference import cuda_tree_normals

    prompt, negative = "a corgi on a wooden floor", "blurry"
    ours = render(tiny_pipe, encode, prompt, negative, sampler="DPM++ SDE", schedule="Karras", steps=5, cfg=6.0,
                  width=64, height=80, seed=42).astype(np.int16)
    scheduler = DPMSolverSDEScheduler.from_config({**BASE, "use_karras_sigmas": True, "timestep_spacing": "linspace",
                                                   "noise_sampler_seed": 42})
    with cuda_tree_normals():
        ref = plain_image(tiny_components, prompt, negative, sampler="DPM++ SDE", steps=5, cfg=6.0, width=64,
                          height=80, seed=42, scheduler=scheduler).astype(np.int16)
    assert ours.shape == ref.shape == (80, 64, 3)
    assert np.abs(ours - ref).max() <= 1
    assert ours.std() > 5


@pytest.mark.parametrize("steps", [2, 8])
def test_lcm_equals_diffusers_lcm_scheduler_on_its_timesteps(tiny_pipe, encode, steps):
    # A1111's LCM at 2 or 8 steps visits LCM's own timesteps (999 ... 19), where it is diffusers' LCMScheduler:
    # the same boundary-condition scalings and fresh noise from the image's generator after each step.
    # diffusers starts from x_T as given: A1111's start in diffusers' (variance-preserving) units.
    from diffusers import LCMScheduler

    cond, uncond = encode("a corgi on a wooden floor", "blurry")
    ours = render(tiny_pipe, encode, sampler="LCM", steps=steps, cfg=2.0, seed=5).astype(np.int16)
    generator = torch.Generator("cpu").manual_seed(5)
    start = torch.randn((1, 4, 8, 8), generator=generator)
    sigma = ((1 - ldm_alphas_cumprod()[999]) / ldm_alphas_cumprod()[999]) ** 0.5
    pipe = tiny_pipe
    saved = pipe.scheduler
    pipe.scheduler = LCMScheduler.from_config(BASE)
    try:
        timesteps = [int(t) for t in np.linspace(999, 19, steps)]
        latents = pipe(prompt_embeds=cond, negative_prompt_embeds=uncond, guidance_scale=2.0, width=64, height=64,
                       timesteps=timesteps, latents=start * sigma / (sigma ** 2 + 1) ** 0.5, generator=generator,
                       output_type="latent").images
    finally:
        pipe.scheduler = saved
    from picotui.engine.sampling.generate import decode

    ref = np.asarray(decode(pipe, latents)).astype(np.int16)
    assert np.abs(ours - ref).mean() <= 1.0
    assert ours.std() > 3
