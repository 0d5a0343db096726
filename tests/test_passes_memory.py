"""The memory plan of a job with a second pass is chosen for the biggest size it touches: the hires target,
the img2img source where it is encoded at its own size, with the VAE encoder and a model upscaler counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from picotui.engine.hardware.memory import (
    GIB,
    UPSCALER_TILE_WORK,
    UPSCALER_WEIGHTS,
    VAE_WORK_512,
    JobSize,
    choose_memory_plan,
    estimate_peak,
)
from picotui.engine.jobs.second_pass import Source, crop_latents, job_size
from picotui.engine.request import GenerationRequest

PASCAL = (6, 1)


def plan_for(size: JobSize, free_gib: float):
    return choose_memory_plan(free_gib * GIB, free_gib * GIB, size.width, size.height, PASCAL, encode=size.encode,
                              upscaler=size.upscaler)


def test_a_hires_job_is_planned_at_its_hires_target_not_its_first_pass():
    request = GenerationRequest(width=512, height=512, hires=True, hires_scale=2.0)
    size = job_size(request, None)
    assert size == JobSize(1024, 1024)  # Latent: nothing encoded, no upscaler model
    assert plan_for(JobSize(512, 512), 6).mode == "full-gpu"
    hires_plan = plan_for(size, 6)
    assert hires_plan.vae_tiling  # a 1024² decode does not fit 6 GiB whole
    assert plan_for(size, 4).mode != "cpu" and plan_for(size, 4).estimate_bytes <= (4 - 0.35) * 0.8 * GIB
    by_model = job_size(GenerationRequest(hires=True, hires_upscaler="4x-UltraSharp", hires_resize=(1000, 0)), None)
    assert by_model == JobSize(1000, 1000, encode=(1000, 1000), upscaler=True)
    assert job_size(GenerationRequest(hires=True, hires_upscaler="lanczos"), None).upscaler is False


def test_an_img2img_source_encoded_at_its_own_size_decides_the_plan():
    source = Source(Path("big.png"), Image.new("RGB", (2048, 2048)), "0123456789")
    fitted = job_size(GenerationRequest(init_image="big.png", width=512, height=512), source)
    latent = job_size(GenerationRequest(init_image="big.png", width=512, height=512,
                                        resize_mode="Just resize (latent upscale)"), source)
    assert fitted == JobSize(512, 512, encode=(512, 512)) and latent.encode == (2048, 2048)
    assert not plan_for(fitted, 6).vae_tiling
    assert plan_for(latent, 6).vae_tiling  # the 2048² encode goes in tiles
    tiled = dict(vae_tiling=True, text_encoder_offload=True)
    assert estimate_peak(512, 512, encode=(2048, 2048), **tiled) < estimate_peak(512, 512, encode=(2048, 2048))


def test_a_model_upscaler_counts_its_weights_throughout_and_one_tile_while_it_runs():
    """Its weights stay loaded beside the pipeline's (kept for the next picture); its tiled working memory is one
    tile's, needed only while it runs, so at 512² the VAE decode's is the bigger of the two."""
    for plan in ({}, dict(model_offload=True), dict(sequential_offload=True)):
        assert estimate_peak(512, 512, upscaler=True, **plan) == pytest.approx(
            estimate_peak(512, 512, **plan) + UPSCALER_WEIGHTS)
    assert VAE_WORK_512 > UPSCALER_TILE_WORK


@pytest.mark.parametrize("shape, truncate, kept", [((24, 16), (0, 8), (4, 20)), ((17, 16), (0, 1), (0, 16)),
                                                   ((16, 19), (3, 0), (1, 17))])
def test_the_hires_crop_is_a1111s(shape, truncate, kept):
    """samples[:, :, ty // 2 : h - (ty + 1) // 2, tx // 2 : w - (tx + 1) // 2] (processing.py sample_hr_pass)."""
    import torch

    latents = torch.arange(shape[0] * shape[1], dtype=torch.float32).reshape(1, 1, *shape)
    out = crop_latents(latents, *truncate)
    if truncate[1]:
        assert out.shape[-2] == shape[0] - truncate[1] and out[0, 0, 0, 0] == latents[0, 0, kept[0], 0]
    else:
        assert out.shape[-1] == shape[1] - truncate[0] and out[0, 0, 0, 0] == latents[0, 0, 0, kept[0]]
