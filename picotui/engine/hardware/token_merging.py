"""Token merging (ToMe for Stable Diffusion): A1111's "Token merging ratio", through tomesd itself.

tomesd (the paper authors' package, which A1111 calls) swaps each BasicTransformerBlock's class for one
whose forward merges similar tokens before self-attention and unmerges after. Judged against diffusers
0.42: SD1.5's blocks use the plain layer-norm path tomesd re-implements, the attention processors
(AttnProcessor2_0, LoRA/peft layers) are untouched, and with nothing merged (ratio 0) the patched UNet is
bit-identical to diffusers' own (tests/test_fast_token_merging.py holds both). So we use it rather than
a copy of its maths.

A1111's arguments (modules/sd_models.py `apply_token_merging`): use_rand=False ("can cause issues with some
samplers"; it also keeps a seed's picture reproducible), merge self-attention only, tomesd's defaults for
the rest (max_downsample 1: only the full-resolution blocks, 2x2 strides). The patch is applied or
removed only when the ratio changes; removing it restores the original classes and hooks exactly.
"""

from __future__ import annotations

_APPLIED = "_picotui_token_merging"  # the ratio currently patched into a UNet (absent or 0: none)


def token_merging_ratio(unet) -> float:
    return float(getattr(unet, _APPLIED, 0.0) or 0.0)


def set_token_merging(unet, ratio: float) -> None:
    """Patch `unet` (a diffusers UNet2DConditionModel) to merge `ratio` of its tokens; 0 removes the patch."""
    ratio = float(ratio or 0.0)
    current = token_merging_ratio(unet)
    if current == ratio:
        return
    import tomesd

    if current > 0:
        tomesd.remove_patch(unet)
    if ratio > 0:
        tomesd.apply_patch(unet, ratio=ratio, use_rand=False, merge_attn=True, merge_crossattn=False,
                           merge_mlp=False)
    setattr(unet, _APPLIED, ratio)
