"""Files people pick by mistake are refused with one line that says what they are, before any heavy load."""

from __future__ import annotations

import pytest
import torch
from conftest import EMBEDDING, KOHYA_LORA, TINY_VAE
from safetensors.torch import load_file, save_file

from picotui.engine import loading
from picotui.engine.errors import ModelError
from picotui.engine.library import sniff
from picotui.engine.loading import ModelManager


def _header_only_file(path, shapes: dict):
    """A file whose header looks like the real thing (names and shapes); data is zeros, in fp16."""
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in shapes.items()}, str(path))
    return path


VAE_KEY = {"first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3)}
SDXL = {"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (16, 768),
        "conditioner.embedders.1.model.ln_final.weight": (1280,),
        "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
        "model.diffusion_model.label_emb.0.0.weight": (1280, 2816), **VAE_KEY}
SD2 = {"cond_stage_model.model.token_embedding.weight": (16, 1024),
       "cond_stage_model.model.ln_final.weight": (1024,),
       "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
       "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024), **VAE_KEY}


@pytest.fixture
def no_heavy_load(monkeypatch):
    """Fails the test if the loader starts reading tensors: refusals must come from the header."""
    def boom(*args, **kwargs):
        raise AssertionError("the loader opened the file's tensors before refusing it")

    monkeypatch.setattr(loading, "TensorSource", boom)


def _refused(path, *, allow_pickle=False) -> str:
    m = ModelManager(None, "cpu", torch.float32, allow_pickle=allow_pickle)
    with pytest.raises(ModelError) as info:
        m.pipeline_for(sniff(path))
    assert m.pipe is None and m.load_count == 0
    message = str(info.value)
    assert "\n" not in message and len(message) < 300
    return message


def test_sdxl_is_refused_by_name(tmp_path, no_heavy_load):
    assert "SDXL" in _refused(_header_only_file(tmp_path / "ponyXL.safetensors", SDXL))


def test_sd2_is_refused_by_name(tmp_path, no_heavy_load):
    assert "SD2" in _refused(_header_only_file(tmp_path / "v2-1_768.safetensors", SD2))


def test_inpainting_is_refused(tmp_path, tiny_checkpoint, no_heavy_load):
    sd = load_file(str(tiny_checkpoint))
    conv = sd["model.diffusion_model.input_blocks.0.0.weight"]
    sd["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(conv.shape[0], 9, 3, 3)  # 4 latent + 4 + mask
    path = tmp_path / "tiny-inpainting.safetensors"
    save_file(sd, str(path))
    assert "inpainting" in _refused(path)


@pytest.mark.parametrize("sub, name, word", [("loras", KOHYA_LORA, "LoRA"), ("vae", TINY_VAE, "VAE"),
                                              ("embeddings", EMBEDDING, "embedding")])
def test_wrong_kind_picked_as_checkpoint(models_root, sub, name, word, no_heavy_load):
    assert word in _refused(models_root / sub / name)


def test_truncated_file(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    path = tmp_path / "half-downloaded.safetensors"
    path.write_bytes(data[: len(data) // 2])
    message = _refused(path)
    assert "download" in message.lower()


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "page.safetensors"
    path.write_text("<html>404 Not Found</html>")
    assert "download" in _refused(path).lower()


def test_missing_file(tmp_path, tiny_checkpoint):
    path = tmp_path / "gone.safetensors"
    path.write_bytes(tiny_checkpoint.read_bytes())
    mf = sniff(path)
    path.unlink()
    with pytest.raises(ModelError, match="missing"):
        ModelManager(None, "cpu", torch.float32).pipeline_for(mf)


def test_sd2_inside_a_pickle_is_refused_from_its_shapes(tmp_path):
    path = tmp_path / "v2.ckpt"
    torch.save({"state_dict": {k: torch.zeros(s, dtype=torch.float16) for k, s in SD2.items()}}, str(path))
    assert "SD2" in _refused(path, allow_pickle=True)


def test_failure_leaves_a_working_manager(tmp_path, tiny_checkpoint):
    m = ModelManager(None, "cpu", torch.float32)
    with pytest.raises(ModelError):
        m.pipeline_for(sniff(_header_only_file(tmp_path / "xl.safetensors", SDXL)))
    assert m.pipeline_for(sniff(tiny_checkpoint)).unet is not None
