"""PromptEncoder on a tiny real CLIPTextModel: diffusers parity, chunks, weights, embeddings, clip skip, cache."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from generation_support import clip_tokenizer
from safetensors.torch import save_file

from picotui.engine.errors import ModelError, RequestError
from picotui.engine.prompting.conditioning import PromptEncoder
from picotui.engine.prompting.embeddings import load_embedding, vector_count
from picotui.engine.prompting.tokens import count_tokens

HIDDEN = 32


@pytest.fixture(scope="module")
def tokenizer():
    return clip_tokenizer()


@pytest.fixture(scope="module")
def text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    config = CLIPTextConfig(hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=5, num_attention_heads=4,
                            vocab_size=49408, max_position_embeddings=77, projection_dim=HIDDEN)
    model = CLIPTextModel(config).eval()
    # A freshly initialised final LayerNorm (bias 0) makes every output row average to ~0, so A1111's
    # mean-preserving rescale would divide noise by noise. A trained CLIP's bias is not 0: give it one.
    with torch.no_grad():
        model.final_layer_norm.bias.normal_(0.2, 0.5)
    return model


@pytest.fixture()
def encoder(tokenizer, text_encoder):
    return PromptEncoder(tokenizer, text_encoder, {})


def ids_of(tokenizer, word):
    return tokenizer(word, add_special_tokens=False)["input_ids"]


@pytest.fixture(scope="module")
def pipeline(tokenizer, text_encoder):
    """A real StableDiffusionPipeline around the tiny text encoder, for its own encode_prompt."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=HIDDEN,
                                attention_head_dim=8, norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=(32,), down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), latent_channels=4, norm_num_groups=32)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


# ---- parity with diffusers ------------------------------------------------------------------------

@pytest.mark.parametrize("prompt,negative", [("a photo of a cat", "blurry, low quality"), ("a corgi", ""),
                                             ("Hello WORLD, it's a café", "x")])
def test_plain_prompts_equal_diffusers_encode_prompt(pipeline, encoder, prompt, negative):
    expected, expected_neg = pipeline.encode_prompt(prompt, "cpu", 1, True, negative_prompt=negative)
    cond, uncond = encoder.encode(prompt, negative, 1)
    assert cond.shape == expected.shape == (1, 77, HIDDEN)
    assert torch.allclose(cond, expected, atol=1e-6, rtol=0)
    assert torch.allclose(uncond, expected_neg, atol=1e-6, rtol=0)


def test_first_chunk_of_a_long_prompt_equals_diffusers_truncation(pipeline, encoder):
    prompt = "a cat " * 60  # 120 tokens, no commas: the first chunk is the first 75 tokens
    expected, _ = pipeline.encode_prompt(prompt, "cpu", 1, False)
    cond, _ = encoder.encode(prompt, "", 1)
    assert torch.allclose(cond[:, :77], expected, atol=1e-6, rtol=0)


# ---- shapes -----------------------------------------------------------------------------------------

def test_long_prompt_is_encoded_in_chunks_and_negative_is_padded(encoder):
    cond, uncond = encoder.encode("cat " * 100, "blurry", 1)
    assert cond.shape == uncond.shape == (1, 154, HIDDEN)
    empty, _ = encoder.encode("", "", 1)
    blurry, _ = encoder.encode("blurry", "", 1)
    assert torch.allclose(uncond[:, :77], blurry[:, :77], atol=1e-6)
    assert torch.allclose(uncond[:, 77:], empty, atol=1e-6)  # padded with the empty prompt's encoding


def test_break_makes_a_chunk_and_each_chunk_stands_alone(encoder):
    cond, uncond = encoder.encode("a cat BREAK a dog", "", 1)
    assert cond.shape == uncond.shape == (1, 154, HIDDEN)
    cat, _ = encoder.encode("a cat", "", 1)
    dog, _ = encoder.encode("a dog", "", 1)
    assert torch.allclose(cond, torch.cat([cat, dog], dim=1), atol=1e-6)


def test_negative_longer_than_prompt(encoder):
    cond, uncond = encoder.encode("cat", "a BREAK b BREAK c", 1)
    assert cond.shape == uncond.shape == (1, 231, HIDDEN)


# ---- weights ----------------------------------------------------------------------------------------

