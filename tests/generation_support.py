"""Shared by the generation/worker/CLI tests: the tiny SD1.5 model as a diffusers pipeline, one image through
the engine's pieces (render) or through plain diffusers (plain_image), the bundled CLIP tokenizer.

The pipeline wraps the very components the tiny LDM checkpoint (conftest) was written from, with the
bundled tokenizer and SD1.5 scheduler config, so what the engine makes from the file can be compared
with what plain diffusers makes from these.
"""

from __future__ import annotations

import pytest


def clip_tokenizer():
    """The bundled SD1.5 CLIP tokenizer (transformers', offline)."""
    from transformers import CLIPTokenizer

    from picotui.paths import assets_dir

    return CLIPTokenizer.from_pretrained(str(assets_dir() / "sd15" / "tokenizer"), local_files_only=True)


def plain_pipeline(unet, vae, text_encoder):
    """diffusers' StableDiffusionPipeline as a user of diffusers would build it (bundled configs, offline)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    from picotui.paths import assets_dir

    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, unet=unet, safety_checker=None, feature_extractor=None,
        tokenizer=clip_tokenizer(),
        scheduler=PNDMScheduler.from_pretrained(str(assets_dir() / "sd15" / "scheduler"), local_files_only=True),
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def plain_image(components, prompt, negative, *, sampler, steps, cfg, width, height, seed, scheduler=None):
    """What plain diffusers makes from (unet, vae, text_encoder): its own pipeline call and prompt handling, with
    the diffusers scheduler picotui runs timestep sampler `sampler` with (or `scheduler`); a uint8 array."""
    import numpy as np
    import torch

    from picotui.engine.sampling.samplers import make_scheduler

    pipe = plain_pipeline(*components)
    pipe.scheduler = scheduler if scheduler is not None else make_scheduler(sampler, pipe.scheduler.config)
    image = pipe(prompt, negative_prompt=negative, num_inference_steps=steps, guidance_scale=cfg, width=width,
                 height=height, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return np.asarray(image)


def render(pipe, encode, prompt="a corgi on a wooden floor", negative="blurry", *, sampler, steps, cfg=7.0,
           width=64, height=64, seed, **kw):
    """One image through the engine's pieces: encode, denoise (extra keywords go to it), decode; a uint8 array."""
    import numpy as np

    from picotui.engine.sampling.generate import decode, denoise

    cond, uncond = encode(prompt, negative)
    latents = denoise(pipe, cond, uncond, sampler=sampler, steps=steps, cfg=cfg, width=width, height=height,
                      seed=seed, **kw)
    return np.asarray(decode(pipe, latents))


def same_tensors(a: dict, b: dict):
    """Asserts two state dicts have the same keys and equal tensors."""
    import torch

    assert set(a) == set(b), sorted(set(a) ^ set(b))[:5]
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def tiny_pipe(tiny_components):
    return plain_pipeline(*tiny_components)


def encoder_for(pipe):
    """prompt, negative[, clip_skip] -> (cond, uncond) through the engine's PromptEncoder for `pipe`."""
    from picotui.engine.prompting.conditioning import PromptEncoder

    encoder = PromptEncoder(pipe.tokenizer, pipe.text_encoder, {})

    def run(prompt: str, negative: str = "", clip_skip: int = 1):
        import torch

        with torch.no_grad():
            return encoder.encode(prompt, negative, clip_skip)

    return run


@pytest.fixture(scope="module")
def encode(tiny_pipe):
    return encoder_for(tiny_pipe)


@pytest.fixture
def encode_with():
    return encoder_for
