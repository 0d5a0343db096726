"""An independent A1111 reference: k-diffusion's own sampler functions (PyPI `k-diffusion`, installed with
--no-deps; see .ci/run) driven the way A1111 >= 1.9 drives them (modules/sd_samplers_kdiffusion.py,
sd_samplers_cfg_denoiser.py, sd_schedulers.py, rng.py, processing.py).

k-diffusion's package __init__ imports its training stack (torchvision, wandb, ...), so only sampling.py,
external.py and utils.py are loaded, by file path, into a private package. Two imports they never use in
the functions called here (torchvision's transforms in utils, torchdiffeq's odeint for log-likelihoods) get
empty placeholder modules while loading.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from contextlib import contextmanager, nullcontext
from pathlib import Path

from noise_support import slerp_per_column

_PACKAGE = "_kdiffusion_reference"


def load_kdiffusion():
    """(sampling, external) modules of the installed k-diffusion, without its package __init__."""
    if _PACKAGE in sys.modules:
        package = sys.modules[_PACKAGE]
        return package.sampling, package.external
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("k-diffusion is not installed: pip install --no-deps k-diffusion")
    root = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType(_PACKAGE)
    package.__path__ = [str(root)]
    sys.modules[_PACKAGE] = package
    placeholders = {}
    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchdiffeq"):
        if name not in sys.modules:
            placeholders[name] = sys.modules[name] = types.ModuleType(name)
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision.transforms"].functional = sys.modules["torchvision.transforms.functional"]
    sys.modules["torchdiffeq"].odeint = None
    try:
        for name in ("utils", "sampling", "external"):
            module_spec = importlib.util.spec_from_file_location(f"{_PACKAGE}.{name}", root / f"{name}.py")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
            setattr(package, name, module)
    finally:
        for name in placeholders:
            del sys.modules[name]
    return package.sampling, package.external


def ldm_alphas_cumprod():
    """SD1.5's alphas_cumprod as the LDM code computes it (ldm/models/diffusion/ddpm.py register_schedule)."""
    import numpy as np
    import torch

    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    return torch.tensor(np.cumprod(1.0 - betas, axis=0), dtype=torch.float32)


# A1111 >= 1.9 samplers_k_diffusion: name -> (k-diffusion function, options), written out from its table.
A1111_TABLE = {
    "DPM++ 2M": ("sample_dpmpp_2m", {"scheduler": "karras"}),
    "DPM++ SDE": ("sample_dpmpp_sde", {"scheduler": "karras", "brownian_noise": True}),
    "DPM++ 2M SDE": ("sample_dpmpp_2m_sde", {"scheduler": "exponential", "brownian_noise": True}),
    "DPM++ 2M SDE Heun": ("sample_dpmpp_2m_sde", {"scheduler": "exponential", "brownian_noise": True,
                                                  "solver_type": "heun"}),
    "DPM++ 2S a": ("sample_dpmpp_2s_ancestral", {"scheduler": "karras"}),
    "DPM++ 3M SDE": ("sample_dpmpp_3m_sde", {"scheduler": "exponential", "discard_next_to_last_sigma": True,
                                             "brownian_noise": True}),
    "Euler a": ("sample_euler_ancestral", {}),
    "Euler": ("sample_euler", {}),
    "LMS": ("sample_lms", {}),
    "Heun": ("sample_heun", {}),
    "DPM2": ("sample_dpm_2", {"scheduler": "karras", "discard_next_to_last_sigma": True}),
    "DPM2 a": ("sample_dpm_2_ancestral", {"scheduler": "karras", "discard_next_to_last_sigma": True}),
    # A1111's Restart below 20 steps has no restart segments: Heun steps (Euler into 0), i.e. sample_heun
    "Restart": ("sample_heun", {"scheduler": "karras"}),
}


class LdmModel:
    """What k-diffusion's CompVisDenoiser wraps in A1111: `alphas_cumprod` and `apply_model` (eps from the UNet)."""

    def __init__(self, unet):
        self.unet, self.alphas_cumprod = unet, ldm_alphas_cumprod()

    def apply_model(self, x, t, cond):
        return self.unet(x, t, encoder_hidden_states=cond).sample


def a1111_sigmas(sampling, model_wrap, schedule: str, steps: int, options: dict):
    """KDiffusionSampler.get_sigmas with A1111's default settings."""
    import torch

    discard = options.get("discard_next_to_last_sigma", False)
    steps += 1 if discard else 0
    name = options.get("scheduler") if schedule == "Automatic" else schedule
    lo, hi = model_wrap.sigmas[0].item(), model_wrap.sigmas[-1].item()
    if name in (None, "Uniform"):
        sigmas = model_wrap.get_sigmas(steps)
    elif name in ("karras", "Karras"):
        sigmas = sampling.get_sigmas_karras(n=steps, sigma_min=lo, sigma_max=hi, rho=7.0)
    elif name in ("exponential", "Exponential"):
        sigmas = sampling.get_sigmas_exponential(n=steps, sigma_min=lo, sigma_max=hi)
    elif name == "Polyexponential":
        sigmas = sampling.get_sigmas_polyexponential(n=steps, sigma_min=lo, sigma_max=hi, rho=1.0)
    elif name == "SGM Uniform":  # modules/sd_schedulers.py sgm_uniform
        start, end = model_wrap.sigma_to_t(torch.tensor(hi)), model_wrap.sigma_to_t(torch.tensor(lo))
        sigmas = torch.FloatTensor([model_wrap.t_to_sigma(t) for t in torch.linspace(start, end, steps + 1)[:-1]]
                                   + [0.0])
    else:
        raise ValueError(schedule)
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas


