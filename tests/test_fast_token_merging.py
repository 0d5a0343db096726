"""Token merging (A1111's "Token merging ratio") through tomesd on diffusers 0.42's UNet: tomesd's patched block is
diffusers' block when nothing merges, the engine's merge is what diffusers' documented tomesd usage with A1111's
arguments gives, and removing it leaves the UNet exactly as it was."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from generation_support import encoder_for, plain_pipeline, render

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

tomesd = pytest.importorskip("tomesd")


@pytest.fixture(scope="module")
def components(tiny_components):
    unet, vae, text_encoder = tiny_components
    return copy.deepcopy(unet), vae, text_encoder  # patched and unpatched here: the session's UNet stays clean


def unet_output(unet, seed=0, size=8):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, size, size, generator=g)
    context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor(700), context).sample


def test_tomesd_block_is_diffusers_block_when_nothing_merges(components):
    # The judgement that tomesd works with diffusers 0.42: its re-implemented BasicTransformerBlock.forward, with
    # no token merged, computes exactly what diffusers' own forward computes.
    unet = copy.deepcopy(components[0])
    before = unet_output(unet)
    tomesd.apply_patch(unet, ratio=0.0, use_rand=False)
    assert any(type(m).__name__ == "ToMeBlock" for m in unet.modules())
    assert np.array_equal(unet_output(unet).numpy(), before.numpy())


def test_merge_then_unmerge_is_lossless_on_windows_of_equal_tokens():
    # ToMe's promise on small tensors: a 4x4 token grid whose 2x2 windows each hold one repeated token merges
    # 3/4 of its tokens into the windows' representatives and unmerges back to the very same grid.
    import torch
    from tomesd.merge import bipartite_soft_matching_random2d

    g = torch.Generator().manual_seed(3)
    windows = torch.randn(1, 2, 2, 8, generator=g)  # one token per 2x2 window
    grid = windows.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2).reshape(1, 16, 8)
    merge, unmerge = bipartite_soft_matching_random2d(grid, 4, 4, 2, 2, r=12, no_rand=True)
    merged = merge(grid)
    assert merged.shape == (1, 4, 8)
    assert torch.allclose(torch.sort(merged[0], dim=0).values, torch.sort(windows.reshape(4, 8), dim=0).values)
    assert torch.allclose(unmerge(merged), grid)


def test_engine_merge_equals_diffusers_tomesd_pipeline_and_removes_cleanly(components):
    import torch

    from picotui.engine.hardware.token_merging import set_token_merging, token_merging_ratio

    unet = components[0]
    pipe = plain_pipeline(*components)
    encode = encoder_for(pipe)
    kw = dict(sampler="Euler", steps=3, cfg=7.0, seed=5)
    plain = render(pipe, encode, **kw)
    reference_unet = copy.deepcopy(unet)
    before = unet_output(unet)
    hooks_before = len(unet._forward_pre_hooks)

    set_token_merging(unet, 0.5)
    assert token_merging_ratio(unet) == 0.5
    merged = render(pipe, encode, **kw)

    # diffusers' documented usage (docs/optimization/tome.md) with A1111's arguments, on its own copy of the UNet
    reference = plain_pipeline(reference_unet, *components[1:])
    tomesd.apply_patch(reference, ratio=0.5, use_rand=False, merge_attn=True, merge_crossattn=False, merge_mlp=False)
    assert np.array_equal(merged, render(reference, encoder_for(reference), **kw))
    assert not np.array_equal(merged, plain)  # merging changes the picture: the patch is really in the loop

    set_token_merging(unet, 0.3)  # a new ratio replaces the old patch rather than stacking on it
    assert len(unet._forward_pre_hooks) == hooks_before + 1
    set_token_merging(unet, 0.0)
    assert token_merging_ratio(unet) == 0.0
    assert not any(type(m).__name__ == "ToMeBlock" for m in unet.modules())
    assert len(unet._forward_pre_hooks) == hooks_before
    assert torch.equal(unet_output(unet), before)
    assert np.array_equal(render(pipe, encode, **kw), plain)
