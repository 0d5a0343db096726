"""Fixtures shared by the generation/worker/CLI tests: the tiny SD1.5 model as a diffusers pipeline.

The pipeline wraps the very components the tiny LDM checkpoint (conftest) was written from, with the
bundled tokenizer and SD1.5 scheduler config, so what the engine makes from the file can be compared
with what plain diffusers makes from these.
"""

from __future__ import annotations

import pytest


def plain_pipeline(unet, vae, text_encoder):
    """diffusers' StableDiffusionPipeline as a user of diffusers would build it (bundled configs, offline)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    from picotui.paths import assets_dir

    root = assets_dir() / "sd15"
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, unet=unet, safety_checker=None, feature_extractor=None,
        tokenizer=CLIPTokenizer.from_pretrained(str(root / "tokenizer"), local_files_only=True),
        scheduler=PNDMScheduler.from_pretrained(str(root / "scheduler"), local_files_only=True),
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def tiny_pipe(tiny_components):
    return plain_pipeline(*tiny_components)


def encoder_for(pipe):
    """prompt, negative[, clip_skip] -> (cond, uncond) through the engine's PromptEncoder for `pipe`."""
    from picotui.engine.conditioning import PromptEncoder

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
