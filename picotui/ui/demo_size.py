"""A fast first picture with the demo model: 256×256 while the demo model is selected and the user has
not chosen a size (at 512² the demo's attention at full latent size takes 30–40 s on a 2-core CPU; at
256² a quarter of the latents, a few seconds). A size the user types, picks or restores is always kept."""

from __future__ import annotations

from dataclasses import replace

DEMO_SIZE = 256
DEFAULT_SIZE = (512, 512)  # GenerationRequest's default: the size nobody chose
NOTE = f"demo model: makes {DEMO_SIZE}×{DEMO_SIZE} for a fast first picture until you choose a size"


def applies(checkpoint: str, width: int, height: int, size_chosen: bool) -> bool:
    return checkpoint == "demo" and not size_chosen and (width, height) == DEFAULT_SIZE


def for_demo(request, size_chosen: bool):
    """The request as it will run: the demo size when `applies`."""
    if applies(request.checkpoint, request.width, request.height, size_chosen):
        return replace(request, width=DEMO_SIZE, height=DEMO_SIZE)
    return request
