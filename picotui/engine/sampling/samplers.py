"""A1111's samplers by name: the sampler and the schedule type are two settings, as in A1111 >= 1.9.

Importing this module does not import torch or diffusers: the UI lists the names without them.

* The k-diffusion samplers (Euler ... DPM++ 3M SDE, Restart, LCM) run picotui's own k-diffusion-equivalent
  loop (ksamplers.py, schedules.py, denoiser.py) with A1111's schedules, noise stream and Brownian tree.
* The timestep samplers DDIM, PLMS and UniPC run diffusers' schedulers. DDIM and PLMS are A1111's maths:
  A1111's timesteps are arange(0, 1000, 1000 // n) + 1 ("leading" + steps_offset 1), DDIM with eta 0 and the
  final alpha taken from alphas_cumprod[0] (set_alpha_to_one False), PLMS the pseudo-linear multistep
  without Runge-Kutta warm-up (skip_prk_steps). UniPC is close, not equal: A1111 runs its own UniPC
  (variant bh1, order 3); diffusers' is bh2, order 2. A1111 ignores the schedule type for these three.

Old combined names ("DPM++ 2M Karras", picotui's and A1111's before 1.9) are read as sampler + schedule.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from picotui.engine.sampling.schedules import DEFAULT_SCHEDULE, SCHEDULE_TYPES, schedule_label

# torchsde warns when a Brownian tree is asked for a time a float32 rounding outside its range; the noise it
# returns is right, and the warning would only clutter the terminal. Registered once, here.
warnings.filterwarnings("ignore", message=r"Should have \w+[<>]=t[01] but got", category=UserWarning)


@dataclass(frozen=True)
class SamplerSpec:
    name: str  # A1111's name, what it writes as "Sampler:"
    help: str = ""
    automatic: str | None = None  # the schedule A1111 runs for "Automatic" (None: Uniform)
    scheduler: str = ""  # diffusers scheduler class, for the timestep samplers only
    config: dict = field(default_factory=dict)  # overrides on top of the checkpoint's scheduler config

    @property
    def timestep(self) -> bool:
        """A1111's timestep samplers (DDIM, PLMS, UniPC) take no schedule type."""
        return bool(self.scheduler)


def _k(name, help, automatic=None):
    return SamplerSpec(name, help, automatic)


# A1111 >= 1.9's order and its "Automatic" schedules (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py,
# sd_samplers_lcm.py).
SAMPLERS: dict[str, SamplerSpec] = {s.name: s for s in [
    _k("DPM++ 2M", "Fast, sharp; a popular all-rounder at 20-30 steps.", "Karras"),
    _k("DPM++ SDE", "Stochastic, two model calls per step: detailed at low step counts.", "Karras"),
    _k("DPM++ 2M SDE", "Stochastic DPM++: more detail, varies with steps (with Karras: the default).", "Exponential"),
    _k("DPM++ 2M SDE Heun", "DPM++ 2M SDE with a Heun correction: smoother.", "Exponential"),
    _k("DPM++ 2S a", "Ancestral DPM++, two model calls per step.", "Karras"),
    _k("DPM++ 3M SDE", "Third-order stochastic DPM++: needs 30+ steps.", "Exponential"),
    _k("Euler a", "Adds fresh noise each step: varied, never fully converges."),
    _k("Euler", "Simple and predictable; converges as steps grow."),
    _k("LMS", "Linear multistep; smooth, can be unstable at low steps."),
    _k("Heun", "Two model calls per step: twice as slow, accurate."),
    _k("DPM2", "Two model calls per step; accurate.", "Karras"),
    _k("DPM2 a", "DPM2 with fresh noise each step.", "Karras"),
    _k("Restart", "Heun steps that jump back up and re-descend: detailed from 20 steps.", "Karras"),
    SamplerSpec("DDIM", "The original fast sampler; deterministic.", scheduler="DDIMScheduler",
                config=dict(clip_sample=False, set_alpha_to_one=False)),
    SamplerSpec("PLMS", "The original SD sampler; needs 50+ steps.", scheduler="PNDMScheduler",
                config=dict(skip_prk_steps=True)),
    SamplerSpec("UniPC", "Very fast convergence: try 10-20 steps.", scheduler="UniPCMultistepScheduler",
                config=dict(timestep_spacing="linspace")),
    _k("LCM", "For LCM models and LCM LoRAs: 4-8 steps at CFG 1-2."),
    # TCD (Trajectory Consistency Distillation): for TCD/Hyper-SD LoRAs, 1-8 steps at CFG 1. diffusers'
    # TCDScheduler on the checkpoint's config, as diffusers' TCD docs build it (A1111 has no TCD).
    SamplerSpec("TCD", "For TCD and Hyper-SD LoRAs: 4-8 steps at CFG 1.", scheduler="TCDScheduler"),
]}

# Schedulers whose step() takes an `eta` the pipeline must pass (diffusers' pipelines default it to 0):
# TCD's gamma, 0.3 in the TCD paper and diffusers' TCD docs.
STEP_ETA = {"TCD": 0.3}

SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
DEFAULT_SAMPLER = "DPM++ 2M SDE"
DEFAULT_SCHEDULE_TYPE = "Karras"  # with DEFAULT_SAMPLER: DPM++ 2M SDE Karras, the seed project's default
# What old picotui requests meant when they named these samplers without a schedule: the uniform schedule.
OLD_PICOTUI_UNIFORM = {"DPM++ 2M", "DPM++ 2M SDE", "DPM2", "DPM2 a"}


def split_sampler_name(name: str) -> tuple[str | None, str | None]:
    """(sampler, schedule type or None) for a name A1111 ever wrote: "DPM++ 2M Karras" -> ("DPM++ 2M", "Karras").

    (None, None) for a name that is no sampler."""
    name = str(name).strip()
    if name in SAMPLERS:
        return name, None
    for label in SCHEDULE_TYPES:
        base = name.removesuffix(" " + label)
        if base != name and base in SAMPLERS:
            return base, label
    return None, None


def a1111_schedule(sampler: str, schedule: str) -> str:
    """The "Schedule type" A1111 records for this sampler and setting: "Automatic" becomes the sampler's own
    schedule where A1111's table names one (DPM++ 2M -> Karras) and stays "Automatic" where it means Uniform;
    the timestep samplers have no schedule ("Automatic")."""
    spec = SAMPLERS[sampler]
    if spec.timestep:
        return DEFAULT_SCHEDULE
    label = schedule_label(schedule) or DEFAULT_SCHEDULE
    return (spec.automatic or "Automatic") if label == "Automatic" else label


def make_scheduler(name: str, base_config: dict):
    """A fresh diffusers scheduler for timestep sampler `name`, built on the checkpoint's scheduler config.

    `base_config` is a scheduler config (e.g. `pipe.scheduler.config`); keys a class does not know are
    ignored by diffusers' `from_config`. A fresh instance per job: schedulers keep per-run state.
    """
    import diffusers

    from picotui.engine.errors import RequestError

    spec = SAMPLERS.get(name)
    if spec is None or not spec.timestep:
        raise RequestError(f"{name!r} is not one of the timestep samplers (DDIM, PLMS, UniPC, TCD).")
    config = {k: v for k, v in dict(base_config).items() if not k.startswith("_")}
    config.update(spec.config)
    return getattr(diffusers, spec.scheduler).from_config(config)
