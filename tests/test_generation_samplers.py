"""Every A1111 sampler name builds its diffusers scheduler and denoises the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from picotui.engine.errors import RequestError
from picotui.engine.samplers import DEFAULT_SAMPLER, SAMPLER_NAMES, SAMPLERS, make_scheduler
from picotui.paths import assets_dir
from generation_support import encode, tiny_pipe  # noqa: F401  (fixtures)

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
    from picotui.engine.generate import decode, denoise

    cond, uncond = encode("a corgi on a wooden floor", "blurry")
    steps = []
    latents = denoise(tiny_pipe, cond, uncond, sampler=name, steps=2, cfg=7.0, width=64, height=64, seed=3,
                      on_step=steps.append)
    assert [s.index for s in steps] == [1, 2] and all(s.total == 2 for s in steps)
    image = np.asarray(decode(tiny_pipe, latents))
    assert image.shape == (64, 64, 3) and image.std() > 1
