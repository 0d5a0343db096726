"""The LDM single-file layout writer, checked against diffusers' own (independent) LDM converter, and the
deterministic demo checkpoint."""

from __future__ import annotations

import hashlib

import pytest
import torch
from generation_support import same_tensors as _same
from safetensors.torch import load_file

from picotui.engine.models import ldm_layout as L
from picotui.engine.models.demo import DEMO_FILE, build_tiny_components, ensure_demo_checkpoint
from picotui.engine.models.weights import read_header


@pytest.fixture(scope="module")
def ldm(tiny_checkpoint):
    return load_file(str(tiny_checkpoint))


def test_written_checkpoint_has_civitai_prefixes(ldm):
    prefixes = {k.split(".")[0] for k in ldm}
    assert prefixes == {"model", "first_stage_model", "cond_stage_model"}
    assert "model.diffusion_model.input_blocks.0.0.weight" in ldm
    assert "model.diffusion_model.time_embed.0.weight" in ldm
    assert "model.diffusion_model.output_blocks.1.1.conv.weight" in ldm  # upsampler after a non-attn block
    assert "model.diffusion_model.output_blocks.3.2.conv.weight" in ldm  # ... and after an attention block
    assert "model.diffusion_model.out.2.weight" in ldm
    assert "first_stage_model.decoder.up.3.upsample.conv.weight" in ldm
    assert "cond_stage_model.transformer.text_model.final_layer_norm.weight" in ldm
    # LDM stores the VAE mid-block attention as 1x1 convolutions
    q = ldm["first_stage_model.encoder.mid.attn_1.q.weight"]
    assert q.ndim == 4 and q.shape[2:] == (1, 1)


def test_diffusers_converter_reads_our_unet_and_vae(ldm, tiny_components):
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    unet, vae, _ = tiny_components
    _same(convert_ldm_unet_checkpoint(ldm, dict(unet.config)), unet.state_dict())
    _same(convert_ldm_vae_checkpoint(ldm, dict(vae.config)), vae.state_dict())


def test_text_encoder_keys_are_text_model_prefixed(ldm, tiny_components):
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint

    text_encoder = tiny_components[2]
    converted = {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(ldm).items()}
    _same(converted, text_encoder.state_dict())


def test_vae_file_has_no_prefix_and_maps_back(tmp_path, tiny_components):
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    vae = tiny_components[1]
    path = L.write_ldm_vae(tmp_path / "v.safetensors", vae, dtype=torch.float16)
    sd = load_file(str(path))
    assert "encoder.mid.attn_1.proj_out.weight" in sd and not any(k.startswith("first_stage_model.") for k in sd)
    assert all(t.dtype == torch.float16 for t in sd.values())
    back = convert_ldm_vae_checkpoint(sd, dict(vae.config))
    _same(back, {k: v.half() for k, v in vae.state_dict().items()})


def test_architecture_is_inferred_from_the_header(tiny_checkpoint, tiny_components):
    unet, vae, text_encoder = tiny_components
    shapes = read_header(tiny_checkpoint)
    u = L.infer_unet_config(shapes, {})
    for key in ("block_out_channels", "layers_per_block", "cross_attention_dim", "down_block_types", "up_block_types"):
        want = unet.config[key]
        assert u[key] == (list(want) if isinstance(want, (list, tuple)) else want), key
    v = L.infer_vae_config(shapes, {}, L.VAE_PREFIX)
    assert v["block_out_channels"] == list(vae.config.block_out_channels)
    assert v["layers_per_block"] == vae.config.layers_per_block and v["latent_channels"] == 4
    t = L.infer_text_config(shapes, {}, L.TEXT_PREFIX + "text_model.")
    assert (t["hidden_size"], t["num_hidden_layers"], t["vocab_size"], t["max_position_embeddings"]) == (32, 5, 49408, 77)
    assert t["num_attention_heads"] == text_encoder.config.num_attention_heads


def test_key_mapping_generalises_to_two_layers_per_block():
    # SD1.5's real layout (2 layers per block) at tiny width: the indices LDM files actually use.
    cfg = {"layers_per_block": 2, "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
           "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]}
    assert L.unet_key_to_ldm("down_blocks.1.resnets.1.conv1.weight", cfg) == "input_blocks.5.0.in_layers.2.weight"
    assert L.unet_key_to_ldm("down_blocks.2.downsamplers.0.conv.bias", cfg) == "input_blocks.9.0.op.bias"
    assert L.unet_key_to_ldm("up_blocks.0.upsamplers.0.conv.weight", cfg) == "output_blocks.2.1.conv.weight"
    assert L.unet_key_to_ldm("up_blocks.1.upsamplers.0.conv.weight", cfg) == "output_blocks.5.2.conv.weight"
    assert L.unet_key_to_ldm("up_blocks.3.attentions.2.proj_out.bias", cfg) == "output_blocks.11.1.proj_out.bias"
    assert L.unet_key_to_ldm("mid_block.resnets.1.conv_shortcut.weight", cfg) == "middle_block.2.skip_connection.weight"
    assert L.vae_key_to_ldm("decoder.up_blocks.0.resnets.2.conv_shortcut.weight", cfg) == \
        "decoder.up.3.block.2.nin_shortcut.weight"


def test_demo_checkpoint_is_deterministic_and_reused(tmp_path):
    a = ensure_demo_checkpoint(tmp_path / "one")
    b = ensure_demo_checkpoint(tmp_path / "two")
    assert a.name == DEMO_FILE and a.parent.name == "demo"
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    mtime = a.stat().st_mtime_ns
    assert ensure_demo_checkpoint(tmp_path / "one") == a and a.stat().st_mtime_ns == mtime  # reused, not rewritten
    assert not list(a.parent.glob("*.tmp"))  # the atomic write left no temp file


def test_tiny_components_are_seeded():
    u1 = build_tiny_components(seed=5)[0].state_dict()
    u2 = build_tiny_components(seed=5)[0].state_dict()
    u3 = build_tiny_components(seed=6)[0].state_dict()
    _same(u1, u2)
    assert not torch.equal(u1["conv_in.weight"], u3["conv_in.weight"])