def test_weight_scales_the_word_rows_and_keeps_the_mean(encoder):
    plain, _ = encoder.encode("a cat photo", "", 1)
    weighted, _ = encoder.encode("a (cat:1.5) photo", "", 1)
    factor = plain.mean() / (plain * torch.tensor([1.0, 1.0, 1.5] + [1.0] * 74).view(1, 77, 1)).mean()
    assert torch.allclose(weighted.mean(), plain.mean(), atol=1e-6)
    assert torch.allclose(weighted[0, 2], plain[0, 2] * 1.5 * factor, atol=1e-5)  # "cat" is row 2
    assert torch.allclose(weighted[0, 1], plain[0, 1] * factor, atol=1e-5)
    # relative to its neighbours, the word grew by exactly 1.5
    assert torch.allclose(weighted[0, 2] / weighted[0, 1], plain[0, 2] / plain[0, 1] * 1.5, rtol=1e-4)


def test_down_weighting_shrinks_the_word_relative_to_the_rest(encoder):
    plain, _ = encoder.encode("a cat photo", "", 1)
    weaker, _ = encoder.encode("a [cat] photo", "", 1)
    ratio_plain = plain[0, 2].norm() / plain[0, 3].norm()
    ratio_weaker = weaker[0, 2].norm() / weaker[0, 3].norm()
    assert torch.allclose(ratio_weaker, ratio_plain / 1.1, rtol=1e-4)


def test_half_precision_encoder_matches_full_precision(tokenizer, text_encoder):
    import copy

    full = PromptEncoder(tokenizer, text_encoder, {}).encode("a (cat:1.3) [photo]", "ugly", 2)
    half = PromptEncoder(tokenizer, copy.deepcopy(text_encoder).half(), {}).encode("a (cat:1.3) [photo]", "ugly", 2)
    assert half[0].dtype == half[1].dtype == torch.float16
    for h, f in zip(half, full):
        assert torch.allclose(h.float(), f, atol=2e-2)


def test_weights_that_zero_a_chunk_stay_finite(encoder):
    cond, _ = encoder.encode("(a cat photo:0)", "", 1)
    assert torch.isfinite(cond).all()


@pytest.mark.parametrize("prompt", ["(cat:" + "9" * 400 + ")", "(cat:1" + "9" * 39 + ")", "(cat:100.5)",
                                    "(cat:-101)", "((cat:0):" + "9" * 400 + ")", "(" * 49 + "cat"])
def test_weight_outside_the_usable_range_is_a_request_error(encoder, prompt):
    # 1e39 is a finite Python float but inf in float32: it used to give inf conditioning and a NaN image.
    with pytest.raises(RequestError, match=r"outside the usable range -100 to 100") as err:
        encoder.encode(prompt, "", 1)
    assert "'cat'" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("prompt", ["(cat:100)", "(cat:-100)", "(cat:0)", "(" * 48 + "cat"])
def test_weights_at_the_limits_encode_finite(encoder, prompt):
    cond, _ = encoder.encode(prompt, "", 1)
    assert torch.isfinite(cond).all()


def test_weights_that_overflow_half_precision_are_refused_not_encoded_as_inf():
    from picotui.engine.prompting.conditioning import _emphasis

    z = torch.full((1, 77, 4), 1000.0, dtype=torch.float16)
    weights = torch.full((1, 77), -100.0)  # -1e5: past float16's 65504 (the rescale is skipped: sign flip)
    with pytest.raises(RequestError, match="weights closer to 1"):
        _emphasis(z, weights)
    assert torch.isfinite(_emphasis(z, torch.full((1, 77), 2.0))).all()


def test_lora_tags_are_not_encoded_as_words(encoder):
    tagged, tagged_negative = encoder.encode("a cat <lora:style:0.8>", "<hypernet:x:1>", 1)
    plain, empty = encoder.encode("a cat ", "", 1)
    assert torch.equal(tagged, plain)
    assert torch.equal(tagged_negative, empty)  # a tag in the negative prompt is removed, not encoded


# ---- clip skip --------------------------------------------------------------------------------------

