"""A1111 sampler names -> diffusers scheduler class and config overrides.

Importing this module does not import diffusers: the UI lists the names without torch.

Mapping: the diffusers scheduler overview's A1111/k-diffusion table. Choices it leaves open:

* Timestep spacing. A1111's k-diffusion samplers (Euler, Euler a, LMS, Heun, DPM2, DPM2 a, DPM++)
  with the "Uniform" schedule take sigmas at t = linspace(999, 0, n): that is diffusers'
  `timestep_spacing="linspace"`. The SD1.5 scheduler config says "leading" (+ steps_offset 1), which
  starts below the top noise level and gives washed-out images with Euler-family samplers, so those
  samplers override it. DDIM and PLMS in A1111 use the original LDM discretisation
  (arange(0, 1000, 1000 // n) + 1), which *is* "leading" with steps_offset 1: they keep the config.
  DPMSolverMultistep builds Karras sigmas from the whole training range, so spacing does not matter
  there; DPMSolverSDE builds them from the spaced timesteps, so it needs "linspace" to start at
  sigma_max like A1111's Karras schedule.
* "DPM++ SDE Karras" is k-diffusion's stochastic `sample_dpmpp_sde`, ported by diffusers as
  DPMSolverSDEScheduler (needs torchsde). Its Brownian-tree noise ignores the pipeline's generator and
  draws from `noise_sampler_seed`, so make_scheduler() takes the job's seed: same seed, same image.

`a1111_name`/`schedule_type` are what A1111 >= 1.9 writes as "Sampler:" and "Schedule type:", chosen so
A1111 reproduces our schedule. A1111 resolves "Automatic" per sampler (modules/sd_samplers_kdiffusion.py,
samplers_k_diffusion): Karras for DPM++ 2M, DPM++ SDE, DPM++ 2S a, DPM2, DPM2 a; Exponential for DPM++ 2M
SDE and DPM++ 3M SDE; Uniform for the rest. "Automatic" is written only where it means our schedule;
our uniform DPM2 / DPM++ entries say "Uniform" explicitly. A1111_AUTOMATIC records that table for reading.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

# torchsde warns when DPM++ SDE asks its Brownian tree for a time a float32 rounding outside the tree's
# range; the noise it returns is right, and the warning would only clutter the terminal. Registered once
# here: registering it per scheduler would reset Python's warnings registry every image.
warnings.filterwarnings("ignore", message=r"Should have \w+[<>]=t[01] but got", category=UserWarning)


@dataclass(frozen=True)
class SamplerSpec:
    name: str  # what A1111 users know it by
    scheduler: str  # diffusers scheduler class name
    config: dict = field(default_factory=dict)  # overrides on top of the checkpoint's scheduler config
    schedule_type: str = "Automatic"  # what A1111 writes as "Schedule type"
    help: str = ""
    a1111_name: str = ""  # what A1111 >= 1.9 writes as "Sampler" (the name without "Karras")


def _spec(name, scheduler, schedule_type="Automatic", help="", **config):
    a1111_name = name.removesuffix(" Karras")
    return SamplerSpec(name, scheduler, dict(config), schedule_type, help, a1111_name)


_K = dict(timestep_spacing="linspace")  # k-diffusion "Uniform" schedule (see the module docstring)
_DPMPP = dict(algorithm_type="dpmsolver++", solver_order=2)
_SDE = dict(algorithm_type="sde-dpmsolver++", solver_order=2)

# What A1111 >= 1.9 uses when "Schedule type" is "Automatic" (absent here: Uniform).
A1111_AUTOMATIC = {"DPM++ 2M": "Karras", "DPM++ SDE": "Karras", "DPM++ 2S a": "Karras", "DPM2": "Karras",
                   "DPM2 a": "Karras", "DPM++ 2M SDE": "Exponential", "DPM++ 3M SDE": "Exponential",
                   "DPM++ 2M SDE Heun": "Exponential", "Restart": "Karras"}
# A1111's timestep samplers (modules/sd_samplers_timesteps.py) take no schedule: any "Schedule type" is ignored.
A1111_IGNORES_SCHEDULE = {"DDIM", "PLMS", "UniPC"}

SAMPLERS: dict[str, SamplerSpec] = {s.name: s for s in [
    _spec("Euler", "EulerDiscreteScheduler", help="Simple and predictable; converges as steps grow.", **_K),
    _spec("Euler a", "EulerAncestralDiscreteScheduler",
          help="Adds fresh noise each step: varied, never fully converges.", **_K),
    _spec("LMS", "LMSDiscreteScheduler", help="Linear multistep; smooth, can be unstable at low steps.", **_K),
    _spec("Heun", "HeunDiscreteScheduler", help="Two model calls per step: twice as slow, accurate.", **_K),
    _spec("DPM2", "KDPM2DiscreteScheduler", "Uniform", help="Two model calls per step; accurate.", **_K),
    _spec("DPM2 a", "KDPM2AncestralDiscreteScheduler", "Uniform", help="DPM2 with fresh noise each step.", **_K),
    _spec("DPM++ 2M", "DPMSolverMultistepScheduler", "Uniform", help="Fast, sharp; good at 20-30 steps.",
          **_K, **_DPMPP),
    _spec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", "Karras",
          help="A popular all-rounder: clean results at 20-30 steps.", use_karras_sigmas=True, **_DPMPP),
    _spec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", "Uniform",
          help="Stochastic DPM++: more detail, varies with steps.", **_K, **_SDE),
    _spec("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", "Karras",
          help="Stochastic DPM++ with Karras sigmas: detailed, the default.", use_karras_sigmas=True, **_SDE),
    _spec("DPM++ SDE Karras", "DPMSolverSDEScheduler", "Karras",
          help="Stochastic, two model calls per step: detailed at low step counts.", use_karras_sigmas=True,
          **_K),
    _spec("DDIM", "DDIMScheduler", help="The original fast sampler; deterministic.",
          clip_sample=False, set_alpha_to_one=False),
    _spec("UniPC", "UniPCMultistepScheduler", help="Very fast convergence: try 10-20 steps.", **_K),
    _spec("PLMS", "PNDMScheduler", help="The original SD sampler; needs 50+ steps.", skip_prk_steps=True),
    # TCD (Trajectory Consistency Distillation): for TCD/Hyper-SD LoRAs, 1-8 steps at CFG 1. diffusers'
    # TCDScheduler on the checkpoint's config, as diffusers' TCD docs build it.
    _spec("TCD", "TCDScheduler", help="For TCD and Hyper-SD LoRAs: 4-8 steps at CFG 1."),
]}

# Schedulers whose step() takes an `eta` the pipeline must pass (diffusers' pipelines default it to 0):
# TCD's gamma, 0.3 in the TCD paper and diffusers' TCD docs.
STEP_ETA = {"TCD": 0.3}

SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)


def a1111_schedule(spec: SamplerSpec) -> str:
    """The schedule A1111 runs for what we write as this sampler's "Schedule type" ("Automatic" resolved)."""
    if spec.schedule_type != "Automatic":
        return spec.schedule_type
    return A1111_AUTOMATIC.get(spec.a1111_name or spec.name, "Uniform")
