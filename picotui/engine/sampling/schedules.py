"""Sigma schedules as A1111 >= 1.9 builds them (modules/sd_schedulers.py over k-diffusion's functions).

The model's own noise levels come from its beta schedule the way the LDM code (and so A1111) computes them:
betas and their cumulative product in float64, stored as float32; sigma = sqrt((1 - a) / a). A1111 wraps them
in k-diffusion's `DiscreteSchedule`: `sigma_to_t` interpolates the timestep linearly in log sigma (A1111's
default, quantization off), `t_to_sigma` interpolates log sigma between neighbouring timesteps.

Schedule types (A1111's labels):
  Uniform         t = linspace(999, 0, n) mapped through t_to_sigma (the model's own spacing)
  Karras          Karras et al. (2022), rho 7, between the model's smallest and largest sigma
  Exponential     evenly spaced in log sigma between the same ends
  Polyexponential log sigma on a polynomial ramp, rho 1 (which equals Exponential)
  SGM Uniform     n timesteps evenly spaced from t(sigma_max) to t(sigma_min), the last one dropped
  Automatic       what A1111's sampler table names for the sampler (Karras for DPM++ 2M, ...), else Uniform
Every schedule ends with a 0. Samplers A1111 marks `discard_next_to_last_sigma` (DPM2, DPM2 a, DPM++ 3M SDE)
get one step more and lose the next-to-last sigma. All of it is float32 on the CPU, as A1111 computes it.

Torch is imported inside functions: the UI imports SCHEDULE_TYPES from here.
"""

from __future__ import annotations

import math

SCHEDULE_TYPES: tuple[str, ...] = ("Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform")
DEFAULT_SCHEDULE = "Automatic"
# A1111 also accepts its internal names ("karras", "sgm_uniform") and the alias "SGMUniform".
_ALIASES = {"sgm_uniform": "SGM Uniform", "sgmuniform": "SGM Uniform"}


def schedule_label(name: str) -> str | None:
    """A1111's label for a schedule type written any way A1111 accepts it, or None."""
    key = str(name).strip().lower()
    for label in SCHEDULE_TYPES:
        if key == label.lower():
            return label
    return _ALIASES.get(key.replace(" ", "_")) or _ALIASES.get(key.replace(" ", ""))


def ldm_alphas_cumprod(beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = 1000):
    """SD1.5's "scaled linear" cumulative alphas, computed as the LDM code does (float64, then float32)."""
    import numpy as np
    import torch

    betas = np.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=np.float64) ** 2
    return torch.tensor(np.cumprod(1.0 - betas, axis=0), dtype=torch.float32)


class ModelSigmas:
    """The model's discrete noise levels and the sigma <-> timestep maps (k-diffusion's DiscreteSchedule)."""

    def __init__(self, alphas_cumprod):
        import torch

        self.sigmas = (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).to(torch.float32)
        self.log_sigmas = self.sigmas.log()

    @property
    def sigma_min(self):
        return self.sigmas[0]

    @property
    def sigma_max(self):
        return self.sigmas[-1]

    def sigma_to_t(self, sigma):
        """Fractional timestep of `sigma`: linear in log sigma between the two nearest levels."""
        log_sigma = sigma.log()
        above = (log_sigma - self.log_sigmas[:, None]).ge(0)
        low = above.cumsum(dim=0).argmax(dim=0).clamp(max=self.log_sigmas.shape[0] - 2)
        lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
        w = ((lo - log_sigma) / (lo - hi)).clamp(0, 1)
        return ((1 - w) * low + w * (low + 1)).view(sigma.shape)

    def t_to_sigma(self, t):
        t = t.float()
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()

    def uniform(self, n: int):
        import torch

        t = torch.linspace(len(self.sigmas) - 1, 0, n)
        return _append_zero(self.t_to_sigma(t))

    def unet_timestep(self, sigma):
        """The timestep the UNet is called with at noise level `sigma`."""
        return self.sigma_to_t(sigma)

    def output(self, x, eps, sigma):
        """The denoised estimate from the UNet's eps prediction (k-diffusion's DiscreteEpsDDPMDenoiser)."""
        return x - eps * sigma


