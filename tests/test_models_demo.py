"""The demo checkpoint goes through the same library sniff and loader as a civitai file, and runs fast."""

from __future__ import annotations

import numpy as np
import torch

from picotui.engine.models.demo import ensure_demo_checkpoint
from picotui.engine.models.library import sniff
from picotui.engine.models.loading import ModelManager


def _generate(pipe, seed: int):
    gen = torch.Generator().manual_seed(seed)
    cond = torch.randn(1, 77, 32, generator=gen)
    return pipe(prompt_embeds=cond, negative_prompt_embeds=torch.zeros_like(cond), num_inference_steps=4,
                height=64, width=64, generator=gen, output_type="np").images[0]


def test_demo_is_an_sd1_checkpoint_that_generates(demo_checkpoint, cache_dir):
    assert ensure_demo_checkpoint(cache_dir) == demo_checkpoint
    mf = sniff(demo_checkpoint)
    assert (mf.kind, mf.family, mf.usable) == ("checkpoint", "SD1.x", True)
    pipe = ModelManager(None, "cpu", torch.float32).pipeline_for(mf)
    _generate(pipe, 0)  # warm-up: first call pays for lazy imports
    a = _generate(pipe, 1)
    b = _generate(pipe, 1)
    assert a.shape == (64, 64, 3) and np.isfinite(a).all()
    assert np.array_equal(a, b)  # same seed, same picture
    assert not np.array_equal(a, _generate(pipe, 2))
    assert a.std() > 0.01  # abstract noise, not a flat image
