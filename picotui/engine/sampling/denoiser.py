"""The model as A1111's k-diffusion samplers see it: x at noise level sigma -> denoised x, with CFG.

`CFGDenoiser` is A1111's CFGDenoiser over k-diffusion's CompVisDenoiser, around a diffusers UNet:
the UNet input is x / sqrt(sigma^2 + 1) at the fractional timestep t(sigma) (quantization off, A1111's
default), its eps prediction becomes denoised = x - sigma * eps (LCM: A1111's LCM scalings), and CFG
combines the *denoised* estimates of the prompt and the negative prompt from one batched UNet call:
uncond + (cond - uncond) * scale. Prompts of different lengths (A1111 without padding) take two calls.

`BrownianNoise` is k-diffusion's BrownianTreeNoiseSampler as A1111 sets it up for the SDE samplers: one
torchsde Brownian tree per image, seeded with the image seed, spanning the smallest non-zero sigma to the
largest, so the noise does not depend on the batch. torchsde draws the tree's normals with a generator of
the latent's device: in A1111 (an NVIDIA GPU, whatever its RNG setting) that is CUDA's. Off CUDA, picotui
draws them with the Philox emulation of CUDA's randn (noise.PhiloxGenerator), so an SDE recipe gives
A1111's picture on a CPU too; `cuda_normals=False` keeps the device's own generator.

Torch is imported inside functions.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager


class CFGDenoiser:
    def __init__(self, unet, model_sigmas, cond, uncond, cfg: float, *, ngms: float = 0.0,
                 after_call: Callable[[], None] = lambda: None):
        self.unet, self.model, self.cfg = unet, model_sigmas, float(cfg)
        self.cond, self.uncond = cond, uncond
        self.ngms = float(ngms)  # A1111's "Negative Guidance minimum sigma" (0: off)
        self.step = 0  # model evaluations so far: A1111's NGMS skips on every other one
        self.after_call = after_call  # cancellation check after every model evaluation

    def _skip_uncond(self, sigma) -> bool:
        """CFG 1 is the conditional prediction alone, so its negative pass is skipped (one UNet pass a step);
        NGMS skips it on odd evaluations below that sigma, as A1111's CFGDenoiser does."""
        return self.cfg == 1.0 or (self.step % 2 == 1 and self.ngms > 0 and float(sigma) < self.ngms)

    def _eps(self, x_in, t, context):
        dtype = self.unet.dtype
        out = self.unet(x_in.to(dtype), t.to(x_in.device), encoder_hidden_states=context.to(dtype),
                        return_dict=False)[0]
        return out.float()

    def __call__(self, x, sigma):
        import torch

        batch = x.shape[0]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(())
        c_in = 1 / (sigma ** 2 + 1) ** 0.5
        t = self.model.unet_timestep(sigma.cpu()).to(torch.float32)
        cond = self.cond.expand(batch, -1, -1) if self.cond.shape[0] != batch else self.cond
        uncond = self.uncond.expand(batch, -1, -1) if self.uncond.shape[0] != batch else self.uncond
        if self._skip_uncond(sigma):
            # A1111 puts the conditional prediction where the unconditional one would be: denoised = cond's.
            eps_cond = self._eps(x * c_in, t.expand(batch), cond)
            self.step += 1
            self.after_call()
            return self.model.output(x, eps_cond, sigma)
        if cond.shape[1] == uncond.shape[1]:
            x_in = torch.cat([x, x])
            eps = self._eps(x_in * c_in, t.expand(2 * batch), torch.cat([cond, uncond]))
            eps_cond, eps_uncond = eps[:batch], eps[batch:]
        else:
            eps_cond = self._eps(x * c_in, t.expand(batch), cond)
            eps_uncond = self._eps(x * c_in, t.expand(batch), uncond)
        self.step += 1
        self.after_call()
        denoised_uncond = self.model.output(x, eps_uncond, sigma)
        denoised_cond = self.model.output(x, eps_cond, sigma)
        return denoised_uncond + (denoised_cond - denoised_uncond) * self.cfg


class BrownianNoise:
    """Unit-variance Brownian increments between two sigmas, one seeded tree per image of the batch."""

    def __init__(self, x, sigmas, seeds, *, cuda_normals: bool = True):
        import torch
        import torchsde

        self.emulate = cuda_normals and x.device.type != "cuda"
        positive = sigmas[sigmas > 0]
        lo = torch.as_tensor(positive.min()).to(x.device)
        hi = torch.as_tensor(sigmas.max()).to(x.device)
        start = torch.zeros_like(x[0])
        with self._normals():
            self.trees = [torchsde.BrownianTree(lo, start, hi, entropy=int(seed)) for seed in seeds]

    @contextmanager
    def _normals(self):
        """Within this block torchsde's normals are CUDA's randn (emulated) when `emulate` is set."""
        if not self.emulate:
            yield
            return
        from torchsde._brownian import brownian_interval

        from picotui.engine.sampling.noise import PhiloxGenerator

        original = brownian_interval._randn

        def cuda_randn(size, dtype, device, seed):
            return PhiloxGenerator(int(seed)).randn(size).to(device=device, dtype=dtype)

        brownian_interval._randn = cuda_randn  # the worker thread is torchsde's only user
        try:
            yield
        finally:
            brownian_interval._randn = original

    def __call__(self, sigma, sigma_next):
        import torch

        a, b = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        lo, hi, sign = (a, b, 1) if a < b else (b, a, -1)
        with self._normals():
            # the tree is queried low-to-high; a step down in sigma is the negated increment, as in k-diffusion
            w = torch.stack([tree(lo, hi) for tree in self.trees]) * sign
        return w / (b - a).abs().sqrt()
