"""The demo model: a tiny SD1.5-architecture checkpoint with random weights, so every path can be tried
without a 2 GB download. It is written in the LDM single-file layout and loaded through the same loader
as a civitai file, so "demo works" means "the loader works". It paints abstract noise, by design.

The components come from the bundled SD1.5 configs with only the sizes shrunk (same block types, same
tokenizer ids, same VAE scaling factor), built under a fixed seed so the file is byte-identical on
every machine that runs the same library versions.
"""

from __future__ import annotations

import json
from pathlib import Path

DEMO_FILE = "picotui-demo-sd15-tiny.safetensors"
DEMO_NOTE = "picotui demo model: tiny SD1.5 architecture with random weights; it produces abstract noise."

# What shrinks. Channels stay multiples of 32 because SD's GroupNorm uses 32 groups; attention heads
# (8 in the UNet) stay as in SD1.5 because a file's shapes cannot tell them apart.
TINY_UNET = dict(block_out_channels=[32, 32, 64, 64], layers_per_block=1, cross_attention_dim=32, sample_size=8)
TINY_VAE = dict(block_out_channels=[32, 32, 64, 64], layers_per_block=1, sample_size=64)
TINY_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=5, projection_dim=32)


def base_config(component: str) -> dict:
    """The bundled SD1.5 config of one component (unet, vae, text_encoder), without diffusers' _ keys."""
    from picotui.paths import assets_dir

    cfg = json.loads((assets_dir() / "sd15" / component / "config.json").read_text())
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def build_components(unet_cfg: dict, vae_cfg: dict, text_cfg: dict, seed: int = 0):
    """Fresh (unet, vae, text_encoder) with random weights drawn under `seed`."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from picotui.engine.models.ldm_layout import clip_heads

    text_cfg = dict(text_cfg, num_attention_heads=clip_heads(text_cfg["hidden_size"]))
    text_cfg.pop("architectures", None)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(unet_cfg)
    vae = AutoencoderKL.from_config(vae_cfg)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_cfg))
    return unet.eval(), vae.eval(), text_encoder.eval()


def build_tiny_components(seed: int = 0):
    """Tiny SD1.5-architecture (unet, vae, text_encoder): 8x VAE, 4 latent channels, 5 CLIP layers."""
    return build_components({**base_config("unet"), **TINY_UNET}, {**base_config("vae"), **TINY_VAE},
                            {**base_config("text_encoder"), **TINY_TEXT}, seed)


def build_full_size_components(seed: int = 0):
    """Real SD1.5 sizes with random weights (benchmarks, GPU smoke tests). ~1 B parameters: slow on CPU."""
    return build_components(base_config("unet"), base_config("vae"), base_config("text_encoder"), seed)


def demo_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / "demo" / DEMO_FILE


def ensure_demo_checkpoint(cache_dir: Path) -> Path:
    """The demo checkpoint's path, creating it on first use (atomic write; later calls reuse it)."""
    path = demo_path(cache_dir)
    if path.is_file() and path.stat().st_size > 0:
        return path
    from picotui.engine.models.ldm_layout import ldm_checkpoint_state_dict, save_atomic

    unet, vae, text_encoder = build_tiny_components(seed=0)
    tensors = ldm_checkpoint_state_dict(unet, vae, text_encoder)
    # One metadata entry only: safetensors writes metadata from a hash map whose order varies per process,
    # and the demo file must be byte-identical everywhere (its hash goes into PNG metadata).
    return save_atomic(tensors, path, metadata={"format": "pt"})
