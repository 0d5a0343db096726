"""Every A1111 sampler name builds its diffusers scheduler and denoises the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from picotui.engine.errors import RequestError
from picotui.engine.sampling.samplers import DEFAULT_SAMPLER, SAMPLER_NAMES, SAMPLERS, make_scheduler
from picotui.paths import assets_dir
from generation_support import encode, plain_image, render, tiny_pipe  # noqa: F401  (encode, tiny_pipe: fixtures)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BASE = json.loads((assets_dir() / "sd15" / "scheduler" / "scheduler_config.json").read_text())
REQUIRED = ["Euler", "Euler a", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M SDE",
            "DPM++ 2M SDE Karras", "DPM++ SDE Karras", "DDIM", "UniPC", "PLMS"]


def test_the_issue_names_are_all_there_and_the_default_is_one():
    assert set(REQUIRED) <= set(SAMPLER_NAMES)
    assert DEFAULT_SAMPLER in SAMPLER_NAMES


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_each_name_builds_its_scheduler(name):
    scheduler = make_scheduler(name, BASE)
    spec = SAMPLERS[name]
    assert type(scheduler).__name__ == spec.scheduler
    for key, value in spec.config.items():
        assert scheduler.config[key] == value, key
    # SD1.5's betas survive the switch: a sampler must not change the model's noise schedule
    assert scheduler.config.beta_schedule == "scaled_linear"
    assert scheduler.config.beta_start == BASE["beta_start"] and scheduler.config.beta_end == BASE["beta_end"]
    scheduler.set_timesteps(10)
    assert int(scheduler.timesteps.max()) >= 800


def test_karras_names_use_karras_sigmas_and_say_so():
    for name in SAMPLER_NAMES:
        karras = name.endswith("Karras")
        assert bool(SAMPLERS[name].config.get("use_karras_sigmas")) == karras, name
        assert (SAMPLERS[name].schedule_type == "Karras") == karras, name
        assert SAMPLERS[name].a1111_name == name.removesuffix(" Karras")


def test_sde_names_use_the_sde_solver():
    assert SAMPLERS["DPM++ 2M SDE"].config["algorithm_type"] == "sde-dpmsolver++"
    assert SAMPLERS["DPM++ 2M SDE Karras"].config["algorithm_type"] == "sde-dpmsolver++"
    assert SAMPLERS["DPM++ 2M"].config["algorithm_type"] == "dpmsolver++"


def test_k_diffusion_samplers_start_at_full_noise_like_a1111():
    # A1111's uniform schedule starts at t=999; SD1.5's "leading" config would start at t=~960 for 24 steps.
    for name in ("Euler", "Euler a", "LMS", "Heun", "DPM2", "DPM++ 2M", "UniPC"):
        scheduler = make_scheduler(name, BASE)
        scheduler.set_timesteps(24)
        assert int(scheduler.timesteps[0]) == 999, name
    ddim = make_scheduler("DDIM", BASE)  # A1111's DDIM: arange(0, 1000, 1000 // n) + 1, i.e. "leading"
    ddim.set_timesteps(20)
    assert [int(t) for t in ddim.timesteps[-2:]] == [51, 1]


def test_overrides_do_not_leak_between_samplers():
    make_scheduler("Euler", BASE)
    assert make_scheduler("DDIM", BASE).config.timestep_spacing == "leading"
    assert BASE["timestep_spacing"] == "leading"


def test_unknown_name_is_a_one_line_request_error():
    with pytest.raises(RequestError) as err:
        make_scheduler("Euler b", BASE)
    assert "\n" not in str(err.value) and "Euler a" in str(err.value)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_each_sampler_denoises_the_tiny_model_in_two_steps(tiny_pipe, encode, name):
    steps = []
    image = render(tiny_pipe, encode, sampler=name, steps=2, seed=3, on_step=steps.append)
    assert [s.index for s in steps] == [1, 2] and all(s.total == 2 for s in steps)
    assert image.shape == (64, 64, 3) and image.std() > 1


# ---- the mapping, pinned -----------------------------------------------------------------------------------

# Written out by hand from the diffusers scheduler overview and A1111 1.9+ (modules/sd_samplers_kdiffusion.py),
# not derived from picotui.engine.sampling.samplers: a change to the mapping must change this table too.
# name -> (diffusers class, key config after make_scheduler on SD1.5's config, A1111 "Sampler", "Schedule type")
EXPECTED = {
    "Euler": ("EulerDiscreteScheduler", dict(timestep_spacing="linspace", use_karras_sigmas=False),
              "Euler", "Automatic"),
    "Euler a": ("EulerAncestralDiscreteScheduler", dict(timestep_spacing="linspace"), "Euler a", "Automatic"),
    "LMS": ("LMSDiscreteScheduler", dict(timestep_spacing="linspace", use_karras_sigmas=False), "LMS", "Automatic"),
    "Heun": ("HeunDiscreteScheduler", dict(timestep_spacing="linspace", use_karras_sigmas=False), "Heun", "Automatic"),
    # A1111's automatic schedule for DPM2 / DPM2 a is Karras: ours is uniform, so it says so
    "DPM2": ("KDPM2DiscreteScheduler", dict(timestep_spacing="linspace", use_karras_sigmas=False), "DPM2", "Uniform"),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", dict(timestep_spacing="linspace", use_karras_sigmas=False),
               "DPM2 a", "Uniform"),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver++", solver_order=2,
                                                     use_karras_sigmas=False, timestep_spacing="linspace"),
                 "DPM++ 2M", "Uniform"),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver++", solver_order=2,
                                                            use_karras_sigmas=True), "DPM++ 2M", "Karras"),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", dict(algorithm_type="sde-dpmsolver++", solver_order=2,
                                                         use_karras_sigmas=False, timestep_spacing="linspace"),
                     "DPM++ 2M SDE", "Uniform"),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler", dict(algorithm_type="sde-dpmsolver++", solver_order=2,
                                                                use_karras_sigmas=True), "DPM++ 2M SDE", "Karras"),
    "DPM++ SDE Karras": ("DPMSolverSDEScheduler", dict(use_karras_sigmas=True, timestep_spacing="linspace",
                                                       noise_sampler_seed=1234), "DPM++ SDE", "Karras"),
    "DDIM": ("DDIMScheduler", dict(timestep_spacing="leading", steps_offset=1, clip_sample=False,
                                   set_alpha_to_one=False), "DDIM", "Automatic"),
    "UniPC": ("UniPCMultistepScheduler", dict(timestep_spacing="linspace", use_karras_sigmas=False),
              "UniPC", "Automatic"),
    "PLMS": ("PNDMScheduler", dict(timestep_spacing="leading", steps_offset=1, skip_prk_steps=True),
             "PLMS", "Automatic"),
    # not in A1111; diffusers' TCD docs build it from the checkpoint's config as it is
    "TCD": ("TCDScheduler", dict(timestep_spacing="leading", steps_offset=1), "TCD", "Automatic"),
}


def test_the_pinned_table_covers_every_sampler():
    assert set(EXPECTED) == set(SAMPLER_NAMES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sampler_is_the_pinned_scheduler_and_writes_the_pinned_a1111_names(name):
    cls, config, a1111_sampler, schedule_type = EXPECTED[name]
    scheduler = make_scheduler(name, BASE, seed=1234)
    assert type(scheduler).__name__ == cls
    assert {k: scheduler.config[k] for k in config} == config
    assert (SAMPLERS[name].a1111_name, SAMPLERS[name].schedule_type) == (a1111_sampler, schedule_type)


def test_karras_schedules_span_a1111s_sigma_range():
    # A1111: get_sigmas_karras(n, sigma_min=model's smallest sigma, sigma_max=its largest), then a 0.
    for name in ("DPM++ 2M Karras", "DPM++ 2M SDE Karras", "DPM++ SDE Karras"):
        scheduler = make_scheduler(name, BASE, seed=1)
        scheduler.set_timesteps(10)
        sigmas = scheduler.sigmas
        assert float(sigmas[0]) == pytest.approx(14.6146, abs=1e-3), name
        assert float(sigmas[sigmas > 0].min()) == pytest.approx(0.0292, abs=1e-3), name
        assert float(sigmas[-1]) == 0.0


# ---- DPM++ SDE Karras: stochastic, and still reproducible ---------------------------------------------------

def test_dpmpp_sde_karras_same_seed_same_image_and_its_noise_follows_the_seed(tiny_pipe, encode):
    def image(seed):
        return render(tiny_pipe, encode, sampler="DPM++ SDE Karras", steps=4, seed=seed).astype(int)

    first, again, other = image(21), image(21), image(22)
    assert np.array_equal(first, again)
    assert np.abs(first - other).mean() > 1
    assert make_scheduler("DPM++ SDE Karras", BASE, seed=21).config.noise_sampler_seed == 21


def test_dpmpp_sde_karras_equals_plain_diffusers_with_the_same_scheduler(tiny_pipe, tiny_components, encode):
    prompt, negative = "a corgi on a wooden floor", "blurry"
    ours = render(tiny_pipe, encode, prompt, negative, sampler="DPM++ SDE Karras", steps=5, cfg=6.0, width=64,
                  height=80, seed=42).astype(np.int16)
    ref = plain_image(tiny_components, prompt, negative, sampler="DPM++ SDE Karras", steps=5, cfg=6.0, width=64,
                      height=80, seed=42, scheduler_seed=42).astype(np.int16)
    assert ours.shape == ref.shape == (80, 64, 3)
    assert np.abs(ours - ref).max() <= 1
    assert ours.std() > 5
