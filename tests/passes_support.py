"""Shared by the second-pass job tests (img2img, hires fix): a models/ tree with the tiny checkpoint, requests
at small sizes, and the independent reference for a hires pass: diffusers' own StableDiffusionImg2ImgPipeline
given the upscaled latents, with A1111's step rule and 8-bit conversion written out here."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_CHECKPOINT
from paths_support import copy_models, make_paths

from picotui.engine.events import Step
from picotui.engine.request import GenerationRequest

PROMPT, NEGATIVE = "a lighthouse on a cliff", "blurry"
BASE = dict(prompt=PROMPT, negative_prompt=NEGATIVE, checkpoint=TINY_CHECKPOINT, sampler="Euler", steps=3, cfg=6.0,
            width=64, height=64, seed=7, rng="CPU")


@pytest.fixture(scope="module")
def paths(models_root, tmp_path_factory):
    paths = make_paths(tmp_path_factory.mktemp("passes"))
    copy_models(models_root, paths.models, names={TINY_CHECKPOINT})
    return paths


def request(**kw) -> GenerationRequest:
    return GenerationRequest(**{**BASE, **kw})


def pngs(paths):
    return sorted(paths.outputs.rglob("*.png")) if paths.outputs.exists() else []


def steps_by_pass(events, job) -> dict[str, list[tuple[int, int, int, int]]]:
    """(index, total, pass number, pass count) of each Step event of `job`, by pass label."""
    out: dict[str, list] = {}
    for e in events.of(Step, job):
        out.setdefault(e.pass_label, []).append((e.index, e.total, e.pass_number, e.pass_count))
    return out


def assert_same_picture(ours, expected) -> None:
    """Equal up to float rounding: at most 1/255 anywhere and almost nowhere at all. (The tiny model's text
    encoder moves pixels little, so a wrong prompt shows as a mean difference, not a max one.)"""
    diff = np.abs(np.asarray(ours).astype(int) - np.asarray(expected).astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.05, (diff.max(), diff.mean())


def a1111_8bit(decoded) -> np.ndarray:
    """A1111's picture from the VAE's output: (x + 1) / 2 clamped, times 255, truncated to uint8."""
    unit = np.clip((decoded[0].float().numpy() + 1.0) / 2.0, 0.0, 1.0)
    return (255.0 * np.moveaxis(unit, 0, 2)).astype(np.uint8)


def diffusers_img2img(components, latents, *, schedule, run, prompt, negative, seed, cfg) -> np.ndarray:
    """diffusers' own StableDiffusionImg2ImgPipeline from `latents` with Euler: of a `schedule`-step schedule the
    last `run` steps (its strength is run / schedule), then the VAE and A1111's 8-bit picture. Euler's "linspace"
    spacing puts its sigmas at k-diffusion's when the schedule's t fall on whole numbers (4 steps: 999, 666,
    333, 0). The starting noise is diffusers' first draw from a CPU generator seeded with the seed at the latent
    shape: A1111's ImageRNG for that pass (CPU source)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionImg2ImgPipeline
    from generation_support import plain_pipeline

    base = plain_pipeline(*components)
    pipe = StableDiffusionImg2ImgPipeline(**base.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = EulerDiscreteScheduler.from_config(base.scheduler.config, timestep_spacing="linspace")
    out = pipe(prompt, negative_prompt=negative, image=latents, strength=(run + 0.5) / schedule,
               num_inference_steps=schedule, guidance_scale=cfg, output_type="latent",
               generator=torch.Generator("cpu").manual_seed(seed))
    vae = pipe.vae
    with torch.no_grad():
        decoded = vae.decode(out.images / vae.config.scaling_factor, return_dict=False)[0]
    return a1111_8bit(decoded)


def diffusers_hires_pass(components, latents, *, steps, strength, **kw) -> np.ndarray:
    """A hires pass from `latents` (upscaled and cropped) with A1111's explicit-steps rule: a schedule of
    int(steps / strength) steps of which the last `steps` run."""
    return diffusers_img2img(components, latents, schedule=int(steps / min(strength, 0.999)), run=steps, **kw)


def diffusers_encode(components, picture):
    """A picture encoded by diffusers' VAE as A1111 feeds it: x / 255 * 2 - 1, then the posterior's mean (picotui's
    choice for A1111's sample, whose std is ~1e-4 on SD's VAE) times the scaling factor."""
    import torch

    vae = components[1]
    pixels = torch.from_numpy(np.moveaxis(np.asarray(picture).astype(np.float32) / 255.0, 2, 0))[None] * 2 - 1
    with torch.no_grad():
        return vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor


def diffusers_source_img2img(components, picture, *, steps, strength, **kw) -> np.ndarray:
    """img2img from a picture (already at the size), A1111's default rule: a schedule of `steps` steps of which
    t_enc + 1 run, t_enc = int(strength * steps)."""
    t_enc = int(min(strength, 0.999) * steps)
    return diffusers_img2img(components, diffusers_encode(components, picture), schedule=steps, run=t_enc + 1, **kw)
