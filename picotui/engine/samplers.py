"""A1111 sampler names -> diffusers scheduler class and config overrides.

Importing this module does not import diffusers: the UI lists the names without torch.
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


def _spec(name, scheduler, schedule_type="Automatic", help="", **config):
    return SamplerSpec(name, scheduler, dict(config), schedule_type, help)


# Mappings follow the diffusers scheduler overview's A1111 table.
SAMPLERS: dict[str, SamplerSpec] = {s.name: s for s in [
    _spec("Euler", "EulerDiscreteScheduler", help="Simple and predictable; converges as steps grow."),
    _spec("Euler a", "EulerAncestralDiscreteScheduler", help="Adds fresh noise each step: varied, never fully converges."),
    _spec("LMS", "LMSDiscreteScheduler"),
    _spec("Heun", "HeunDiscreteScheduler", help="Two model calls per step: slower, accurate."),
    _spec("DPM2", "KDPM2DiscreteScheduler"),
    _spec("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
    _spec("DPM++ 2M", "DPMSolverMultistepScheduler"),
    _spec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", "Karras", use_karras_sigmas=True),
    _spec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", algorithm_type="sde-dpmsolver++"),
    _spec("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", "Karras", algorithm_type="sde-dpmsolver++", use_karras_sigmas=True),
    _spec("DPM++ SDE Karras", "DPMSolverSinglestepScheduler", "Karras", use_karras_sigmas=True),
    _spec("DDIM", "DDIMScheduler"),
    _spec("UniPC", "UniPCMultistepScheduler"),
    _spec("PLMS", "PNDMScheduler"),
]}

SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
DEFAULT_SAMPLER = "DPM++ 2M SDE Karras"
