"""Files people pick by mistake are refused with one line that says what they are, before any heavy load."""

from __future__ import annotations

import pytest
import torch
from conftest import EMBEDDING, KOHYA_LORA, TINY_VAE
from library_support import raw_safetensors
from library_support import write as _header_only_file
from safetensors.torch import load_file, save_file

from picotui.engine.errors import ModelError
from picotui.engine.models import loading
from picotui.engine.models.library import sniff
from picotui.engine.models.loading import ModelManager

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


ENTRY = "model.diffusion_model.input_blocks.0.0.weight"
MALFORMED_HEADERS = {  # what each used to raise inside the loader before the header was validated there
    "a list, not an object": ([1, 2, 3], b""),  # AttributeError: 'list' object has no attribute 'items'
    "entry without a shape": ({ENTRY: {"dtype": "F16", "data_offsets": [0, 8]}}, b"\0" * 8),  # KeyError
    "shape is a number": ({ENTRY: {"dtype": "F16", "shape": 4, "data_offsets": [0, 8]}}, b"\0" * 8),  # TypeError
    "entry is a string": ({ENTRY: "F16"}, b""),  # TypeError: string indices must be integers
    "lies about sizes": ({ENTRY: {"dtype": "F16", "shape": [320, 4, 3, 3], "data_offsets": [0, 16]}}, b"\0" * 16),
}


@pytest.mark.parametrize("case", list(MALFORMED_HEADERS))
def test_a_checkpoint_replaced_by_a_malformed_file_after_the_scan_is_one_clear_line(tmp_path, tiny_checkpoint,
                                                                                  case):
    path = tmp_path / "checkpoints" / "swapped.safetensors"
    path.parent.mkdir()
    path.write_bytes(tiny_checkpoint.read_bytes())
    mf = sniff(path)  # the library's scan: a fine SD1.x checkpoint
    assert mf.usable and mf.kind == "checkpoint"
    header, data = MALFORMED_HEADERS[case]
    raw_safetensors(path, header, data)  # replaced (a re-download that went wrong) before the job loads it
    m = ModelManager(None, "cpu", torch.float32)
    with pytest.raises(ModelError) as info:
        m.pipeline_for(mf)
    message = str(info.value)
    assert "\n" not in message and "swapped.safetensors" in message and "download it again" in message
    assert m.pipe is None
    path.write_bytes(tiny_checkpoint.read_bytes())  # fixed: the same manager loads it
    assert m.pipeline_for(sniff(path)).unet is not None


@pytest.mark.parametrize("slot", ["vae", "loras"])
def test_a_vae_or_lora_replaced_by_a_malformed_file_after_the_scan_is_one_clear_line(tmp_path, models_root,
                                                                                   tiny_checkpoint, slot):
    source = models_root / slot / (TINY_VAE if slot == "vae" else KOHYA_LORA)
    path = tmp_path / slot / source.name
    path.parent.mkdir()
    path.write_bytes(source.read_bytes())
    mf = sniff(path)
    assert mf.usable
    raw_safetensors(path, {ENTRY: {"dtype": "F16", "data_offsets": [0, 8]}}, b"\0" * 8)
    m = ModelManager(None, "cpu", torch.float32)
    m.pipeline_for(sniff(tiny_checkpoint))
    with pytest.raises(ModelError) as info:
        if slot == "vae":
            m.pipeline_for(m.checkpoint, mf, [])
        else:
            m.pipeline_for(m.checkpoint, None, [(mf, 1.0)])
    message = str(info.value)
    assert "\n" not in message and source.name in message and "download it again" in message
    assert "SD1.5" not in message  # not "check that it was made for SD1.5": the file is damaged
    assert m.pipeline_for(m.checkpoint, None, []).unet is not None