def test_clip_skip_2_is_the_normed_penultimate_layer(encoder, text_encoder, tokenizer):
    cond1, _ = encoder.encode("a photo of a cat", "", 1)
    cond2, _ = encoder.encode("a photo of a cat", "", 2)
    assert not torch.allclose(cond1, cond2)
    ids = tokenizer("a photo of a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        out = text_encoder(ids, output_hidden_states=True)
        by_hand = text_encoder.final_layer_norm(out.hidden_states[-2])
    assert torch.allclose(cond2, by_hand, atol=1e-6)
    assert torch.allclose(cond1, out.last_hidden_state, atol=1e-6)


@pytest.mark.parametrize("bad", [0, 5, "2", 1.5, True])
def test_clip_skip_out_of_range(encoder, bad):
    with pytest.raises(RequestError):
        encoder.encode("cat", "", bad)


# ---- textual inversion ----------------------------------------------------------------------------

def test_embedding_is_inserted_as_its_vectors(tmp_path, tokenizer, text_encoder):
    # An embedding made of the token vectors of "red dog" must encode exactly like "red dog".
    table = text_encoder.get_input_embeddings().weight.detach()
    vectors = table[ids_of(tokenizer, "red") + ids_of(tokenizer, "dog")].clone()
    path = tmp_path / "tinyembed.safetensors"
    save_file({"emb_params": vectors}, str(path))
    enc = PromptEncoder(tokenizer, text_encoder, {"tinyembed": path})
    with_embedding, _ = enc.encode("a TinyEmbed photo", "", 1)
    spelled_out, _ = enc.encode("a red dog photo", "", 1)
    assert torch.allclose(with_embedding, spelled_out, atol=1e-6)
    weighted, _ = enc.encode("a (tinyembed:1.3) photo", "", 1)
    assert torch.allclose(weighted, enc.encode("a (red dog:1.3) photo", "", 1)[0], atol=1e-6)
    assert [len(c.ids) for c in enc.chunks("a tinyembed photo")] == [4]  # two slots for two vectors
    assert count_tokens("a tinyembed photo", {"tinyembed": vector_count(path)}).tokens == 4


def test_embedding_changes_the_conditioning(tmp_path, tokenizer, text_encoder):
    path = tmp_path / "style.safetensors"
    save_file({"style": torch.randn(3, HIDDEN)}, str(path))
    enc = PromptEncoder(tokenizer, text_encoder, {"style": path})
    assert not torch.allclose(enc.encode("a style cat", "", 1)[0], PromptEncoder(
        tokenizer, text_encoder, {}).encode("a style cat", "", 1)[0])
    assert [len(c.ids) for c in enc.chunks("a style cat")] == [5]


def a1111_pt(path, vectors):
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.nn.Parameter(vectors)},
                "name": path.stem, "step": 100}, str(path))
    return path


def test_pt_embedding_needs_the_pickle_opt_in(tmp_path, tokenizer, text_encoder):
    path = a1111_pt(tmp_path / "oldstyle.pt", torch.randn(2, HIDDEN))
    with pytest.raises(ModelError, match="allow-pickle"):
        PromptEncoder(tokenizer, text_encoder, {"oldstyle": path}).encode("oldstyle cat", "", 1)
    allowed = PromptEncoder(tokenizer, text_encoder, {"oldstyle": path}, allow_pickle=True)
    assert allowed.encode("oldstyle cat", "", 1)[0].shape == (1, 77, HIDDEN)
    assert [len(c.ids) for c in allowed.chunks("oldstyle cat")] == [3]


def test_pt_embedding_with_a_parameter_dict_loads(tmp_path, tokenizer, text_encoder):
    # The original textual-inversion trainer pickled string_to_param as an nn.ParameterDict, which
    # weights_only refuses unless that class is allowed; A1111 reads its `_parameters`.
    table = text_encoder.get_input_embeddings().weight.detach()
    vectors = table[ids_of(tokenizer, "red") + ids_of(tokenizer, "dog")].clone()
    path = tmp_path / "ldmstyle.pt"
    torch.save({"string_to_token": {"*": torch.tensor(265)},
                "string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(vectors)})}, str(path))
    assert torch.equal(load_embedding(path, HIDDEN, allow_pickle=True), vectors)
    enc = PromptEncoder(tokenizer, text_encoder, {"ldmstyle": path}, allow_pickle=True)
    assert torch.allclose(enc.encode("a ldmstyle photo", "", 1)[0], enc.encode("a red dog photo", "", 1)[0], atol=1e-6)
    with pytest.raises(ModelError, match="allow-pickle"):
        load_embedding(path, HIDDEN)


def test_the_parameter_dict_allowance_does_not_outlive_the_load(tmp_path):
    path = tmp_path / "module.pt"
    torch.save({"string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.randn(1, HIDDEN))})},
               str(path))
    load_embedding(path, HIDDEN, allow_pickle=True)
    with pytest.raises(Exception, match="ParameterDict"):  # plain weights_only loads still refuse it
        torch.load(str(path), weights_only=True)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_pt_embedding_cannot_run_code_even_when_allowed(tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"string_to_param": {"*": _Exploit(marker)}}, protocol=2))
    with pytest.raises(ModelError, match="safely"):
        load_embedding(path, HIDDEN, allow_pickle=True)
    assert not os.path.exists(marker)


def test_code_inside_an_allowed_parameter_dict_still_cannot_run(tmp_path):
    marker = str(tmp_path / "pwned")
    params = torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.randn(1, HIDDEN))})
    params.__dict__["payload"] = _Exploit(marker)  # pickled with the module's state, rebuilt by __setstate__
    path = tmp_path / "evil_dict.pt"
    path.write_bytes(pickle.dumps({"string_to_param": params}, protocol=2))
    with pytest.raises(ModelError, match="safely"):
        load_embedding(path, HIDDEN, allow_pickle=True)
    assert not os.path.exists(marker)


