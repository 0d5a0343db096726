"""The benchmark's model files, written once and cached: a random-weight SD1.5-architecture checkpoint (LDM
single-file layout, fp16 at full size), LoRAs, a TAESD decoder, a VAE, an ESRGAN upscaler and plain diffusers'
config folder. bench.py prepares them before it measures."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from fast_path import LCM_LORA  # beside this script (its folder is on sys.path)
from second_pass import UPSCALER, write_upscaler

CHECKPOINT, LORA, VAE = "sd15-random.safetensors", "random-style-lora.safetensors", "random-vae.safetensors"
TAESD = "taesd_decoder.safetensors"  # a random TAESD decoder, kept outside models/ (only the TAESD row uses it)
FORMAT_VERSION = "3"  # bump when what prepare() writes changes, so old caches are rebuilt


def prepare(cache: Path, tiny: bool) -> Path:
    """models/ root holding the checkpoint, LoRA and VAE, plus plain diffusers' config folder beside it."""
    root = cache / ("tiny" if tiny else "full")
    stamp = root / "ready.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("version") == FORMAT_VERSION:
        return root
    import torch

    from picotui.engine.models.demo import build_full_size_components, build_tiny_components
    from picotui.engine.models.ldm_layout import write_ldm_checkpoint, write_ldm_vae
    from picotui.engine.models.synthetic import write_kohya_lora
    from picotui.paths import assets_dir

    print(f"building the {'tiny' if tiny else 'full-size'} SD1.5 files in {root} (once)...", file=sys.stderr)
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("checkpoints", "loras", "vae", "embeddings", "upscalers"):
        (root / "models" / sub).mkdir(parents=True)
    build = build_tiny_components if tiny else build_full_size_components
    unet, vae, text_encoder = build(seed=0)
    dtype = None if tiny else torch.float16  # civitai ships fp16 checkpoints
    write_ldm_checkpoint(root / "models" / "checkpoints" / CHECKPOINT, unet, vae, text_encoder, dtype)
    write_kohya_lora(root / "models" / "loras" / LORA, unet, text_encoder, seed=1, rank=4 if tiny else 16)
    write_kohya_lora(root / "models" / "loras" / LCM_LORA, unet, text_encoder, seed=2, rank=4 if tiny else 64)
    _write_taesd(root / "taesd" / TAESD)
    write_ldm_vae(root / "models" / "vae" / VAE, build(seed=1)[1], dtype)
    write_upscaler(root / "models" / "upscalers" / UPSCALER, tiny)  # the hires row's model upscaler
    # diffusers' from_single_file reads the architecture from a local diffusers-format folder: the bundled
    # one (tokenizer, scheduler) with each model's own config, so the tiny sizes come along
    config = root / "diffusers-config"
    shutil.copytree(assets_dir() / "sd15", config)
    unet.save_config(config / "unet")
    vae.save_config(config / "vae")
    text_encoder.config.to_json_file(config / "text_encoder" / "config.json")
    stamp.write_text(json.dumps({"version": FORMAT_VERSION}))
    return root


def _write_taesd(path: Path) -> None:
    """diffusers' AutoencoderTiny decoder (random) in madebyollin's taesd_decoder layout ("N+1." keys)."""
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    decoder = AutoencoderTiny().decoder.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({f"{int(k.split('.')[1]) + 1}.{k.split('.', 2)[2]}": v.contiguous() for k, v in decoder.items()},
              str(path))
