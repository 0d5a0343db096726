"""The original LDM/CompVis single-file key layout (what civitai ships) <-> diffusers module keys, for SD1.x.

One function per component maps a diffusers state-dict key to its LDM key. The same function serves
both directions: writing (diffusers -> LDM file) maps every key forward; loading builds the diffusers
model from a config first, then asks, for each of its keys, which LDM key holds the tensor. So there is
one table to get right, and the tests cross-check it against diffusers' own converter.

Everything is generalised over the number of blocks and layers per block (read from the config), so a
tiny test model and real SD1.5 go through the same code. Only the VAE mid-block attention differs in
shape: LDM stores q/k/v/proj_out as 1x1 convolutions [C, C, 1, 1] where diffusers uses Linear [C, C].

Also here: inferring the architecture numbers back from a file's tensor shapes (header only), so a
checkpoint of any size loads with the bundled SD1.5 configs plus those numbers.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _split_param(rest: str, table: dict[str, str]) -> str:
    """Rename the leading module of `rest` ("conv1.weight") through `table`; other names pass unchanged."""
    for old, new in table.items():
        if rest == old or rest.startswith(old + "."):
            return new + rest[len(old):]
    return rest


def _has_attention(block_type: str) -> bool:
    return block_type.startswith("CrossAttn")


def unet_key_to_ldm(key: str, config: dict) -> str:
    """diffusers UNet2DConditionModel key -> LDM key (without the model.diffusion_model. prefix)."""
    per = config["layers_per_block"] + 1  # LDM counts the down/upsampler as one more "layer"
    top = _split_param(key, _UNET_TOP)
    if top != key:
        return top
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        idx = 1 + i * per + j
        return f"input_blocks.{idx}.0.{_split_param(rest, _UNET_RESNET)}" if kind == "resnets" \
            else f"input_blocks.{idx}.1.{rest}"
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * per}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"middle_block.{2 * int(m[1])}.{_split_param(m[2], _UNET_RESNET)}"
    if m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        idx = i * per + j
        return f"output_blocks.{idx}.0.{_split_param(rest, _UNET_RESNET)}" if kind == "resnets" \
            else f"output_blocks.{idx}.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        i = int(m[1])
        slot = 2 if _has_attention(config["up_block_types"][i]) else 1
        return f"output_blocks.{i * per + per - 1}.{slot}.conv.{m[2]}"
    raise KeyError(f"no LDM name for UNet key {key!r}")


def vae_key_to_ldm(key: str, config: dict) -> str:
    """diffusers AutoencoderKL key -> LDM VAE key (without the first_stage_model. prefix)."""
    n = len(config["down_block_types"])
    if m := re.match(r"(encoder|decoder)\.conv_norm_out\.(.*)", key):
        return f"{m[1]}.norm_out.{m[2]}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    # LDM numbers the decoder's up blocks from the lowest resolution's opposite end.
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"decoder.up.{n - 1 - int(m[1])}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        return f"decoder.up.{n - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        return f"{m[1]}.mid.attn_1.{_split_param(m[2], _VAE_ATTN)}"
    return key  # conv_in, conv_out, quant_conv, post_quant_conv keep their names


def text_key_to_ldm(key: str) -> str:
    """transformers 5 flattened CLIPTextModel ("encoder.layers...") -> the text_model.* names LDM files use."""
    return key if key.startswith("text_model.") else "text_model." + key


def _is_vae_attn_matrix(ldm_key: str) -> bool:
    return ".mid.attn_1." in ldm_key and ldm_key.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight"))


def _tensor(t, dtype):
    t = t.detach()
    if dtype is not None and t.is_floating_point():
        t = t.to(dtype)
    return t.contiguous()


def unet_to_ldm(state_dict, config: dict, dtype=None) -> dict:
    return {unet_key_to_ldm(k, config): _tensor(v, dtype) for k, v in state_dict.items()}


def vae_to_ldm(state_dict, config: dict, dtype=None) -> dict:
    out = {}
    for k, v in state_dict.items():
        ldm = vae_key_to_ldm(k, config)
        t = _tensor(v, dtype)
        out[ldm] = t[:, :, None, None].contiguous() if _is_vae_attn_matrix(ldm) and t.ndim == 2 else t
    return out


def text_encoder_to_ldm(state_dict, dtype=None) -> dict:
    return {text_key_to_ldm(k): _tensor(v, dtype) for k, v in state_dict.items()
            if not k.endswith("position_ids")}


def ldm_checkpoint_state_dict(unet, vae, text_encoder, dtype=None) -> dict:
    """The full single-file state dict, keys prefixed exactly as an SD1.5 .safetensors from civitai."""
    sd = {}
    sd.update({UNET_PREFIX + k: v for k, v in unet_to_ldm(unet.state_dict(), dict(unet.config), dtype).items()})
    sd.update({VAE_PREFIX + k: v for k, v in vae_to_ldm(vae.state_dict(), dict(vae.config), dtype).items()})
    sd.update({TEXT_PREFIX + k: v for k, v in text_encoder_to_ldm(text_encoder.state_dict(), dtype).items()})
    return sd


def save_atomic(tensors: dict, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write a .safetensors via a temp file in the same folder + rename: a crash never leaves half a file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata or {"format": "pt"})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_ldm_checkpoint(path, unet, vae, text_encoder, dtype=None) -> Path:
    """Save diffusers components as one SD1.x checkpoint in the LDM layout (atomically)."""
    return save_atomic(ldm_checkpoint_state_dict(unet, vae, text_encoder, dtype), path)


def write_ldm_vae(path, vae, dtype=None) -> Path:
    """Save a VAE the way standalone VAE files ship: LDM keys without the first_stage_model. prefix."""
    return save_atomic(vae_to_ldm(vae.state_dict(), dict(vae.config), dtype), path)


# ---- reading: diffusers keys <- LDM tensors ---------------------------------------------------------

def gather(source: dict, model_keys, key_fn, prefix: str = "") -> tuple[dict, list[str]]:
    """For each diffusers key, take source[prefix + key_fn(key)]; returns (state_dict, missing LDM keys).

    `source` may be any mapping with .get() (a dict, or a lazy view over a safetensors file)."""
    out, missing = {}, []
    for key in model_keys:
        ldm = prefix + key_fn(key)
        t = source.get(ldm)
        if t is None:
            missing.append(ldm)
            continue
        if t.ndim == 4 and _is_vae_attn_matrix(ldm):
            t = t[:, :, 0, 0]
        out[key] = t
    return out, missing


# ---- architecture from shapes ------------------------------------------------------------------------

def _indices(shapes: dict, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m[1]) for k in shapes if (m := rx.match(k))})


def infer_unet_config(shapes: dict, base: dict, prefix: str = UNET_PREFIX) -> dict:
    """Block count, layers per block, channels, attention placement and cross-attention width from shapes."""
    p = re.escape(prefix)
    inputs = _indices(shapes, p + r"input_blocks\.(\d+)\.")
    downs = _indices(shapes, p + r"input_blocks\.(\d+)\.0\.op\.weight")
    if not inputs or not downs:
        raise ValueError("no LDM UNet input blocks / downsamplers found")
    per = downs[0]  # the first downsampler sits right after the first block's layers
    layers, blocks = per - 1, len(inputs) // per
    channels, types = [], []
    for i in range(blocks):
        first = 1 + i * per
        channels.append(shapes[f"{prefix}input_blocks.{first}.0.out_layers.3.weight"][0])
        attn = any(k.startswith(f"{prefix}input_blocks.{first}.1.") for k in shapes)
        types.append("CrossAttnDownBlock2D" if attn else "DownBlock2D")
    cross = next(v[1] for k, v in shapes.items() if k.startswith(prefix) and k.endswith("attn2.to_k.weight"))
    cfg = dict(base)
    cfg.update(block_out_channels=channels, layers_per_block=layers, cross_attention_dim=cross,
               down_block_types=types,
               up_block_types=["CrossAttnUpBlock2D" if t.startswith("CrossAttn") else "UpBlock2D" for t in reversed(types)],
               in_channels=shapes[f"{prefix}input_blocks.0.0.weight"][1],
               out_channels=shapes[f"{prefix}out.2.weight"][0])
    return cfg


def infer_vae_config(shapes: dict, base: dict, prefix: str = "") -> dict:
    """Same for an LDM-layout VAE (prefix "first_stage_model." inside a checkpoint, "" in a VAE file)."""
    p = re.escape(prefix)
    blocks = _indices(shapes, p + r"encoder\.down\.(\d+)\.")
    layers = _indices(shapes, p + r"encoder\.down\.0\.block\.(\d+)\.")
    if not blocks or not layers:
        raise ValueError("no LDM VAE encoder blocks found")
    channels = [shapes[f"{prefix}encoder.down.{i}.block.0.conv1.weight"][0] for i in blocks]
    cfg = dict(base)
    cfg.update(block_out_channels=channels, layers_per_block=len(layers),
               down_block_types=["DownEncoderBlock2D"] * len(blocks),
               up_block_types=["UpDecoderBlock2D"] * len(blocks),
               latent_channels=shapes[f"{prefix}post_quant_conv.weight"][0])
    return cfg


def infer_vae_config_diffusers(shapes: dict, base: dict) -> dict:
    """Same for a VAE saved with diffusers key names (encoder.down_blocks.*)."""
    blocks = _indices(shapes, r"encoder\.down_blocks\.(\d+)\.")
    layers = _indices(shapes, r"encoder\.down_blocks\.0\.resnets\.(\d+)\.")
    if not blocks or not layers:
        raise ValueError("no diffusers VAE encoder blocks found")
    cfg = dict(base)
    cfg.update(block_out_channels=[shapes[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"][0] for i in blocks],
               layers_per_block=len(layers), down_block_types=["DownEncoderBlock2D"] * len(blocks),
               up_block_types=["UpDecoderBlock2D"] * len(blocks),
               latent_channels=shapes["post_quant_conv.weight"][0])
    return cfg


def clip_heads(hidden: int) -> int:
    """Heads are not visible in shapes: SD's CLIP uses 64-wide heads; narrower (tiny) models 16-wide."""
    return hidden // 64 if hidden % 64 == 0 else max(1, hidden // 16)


def infer_text_config(shapes: dict, base: dict, prefix: str) -> dict:
    """CLIP text encoder width, depth, MLP size, vocabulary and positions; `prefix` ends in text_model."""
    p = re.escape(prefix)
    layers = _indices(shapes, p + r"encoder\.layers\.(\d+)\.")
    vocab, hidden = shapes[f"{prefix}embeddings.token_embedding.weight"]
    cfg = dict(base)
    cfg.update(hidden_size=hidden, num_hidden_layers=len(layers), num_attention_heads=clip_heads(hidden),
               intermediate_size=shapes[f"{prefix}encoder.layers.0.mlp.fc1.weight"][0], vocab_size=vocab,
               max_position_embeddings=shapes[f"{prefix}embeddings.position_embedding.weight"][0],
               projection_dim=hidden)
    return cfg