DEFAULT_SAMPLER = "DPM++ 2M SDE Karras"


# Schedulers whose own noise comes from a seed in their config rather than from the pipeline's generator.
SEEDED_SCHEDULERS = {"DPMSolverSDEScheduler": "noise_sampler_seed"}


def make_scheduler(name: str, base_config: dict, seed: int | None = None):
    """A fresh diffusers scheduler for sampler `name`, built on the checkpoint's scheduler config.

    `base_config` is a scheduler config (e.g. `pipe.scheduler.config`); keys a class does not know are
    ignored by diffusers' `from_config`. A fresh instance per job: schedulers keep per-run state.
    `seed` (the image's seed) seeds schedulers that draw their own noise (DPM++ SDE's Brownian tree).
    """
    import diffusers

    from picotui.engine.errors import RequestError

    spec = SAMPLERS.get(name)
    if spec is None:
        raise RequestError(f"Unknown sampler {name!r}: choose one of {', '.join(SAMPLER_NAMES)}.")
    cls = getattr(diffusers, spec.scheduler)
    config = {k: v for k, v in dict(base_config).items() if not k.startswith("_")}
    config.update(spec.config)
    if spec.scheduler in SEEDED_SCHEDULERS and seed is not None:
        config[SEEDED_SCHEDULERS[spec.scheduler]] = int(seed)
    return cls.from_config(config)
