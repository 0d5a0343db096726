"""A picture -> the latents img2img and hires fix start from: A1111's preprocessing and the pipeline's VAE.

A1111 (modules/processing.py, sd_samplers_common.images_tensor_to_samples) scales 8-bit pixels to [-1, 1]
(x / 255 * 2 - 1), encodes with the VAE and multiplies by the scaling factor. Its LDM code then draws a
*sample* from the VAE's posterior with torch's unseeded global generator; picotui takes the posterior *mean*.
The posterior's std on SD's VAE is about 1e-4 (far below what changes a pixel), and the mean makes the
same recipe give the same picture every time, which A1111's unseeded draw does not.

The pipeline's VAE tiling (diffusers' enable_tiling, set by the memory plan) covers encode too. In fp16 an
encode that gives NaN is retried once in fp32, as decode is (and a VAE known to need fp32 goes straight to it).
Runs in the worker thread; torch is imported inside functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from picotui.engine.errors import PicoError
from picotui.engine.sampling.generate import vae_guard

log = logging.getLogger("picotui.encode")

ENCODE_NAN_NOTICE = ("The VAE produced NaN values encoding the image in fp16, a known SD1.5 VAE problem: "
                     "encoded again in fp32. A VAE such as vae-ft-mse avoids it.")


def image_to_pixels(image):
    """A PIL image as A1111 feeds it to the VAE: RGB, [1, 3, H, W] float32 in [-1, 1] (x / 255 * 2 - 1)."""
    import numpy as np
    import torch

    array = np.asarray(image.convert("RGB") if image.mode != "RGB" else image).astype(np.float32) / 255.0
    return torch.from_numpy(np.moveaxis(array, 2, 0)).unsqueeze(0) * 2.0 - 1.0


def _posterior_mean(vae, pixels):
    return vae.encode(pixels.to(vae.dtype), return_dict=False)[0].mean


def encode(pipe, image, *, on_notice: Callable[[str], None] = lambda message: None):
    """PIL image -> scaled latents [1, 4, H // 8, W // 8] (float32) with the pipeline's VAE."""
    import torch

    from picotui.engine.hardware.precision import fp32_decoding, needs_fp32, remember_fp32

    vae = pipe.vae
    width, height = image.size
    pixels = image_to_pixels(image).to(pipe._execution_device)
    latent_shaped = pixels[..., ::8, ::8]  # what fp32_decoding measures to decide on tiling
    with vae_guard(pipe, width, height, "encode"), torch.no_grad():
        fp16 = vae.dtype == torch.float16
        known = fp16 and needs_fp32(vae)  # this VAE failed in fp16 before: straight to fp32
        mean = None if known else _posterior_mean(vae, pixels)
        if mean is None or (fp16 and not torch.isfinite(mean).all()):
            if mean is not None:  # said once per VAE; later images go straight to fp32
                log.warning("fp16 VAE encode gave NaN; retrying in fp32")
                on_notice(ENCODE_NAN_NOTICE)
                remember_fp32(vae)
            with fp32_decoding(vae, latent_shaped):
                mean = _posterior_mean(vae, pixels.float())
        if not torch.isfinite(mean).all():
            raise PicoError("The VAE produced NaN values encoding the image even in fp32: pick another VAE "
                            "(e.g. vae-ft-mse) or the checkpoint's own.", kind="nan")
        return mean.float() * vae.config.scaling_factor
