"""LoRA files with random weights in the layouts civitai and diffusers ship, for tests and benchmarks.

Real files, not mocks: the same key names, shapes and metadata trainers write, so they load through the
same code path as a downloaded LoRA. (The demo checkpoint itself is built in `demo`.)
"""

from __future__ import annotations

from pathlib import Path


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
