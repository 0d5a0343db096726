"""Model files for the library tests, written at test time: only the safetensors header matters (key names and
shapes tell families apart), tensors are tiny zeros; plus raw headers, a models/ tree, the reference hashes
and a recorder of every file read to hash it."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

U = "model.diffusion_model."
TO_K = U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
CONV_IN = U + "input_blocks.0.0.weight"
VAE_LDM = {"encoder.conv_in.weight": (8, 3, 3, 3), "decoder.conv_in.weight": (8, 4, 3, 3),
           "decoder.conv_out.weight": (3, 8, 3, 3), "quant_conv.weight": (8, 8, 1, 1)}
TEXT = {"cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (16, 768)}


def write(path, shapes: dict, metadata: dict | None = None):
    """A .safetensors file with these tensor names and shapes (zeros, fp16); returns `path`."""
    save_file({k: np.zeros(s, dtype=np.float16) for k, s in shapes.items()}, str(path), metadata=metadata)
    return path


def sd1(ctx=768, channels=4) -> dict:
    return {CONV_IN: (8, channels, 3, 3), TO_K: (8, ctx), **{"first_stage_model." + k: s for k, s in VAE_LDM.items()},
            **TEXT}


CASES = {
    "sd15.safetensors": (sd1(), "checkpoint", "SD1.x", True),
    "tiny32.safetensors": (sd1(ctx=32), "checkpoint", "SD1.x", True),  # our tiny test models
    "inpaint.safetensors": (sd1(channels=9), "checkpoint", "SD1.x inpainting", False),
    "pix2pix.safetensors": (sd1(channels=8), "checkpoint", "other", False),
    "sd21.safetensors": ({CONV_IN: (8, 4, 3, 3), TO_K: (8, 1024), "cond_stage_model.model.ln_final.weight": (1024,)},
                         "checkpoint", "SD2.x", False),
    "sdxl.safetensors": ({CONV_IN: (8, 4, 3, 3), U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (8, 2048),
                          U + "label_emb.0.0.weight": (8, 2816),
                          "conditioner.embedders.1.model.ln_final.weight": (1280,)}, "checkpoint", "SDXL", False),
    "vae-ldm.safetensors": (VAE_LDM, "vae", "SD1.x", True),
    "vae-prefixed.safetensors": ({"first_stage_model." + k: s for k, s in VAE_LDM.items()}, "vae", "SD1.x", True),
    "vae-diffusers.safetensors": ({"encoder.conv_in.weight": (8, 3, 3, 3), "decoder.conv_in.weight": (8, 4, 3, 3),
                                   "encoder.down_blocks.0.resnets.0.conv1.weight": (8, 8, 3, 3),
                                   "decoder.up_blocks.0.resnets.0.conv1.weight": (8, 8, 3, 3),
                                   "decoder.conv_out.weight": (3, 8, 3, 3)}, "vae", "SD1.x", True),
    "vae-flux.safetensors": ({**VAE_LDM, "decoder.conv_in.weight": (8, 16, 3, 3)}, "vae", "other", False),
    "kohya.safetensors": ({"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768),
                           "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (320, 4),
                           "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": (),
                           "lora_te_text_model_encoder_layers_0_self_attn_k_proj.lora_down.weight": (4, 768)},
                          "lora", "SD1.x", True),
    "peft.safetensors": ({"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": (4, 768),
                          "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": (320, 4)},
                         "lora", "SD1.x", True),
    "old-diffusers.safetensors": ({"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.down.weight": (4, 768),
                                   "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.up.weight": (320, 4)},
                                  "lora", "SD1.x", True),
    "te-only-sd2.safetensors": ({"lora_te_text_model_encoder_layers_0_self_attn_k_proj.lora_down.weight": (4, 1024),
                                 "lora_te_text_model_encoder_layers_0_self_attn_k_proj.lora_up.weight": (1024, 4)},
                                "lora", "SD2.x", False),
    "xl-lora.safetensors": ({"lora_te1_text_model_encoder_layers_0_self_attn_k_proj.lora_down.weight": (4, 768),
                             "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 2048)},
                            "lora", "SDXL", False),
    "emb.safetensors": ({"emb_params": (2, 768)}, "embedding", "SD1.x", True),
    "emb-tiny.safetensors": ({"emb_params": (3, 32)}, "embedding", "SD1.x", True),
    "emb-sd2.safetensors": ({"emb_params": (2, 1024)}, "embedding", "SD2.x", False),
    "emb-a1111.safetensors": ({"string_to_param.*": (4, 768)}, "embedding", "SD1.x", True),
    "emb-concept.safetensors": ({"<cat-toy>": (768,)}, "embedding", "SD1.x", True),
    "emb-xl.safetensors": ({"clip_l": (2, 768), "clip_g": (2, 1280)}, "embedding", "SDXL", False),
    "controlnet.safetensors": ({"control_model.input_hint_block.0.weight": (16, 3, 3, 3),
                                "control_model.zero_convs.0.0.weight": (8, 8, 1, 1)}, "unknown", "other", False),
    "unet-diffusers.safetensors": ({"conv_in.weight": (8, 4, 3, 3),
                                    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": (8, 768)},
                                   "unknown", "SD1.x", False),
}


def raw_safetensors(path, header, data: bytes = b"", length: int | None = None):
    """A file with exactly this header (any JSON) and data, as a broken download or a hand-edited file has;
    `length` overrides the header length the file claims."""
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body) if length is None else length) + body + data)
    return path


def library_tree(tmp_path):
    """tmp_path/models with its four folders and one usable SD1.5 file in each: dreamshaper_8 (checkpoint),
    vae-ft-mse, style (a kohya LoRA), easyneg (an embedding)."""
    root = tmp_path / "models"
    for sub in ("checkpoints", "vae", "loras", "embeddings"):
        (root / sub).mkdir(parents=True)
    write(root / "checkpoints" / "dreamshaper_8.safetensors", sd1())
    write(root / "vae" / "vae-ft-mse.safetensors", CASES["vae-ldm.safetensors"][0])
    write(root / "loras" / "style.safetensors", CASES["kohya.safetensors"][0])
    write(root / "embeddings" / "easyneg.safetensors", CASES["emb.safetensors"][0])
    return root


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def addnet(path) -> str:
    """A1111's addnet_hash_safetensors, written out independently: skip 8 + header length, hash the rest."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + n:]).hexdigest()


@pytest.fixture
def calls(monkeypatch):
    """(kind, file name) for every time a file is actually read to hash it."""
    from picotui.engine.models import hashing

    seen = []
    real = {"sha256": hashing.sha256_file, "addnet": hashing.addnet_sha256_file}

    def counting(kind):
        def run(path, *args):
            seen.append((kind, path.name))
            return real[kind](path, *args)
        return run

    monkeypatch.setattr(hashing, "sha256_file", counting("sha256"))
    monkeypatch.setattr(hashing, "addnet_sha256_file", counting("addnet"))
    return seen
