"""A1111 sampler names -> diffusers scheduler class and config overrides.

Importing this module does not import diffusers: the UI lists the names without torch.

Mapping: the diffusers scheduler overview's A1111/k-diffusion table. Two choices it leaves open:

* Timestep spacing. A1111's k-diffusion samplers (Euler, Euler a, LMS, Heun, DPM2, DPM2 a, DPM++)
  with the "Uniform"/automatic schedule take sigmas at t = linspace(999, 0, n): that is diffusers'
  `timestep_spacing="linspace"`. The SD1.5 scheduler config says "leading" (+ steps_offset 1), which
  starts below the top noise level and gives washed-out images with Euler-family samplers, so those
  samplers override it. DDIM and PLMS in A1111 use the original LDM discretisation
  (arange(0, 1000, 1000 // n) + 1), which *is* "leading" with steps_offset 1: they keep the config.
  Karras schedules compute their sigmas from sigma_min/sigma_max and ignore spacing.
* "DPM++ SDE Karras": diffusers' exact port (DPMSolverSDEScheduler) needs `torchsde`, a dependency we
  do not ship; the overview's alternative, DPMSolverSinglestepScheduler with Karras sigmas, is used.

`a1111_name`/`schedule_type` are what A1111 >= 1.9 writes as "Sampler:" and "Schedule type:" for the
same sampling (A1111 split "DPM++ 2M Karras" into sampler "DPM++ 2M" + schedule "Karras"; its own
"Automatic" for DPM++ 2M means Karras, so our non-Karras DPM++ entries say "Uniform").
"""

from __future__ import annotations

from dataclasses import dataclass, field


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

SAMPLERS: dict[str, SamplerSpec] = {s.name: s for s in [
    _spec("Euler", "EulerDiscreteScheduler", help="Simple and predictable; converges as steps grow.", **_K),
    _spec("Euler a", "EulerAncestralDiscreteScheduler",
          help="Adds fresh noise each step: varied, never fully converges.", **_K),
    _spec("LMS", "LMSDiscreteScheduler", help="Linear multistep; smooth, can be unstable at low steps.", **_K),
    _spec("Heun", "HeunDiscreteScheduler", help="Two model calls per step: twice as slow, accurate.", **_K),
    _spec("DPM2", "KDPM2DiscreteScheduler", help="Two model calls per step; accurate.", **_K),
    _spec("DPM2 a", "KDPM2AncestralDiscreteScheduler", help="DPM2 with fresh noise each step.", **_K),
    _spec("DPM++ 2M", "DPMSolverMultistepScheduler", "Uniform", help="Fast, sharp; good at 20-30 steps.",
          **_K, **_DPMPP),
    _spec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", "Karras",
          help="A popular all-rounder: clean results at 20-30 steps.", use_karras_sigmas=True, **_DPMPP),
    _spec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", "Uniform",
          help="Stochastic DPM++: more detail, varies with steps.", **_K, **_SDE),
    _spec("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", "Karras",
          help="Stochastic DPM++ with Karras sigmas: detailed, the default.", use_karras_sigmas=True, **_SDE),
    _spec("DPM++ SDE Karras", "DPMSolverSinglestepScheduler", "Karras",
          help="Single-step DPM++ with Karras sigmas; good at low steps.", use_karras_sigmas=True,
          lower_order_final=True, **_DPMPP),
    _spec("DDIM", "DDIMScheduler", help="The original fast sampler; deterministic.",
          clip_sample=False, set_alpha_to_one=False),
    _spec("UniPC", "UniPCMultistepScheduler", help="Very fast convergence: try 10-20 steps.", **_K),
    _spec("PLMS", "PNDMScheduler", help="The original SD sampler; needs 50+ steps.", skip_prk_steps=True),
]}

SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
DEFAULT_SAMPLER = "DPM++ 2M SDE Karras"


def make_scheduler(name: str, base_config: dict):
    """A fresh diffusers scheduler for sampler `name`, built on the checkpoint's scheduler config.

    `base_config` is a scheduler config (e.g. `pipe.scheduler.config`); keys a class does not know are
    ignored by diffusers' `from_config`. A fresh instance per job: schedulers keep per-run state.
    """
    import diffusers

    from picotui.engine.errors import RequestError

    spec = SAMPLERS.get(name)
    if spec is None:
        raise RequestError(f"Unknown sampler {name!r}: choose one of {', '.join(SAMPLER_NAMES)}.")
    cls = getattr(diffusers, spec.scheduler)
    config = {k: v for k, v in dict(base_config).items() if not k.startswith("_")}
    config.update(spec.config)
    return cls.from_config(config)