class NoiseStream:
    """A1111's ImageRNG for a batch, CPU source: one torch CPU generator per image seeded with its seed; after
    the first draw, with ENSD, generators re-seeded with seed + ENSD; variation seeds slerped into the first."""

    def __init__(self, shape, seeds, *, ensd=0, subseeds=None, subseed_strength=0.0, randn=None):
        import torch

        self.shape, self.seeds, self.ensd = shape, seeds, ensd
        self.subseeds, self.strength = subseeds, subseed_strength
        self.make = randn or (lambda seed: torch.Generator("cpu").manual_seed(int(seed)))
        self.generators = [self.make(s) for s in seeds]

    @staticmethod
    def _draw(generator, shape):
        import torch

        return generator.randn(shape) if hasattr(generator, "randn") else torch.randn(shape, generator=generator)

    def first(self):
        import torch

        xs = []
        for i, generator in enumerate(self.generators):
            noise = self._draw(generator, self.shape)
            if self.subseeds is not None and self.strength:
                sub = self._draw(self.make(self.subseeds[i]), self.shape)
                # A1111's slerp, written independently of picotui's (tests/noise_support.py), in float64
                noise = torch.from_numpy(slerp_per_column(self.strength, noise.cpu(), sub.cpu())).to(noise)
            xs.append(noise)
        if self.ensd:
            self.generators = [self.make(s + self.ensd) for s in self.seeds]
        return torch.stack(xs)

    def next(self):
        import torch

        return torch.stack([self._draw(g, self.shape) for g in self.generators])


class _RandnHijack:
    """A1111's TorchHijack: k-diffusion's torch.randn_like becomes the next draw of the image noise stream."""

    def __init__(self, stream):
        import torch

        self._torch, self._stream = torch, stream

    def __getattr__(self, item):
        return getattr(self._torch, item)

    def randn_like(self, x):
        return self._stream.next()


@contextmanager
def cuda_tree_normals():
    """torchsde's normals as A1111 on an NVIDIA GPU draws them: CUDA's randn for each seed, here through the NV
    emulation (picotui.engine.sampling.noise.PhiloxGenerator, held to torch's CUDA randn by the noise tests)."""
    from torchsde._brownian import brownian_interval

    from picotui.engine.sampling.noise import PhiloxGenerator

    original = brownian_interval._randn
    brownian_interval._randn = lambda size, dtype, device, seed: PhiloxGenerator(int(seed)).randn(size).to(dtype)
    try:
        yield
    finally:
        brownian_interval._randn = original


def a1111_image(unet, vae, cond, uncond, *, sampler, schedule, steps, cfg, seeds, width, height, stream=None,
                on_gpu=True, **stream_kw):
    """The uint8 pictures (N, H, W, 3) A1111 makes for this batch with k-diffusion's sampler; `on_gpu`: A1111 on
    an NVIDIA GPU (its SDE samplers' Brownian tree drawn with CUDA's generator), else A1111 on a CPU."""
    import numpy as np
    import torch

    sampling, external = load_kdiffusion()
    function, options = A1111_TABLE[sampler]
    model_wrap = external.CompVisDenoiser(LdmModel(unet), quantize=False)  # enable_quantization: off by default
    batch = len(seeds)
    shape = (4, height // 8, width // 8)
    stream = stream or NoiseStream(shape, seeds, **stream_kw)
    conds, unconds = cond.expand(batch, -1, -1), uncond.expand(batch, -1, -1)

    def cfg_denoiser(x, sigma):  # CFGDenoiser: one batched call, combined denoised
        x_in, sigma_in = torch.cat([x, x]), torch.cat([sigma, sigma])
        out = model_wrap(x_in, sigma_in, cond=torch.cat([conds, unconds]))
        denoised_uncond = out[-batch:]
        return denoised_uncond + (out[:batch] - denoised_uncond) * cfg

    sigmas = a1111_sigmas(sampling, model_wrap, schedule, steps, options)
    x = stream.first() * sigmas[0]
    extra = {}
    if options.get("brownian_noise"):
        with cuda_tree_normals() if on_gpu else nullcontext():  # the tree draws its first normals when built
            extra["noise_sampler"] = sampling.BrownianTreeNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(),
                                                                       seed=list(seeds))
    if options.get("solver_type") == "heun":
        extra["solver_type"] = "heun"
    saved = sampling.torch
    sampling.torch = _RandnHijack(stream)
    try:
        with torch.no_grad(), (cuda_tree_normals() if on_gpu else nullcontext()):
            latents = getattr(sampling, function)(cfg_denoiser, x, sigmas, disable=True, **extra)
            decoded = vae.decode(latents / vae.config.scaling_factor).sample
    finally:
        sampling.torch = saved
    unit = torch.clamp((decoded.float() + 1.0) / 2.0, min=0.0, max=1.0)  # processing.py: clamp, *255, uint8
    return (255.0 * np.moveaxis(unit.cpu().numpy(), 1, 3)).astype(np.uint8)
