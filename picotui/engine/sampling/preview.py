"""A cheap live preview: latents -> RGB by one linear map, no VAE call.

SD1.5's four latent channels are close to a linear function of the colour of the 8x8 pixel block
they encode. The factors below are the widely used least-squares fit of that map for the SD1.x VAE;
the result is blurry and slightly off in colour, but it costs a 4x3 matrix product per step (on the
GPU, before the small copy to the CPU), so the UI can show progress on every step.
"""

from __future__ import annotations

# rows: latent channels 0..3; columns: R, G, B (output roughly in [-1, 1])
SD15_LATENT_RGB = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)


_factors: dict = {}  # device -> SD15_LATENT_RGB as a tensor there


def latents_to_preview(latents, index: int = 0):
    """A PIL RGB image of the latent's size (width/8 x height/8) from a [B, 4, h, w] latent tensor."""
    import torch
    from PIL import Image

    lat = latents[index].detach()
    factors = _factors.get(lat.device)
    if factors is None:  # once per device: a fresh tensor per step would be a host-to-GPU copy every step
        factors = _factors[lat.device] = torch.tensor(SD15_LATENT_RGB, dtype=torch.float32, device=lat.device)
    rgb = torch.einsum("chw,cr->hwr", lat.float(), factors)
    pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(pixels)  # uint8 HxWx3 -> RGB