class LCMSigmas(ModelSigmas):
    """A1111's LCM denoiser (modules/sd_samplers_lcm.py): the 50 timesteps LCM was distilled on (19, 39, ...,
    999), timesteps snapped to them, and the consistency-model boundary scalings on the output."""

    SKIP = 1000 // 50

    def __init__(self, alphas_cumprod):
        import torch

        keep = torch.arange(len(alphas_cumprod) - 1, -1, -self.SKIP).flip(0)  # 19, 39, ..., 999
        super().__init__(alphas_cumprod[keep])

    def sigma_to_t(self, sigma):
        nearest = (sigma.log() - self.log_sigmas[:, None]).abs().argmin(dim=0).view(sigma.shape)
        return nearest * self.SKIP + (self.SKIP - 1)

    def t_to_sigma(self, t):
        import torch

        index = torch.clamp(((t - (self.SKIP - 1)) / self.SKIP).float(), min=0, max=len(self.sigmas) - 1)
        return super().t_to_sigma(index)

    def uniform(self, n: int):
        import torch

        t = torch.linspace(float(self.sigma_to_t(self.sigma_max)), float(self.sigma_to_t(self.sigma_min)), n)
        return _append_zero(self.t_to_sigma(t))

    def output(self, x, eps, sigma):
        import torch

        scaled_t = self.sigma_to_t(torch.as_tensor(sigma)).float() * 10.0
        c_skip = 0.25 / (scaled_t ** 2 + 0.25)
        c_out = scaled_t / (scaled_t ** 2 + 0.25) ** 0.5
        return c_out * (x - eps * sigma) + c_skip * x


def _append_zero(sigmas):
    import torch

    return torch.cat([sigmas, sigmas.new_zeros([1])])


def karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0):
    import torch

    ramp = torch.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((hi + ramp * (lo - hi)) ** rho)


def exponential(n: int, sigma_min: float, sigma_max: float):
    import torch

    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0):
    import torch

    ramp = torch.linspace(1, 0, n) ** rho
    return _append_zero(torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min)))


def sgm_uniform(n: int, model: ModelSigmas, sigma_min: float, sigma_max: float):
    import torch

    start, end = model.sigma_to_t(torch.tensor(sigma_max)), model.sigma_to_t(torch.tensor(sigma_min))
    sigmas = [float(model.t_to_sigma(t)) for t in torch.linspace(float(start), float(end), n + 1)[:-1]]
    return torch.tensor(sigmas + [0.0], dtype=torch.float32)


def resolve(schedule: str, automatic: str | None) -> str:
    """The schedule that runs: "Automatic" becomes the sampler's own (A1111's table), else Uniform."""
    label = schedule_label(schedule) or DEFAULT_SCHEDULE
    return (automatic or "Uniform") if label == "Automatic" else label


def sigmas_for(schedule: str, steps: int, model: ModelSigmas, *, automatic: str | None = None,
               discard_next_to_last: bool = False):
    """A1111's sigmas for `steps` steps: KDiffusionSampler.get_sigmas with default settings."""
    import torch

    n = steps + (1 if discard_next_to_last else 0)
    kind = resolve(schedule, automatic)
    lo, hi = model.sigma_min.item(), model.sigma_max.item()
    if kind == "Uniform":
        sigmas = model.uniform(n)
    elif kind == "Karras":
        sigmas = karras(n, lo, hi)
    elif kind == "Exponential":
        sigmas = exponential(n, lo, hi)
    elif kind == "Polyexponential":
        sigmas = polyexponential(n, lo, hi)
    else:  # SGM Uniform
        sigmas = sgm_uniform(n, model, lo, hi)
    if discard_next_to_last:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas
