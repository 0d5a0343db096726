"""Shared fixtures: tiny SD1.5-architecture models written at test time in the layouts users download.

Nothing here is a stub: the checkpoint is a real LDM single-file .safetensors, the VAE a real LDM VAE
file, the LoRAs real kohya/A1111 and diffusers/peft key layouts, the embedding a real A1111 TI file.
Costly things are session-scoped and built once.
"""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: the whole suite runs with the hub offline, as users do.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TINY_CHECKPOINT = "tinySD15_v1.safetensors"
TINY_VAE = "tiny-vae-ft-mse.safetensors"
KOHYA_LORA = "tinyStyle_kohya.safetensors"
DIFFUSERS_LORA = "tinyStyle_diffusers.safetensors"
EMBEDDING = "tinyembed.safetensors"
EMBEDDING_VECTORS = 2


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_components():
    """(unet, vae, text_encoder): the diffusers models the tiny checkpoint was written from (seed 0)."""
    from picotui.engine.demo import build_tiny_components

    return build_tiny_components(seed=0)


def _lora_targets(unet, text_encoder):
    """(kind, module name, in, out[, 1 for 1x1 convs]) for the layers LoRA trainers target in SD1.x."""
    import torch

    targets = []
    for kind, model, names in (("unet", unet, ("to_q", "to_k", "to_v", "to_out.0", "ff.net.2")),
                               ("te", text_encoder, ("q_proj", "k_proj", "v_proj", "out_proj"))):
        if model is None:
            continue
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and name.endswith(names):
                targets.append((kind, name, mod.in_features, mod.out_features))
            elif kind == "unet" and isinstance(mod, torch.nn.Conv2d) and name.endswith(("proj_in", "proj_out")):
                # SD1's transformer in/out projections are 1x1 convolutions; kohya trains them too
                targets.append((kind, name, mod.in_channels, mod.out_channels, 1))
    return targets


def write_kohya_lora(path: Path, unet, text_encoder, seed: int = 1, rank: int = 4) -> Path:
    """kohya-ss / A1111 layout: lora_unet_<dotted_name_with_underscores>.lora_down/.lora_up/.alpha."""
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for kind, name, n_in, n_out, *conv in _lora_targets(unet, text_encoder):
        # kohya names the text encoder by its pre-transformers-5 path (text_model.encoder...).
        module = name if kind == "unet" else "text_model." + name.removeprefix("text_model.")
        base = f"lora_{kind}_" + module.replace(".", "_")
        k = (1, 1) if conv else ()
        tensors[base + ".lora_down.weight"] = torch.randn(rank, n_in, *k, generator=gen) * 0.3
        tensors[base + ".lora_up.weight"] = torch.randn(n_out, rank, *k, generator=gen) * 0.3
        tensors[base + ".alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(rank)})
    return path


def write_diffusers_lora(path: Path, unet, seed: int = 2, rank: int = 4) -> Path:
    """diffusers/peft layout (what `save_lora_weights` writes): unet.<name>.lora_A/.lora_B.weight."""
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for _kind, name, n_in, n_out, *conv in _lora_targets(unet, None):
        k = (1, 1) if conv else ()
        tensors[f"unet.{name}.lora_A.weight"] = torch.randn(rank, n_in, *k, generator=gen) * 0.3
        tensors[f"unet.{name}.lora_B.weight"] = torch.randn(n_out, rank, *k, generator=gen) * 0.3
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


@pytest.fixture(scope="session")
def models_root(tmp_path_factory, tiny_components) -> Path:
    """A models/ tree as a user fills it from civitai: checkpoints/ vae/ loras/ embeddings/."""
    import torch
    from safetensors.torch import save_file

    from picotui.engine.demo import build_tiny_components
    from picotui.engine.ldm_layout import write_ldm_checkpoint, write_ldm_vae

    root = tmp_path_factory.mktemp("models")
    for sub in ("checkpoints", "vae", "loras", "embeddings"):
        (root / sub).mkdir()
    unet, vae, text_encoder = tiny_components
    write_ldm_checkpoint(root / "checkpoints" / TINY_CHECKPOINT, unet, vae, text_encoder)
    other_vae = build_tiny_components(seed=1)[1]  # same shape, different weights
    write_ldm_vae(root / "vae" / TINY_VAE, other_vae)
    write_kohya_lora(root / "loras" / KOHYA_LORA, unet, text_encoder)
    write_diffusers_lora(root / "loras" / DIFFUSERS_LORA, unet)
    gen = torch.Generator().manual_seed(3)
    hidden = text_encoder.config.hidden_size
    save_file({"emb_params": torch.randn(EMBEDDING_VECTORS, hidden, generator=gen) * 0.02},
              str(root / "embeddings" / EMBEDDING))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(models_root) -> Path:
    """The tiny SD1.5 checkpoint in the LDM single-file layout (inside models_root/checkpoints)."""
    return models_root / "checkpoints" / TINY_CHECKPOINT


@pytest.fixture(scope="session")
def demo_checkpoint(cache_dir) -> Path:
    """The demo model as `--checkpoint demo` creates it: cache_dir/demo/picotui-demo-sd15-tiny.safetensors."""
    from picotui.engine.demo import ensure_demo_checkpoint

    return ensure_demo_checkpoint(cache_dir)