@pytest.mark.parametrize("tensors,reason", [
    ({"emb_params": torch.randn(2, 768)}, "SD1.x"),
    ({"clip_l": torch.randn(2, HIDDEN), "clip_g": torch.randn(2, 1280)}, "SDXL"),
    ({"a": torch.randn(2, HIDDEN), "b": torch.randn(2, HIDDEN)}, "2 tensors"),
    ({"emb_params": torch.randn(80, HIDDEN)}, "at most 75"),
])
def test_unusable_embeddings_are_refused_in_one_line(tmp_path, tensors, reason):
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(ModelError, match=reason) as err:
        load_embedding(path, HIDDEN)
    assert "\n" not in str(err.value)


def test_damaged_embedding_file(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelError, match="download it again"):
        load_embedding(path, HIDDEN)
    assert vector_count(path) is None


def test_one_dimensional_embedding_is_one_vector(tmp_path):
    path = tmp_path / "single.safetensors"
    save_file({"v": torch.randn(HIDDEN)}, str(path))
    assert load_embedding(path, HIDDEN).shape == (1, HIDDEN)
    assert vector_count(path) == 1


def test_unused_broken_embedding_does_not_matter(tmp_path, tokenizer, text_encoder):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"junk")
    enc = PromptEncoder(tokenizer, text_encoder, {"broken": path})
    assert enc.encode("a cat", "", 1)[0].shape == (1, 77, HIDDEN)
    with pytest.raises(ModelError):
        enc.encode("a broken cat", "", 1)


# ---- cache ------------------------------------------------------------------------------------------

def test_unchanged_prompt_is_not_reencoded(encoder, text_encoder):
    calls = []
    hook = text_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        first = encoder.encode("a cached cat", "blurry", 1)
        again = encoder.encode("a cached cat", "blurry", 1)
        encoder.encode("a cached cat", "blurry", 2)
    finally:
        hook.remove()
    assert again is first and len(calls) == 2


def test_cache_misses_when_the_text_encoder_weights_change(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    te = CLIPTextModel(CLIPTextConfig(hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2,
                                      num_attention_heads=4, vocab_size=49408)).eval()
    enc = PromptEncoder(tokenizer, te, {})
    before, _ = enc.encode("a cat", "", 1)
    with torch.no_grad():  # what fusing a LoRA into the text encoder does
        getattr(te, "text_model", te).encoder.layers[0].self_attn.q_proj.weight.add_(0.5)
    after, _ = enc.encode("a cat", "", 1)
    assert not torch.allclose(before, after)


def test_cache_misses_when_a_peft_adapter_is_added_or_rescaled(tokenizer):
    from peft import LoraConfig, inject_adapter_in_model
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(1)
    te = CLIPTextModel(CLIPTextConfig(hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2,
                                      num_attention_heads=4, vocab_size=49408)).eval()
    enc = PromptEncoder(tokenizer, te, {})
    plain, _ = enc.encode("a cat", "", 1)
    inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                       init_lora_weights=False), te)
    adapted, _ = enc.encode("a cat", "", 1)
    assert not torch.allclose(plain, adapted)
    for module in te.modules():
        if isinstance(getattr(module, "scaling", None), dict):
            module.scaling["default"] = 0.0  # what set_adapters(weights=0) amounts to
    rescaled, _ = enc.encode("a cat", "", 1)
    assert torch.allclose(rescaled, plain, atol=1e-6)


def test_the_shared_fixture_embedding_loads_as_users_files_do(models_root):
    from conftest import EMBEDDING, EMBEDDING_VECTORS

    path = models_root / "embeddings" / EMBEDDING
    assert vector_count(path) == EMBEDDING_VECTORS
    assert load_embedding(path, HIDDEN).shape == (EMBEDDING_VECTORS, HIDDEN)
