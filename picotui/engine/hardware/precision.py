"""fp16 and its failure: the SD1.5 VAE that decodes to NaN (or black) in fp16 and needs fp32.

Which VAEs needed fp32 is remembered for the session (by the file they came from), so a VAE that fails in
fp16 once is not tried in fp16 again on every image. The fp32 retry decodes in tiles when the image is
more than one tile: fp32 doubles the decode's working memory, and the decode is the peak the memory plan
was sized for in fp16.
"""

from __future__ import annotations

from contextlib import contextmanager

_NEEDS_FP32: set = set()  # identities of VAEs that decoded to NaN/black in fp16 this session


def vae_identity(vae):
    """The file a VAE came from (set by the model manager when it loads one), else the object itself."""
    return getattr(vae, "_picotui_source", None) or ("object", id(vae))


def needs_fp32(vae) -> bool:
    return vae_identity(vae) in _NEEDS_FP32


def remember_fp32(vae) -> None:
    _NEEDS_FP32.add(vae_identity(vae))


@contextmanager
def fp32_decoding(vae, latents):
    """The VAE in fp32 for one decode, tiled when `latents` span more than one tile; restored after."""
    import torch

    dtype, tiling = vae.dtype, vae.use_tiling
    latent_tile = getattr(vae, "tile_latent_min_size", None)
    big = latent_tile is not None and max(latents.shape[-2:]) > latent_tile
    vae.to(torch.float32)
    if big:
        vae.enable_tiling()
    try:
        yield
    finally:
        vae.to(dtype)
        if not tiling:
            vae.disable_tiling()
