"""Token counting without torch: the CLIP tokenizer, A1111's chunking rules, and the counter the UI calls."""

from __future__ import annotations

import subprocess
import sys

import pytest
from generation_support import clip_tokenizer
from hypothesis import given, settings
from hypothesis import strategies as st

from picotui.engine.prompting.prompts import parse_prompt_attention
from picotui.engine.prompting.tokens import (
    CHUNK_TOKENS,
    COMMA_ID,
    END_ID,
    START_ID,
    EmbeddingIndex,
    TokenCount,
    build_chunks,
    count_tokens,
    find_embeddings,
    tokenize,
)

CAT = tokenize(["cat"])[0]
DOG = tokenize(["dog"])[0]


@pytest.fixture(scope="module")
def hf_tokenizer():
    return clip_tokenizer()


def chunks_of(text, vectors=None):
    index = EmbeddingIndex(vectors, tokenize, vectors.__getitem__) if vectors else None
    return build_chunks(parse_prompt_attention(text), tokenize, index)


# ---- the tokenizer --------------------------------------------------------------------------------

def test_known_token_ids():
    assert tokenize(["a photo of a cat"])[0] == [320, 1125, 539, 320, 2368]
    assert chunks_of("a photo of a cat")[0].padded()[0][:7] == [49406, 320, 1125, 539, 320, 2368, 49407]


SAMPLES = ["a photo of a cat", "Hello   WORLD!! it's <|endoftext|> naïve café 😀 日本語 x1234 don't",
           "", "   ", "bad-hands-5, EasyNegative, (masterpiece:1.2)", "ﬁne\u00a0line\ttab", "a" * 300]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_ids_as_transformers_clip_tokenizer(hf_tokenizer, text):
    assert tokenize([text])[0] == hf_tokenizer(text, add_special_tokens=False)["input_ids"]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_same_ids_as_transformers_on_any_text(hf_tokenizer, text):
    assert tokenize([text])[0] == hf_tokenizer(text, add_special_tokens=False)["input_ids"]


def test_token_counting_does_not_import_torch():
    code = ("import sys; from picotui.engine.prompting.tokens import count_tokens; count_tokens('a (cat:1.2)'); "
            "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---- chunking rules ---------------------------------------------------------------------------------

def test_chunk_is_wrapped_and_padded_with_the_end_token():
    ids, weights = chunks_of("(cat:1.5)")[0].padded()
    assert len(ids) == 77 and ids[0] == START_ID and ids[1:2] == CAT and set(ids[2:]) == {END_ID}
    assert weights[:3] == [1.0, 1.5, 1.0] and len(weights) == 77


def test_75_tokens_fit_one_chunk_76_need_two():
    assert [len(c.ids) for c in chunks_of("cat " * 75)] == [75]
    assert [len(c.ids) for c in chunks_of("cat " * 76)] == [75, 1]


def test_break_starts_a_new_chunk():
    assert [c.ids for c in chunks_of("cat BREAK dog")] == [CAT, DOG]


def test_break_right_after_a_full_chunk_adds_no_empty_chunk():
    assert [len(c.ids) for c in chunks_of("cat " * 75 + "BREAK dog")] == [75, 1]


def test_words_after_a_nearby_comma_move_to_the_next_chunk():
    chunks = chunks_of("cat " * 70 + ", " + "dog " * 10)
    assert [len(c.ids) for c in chunks] == [71, 10]
    assert chunks[0].ids[-1] == COMMA_ID and chunks[1].ids == DOG * 10


def test_a_comma_further_back_than_20_tokens_does_not_move_words():
    assert [len(c.ids) for c in chunks_of("cat " * 50 + ", " + "dog " * 30)] == [75, 6]


def test_moved_words_keep_their_weights():
    chunks = chunks_of("cat " * 70 + ", (dog:1.3) " + "dog " * 9)
    assert chunks[1].weights[0] == pytest.approx(1.3) and chunks[1].weights[1:] == [1.0] * 9


def test_embedding_takes_its_vector_count_in_slots_and_weights_apply():
    (chunk,) = chunks_of("a (tinyembed:1.2) cat", {"tinyembed": 3})
    assert len(chunk.ids) == 5 and chunk.fixes == [(1, "tinyembed")]
    assert chunk.weights == [1.0, pytest.approx(1.2), pytest.approx(1.2), pytest.approx(1.2), 1.0]


def test_embedding_never_straddles_chunks():
    chunks = chunks_of("cat " * 74 + "tinyembed", {"tinyembed": 2})
    assert [len(c.ids) for c in chunks] == [74, 2] and chunks[1].fixes == [(0, "tinyembed")]


def test_embedding_names_match_by_tokens_case_insensitively_longest_first():
    vectors = {"bad-hands-5": 4, "bad": 1}
    (chunk,) = chunks_of("Bad-Hands-5, bad", vectors)
    assert chunk.fixes == [(0, "bad-hands-5"), (5, "bad")]
    assert len(chunk.ids) == 4 + 1 + 1


def test_embedding_moved_by_the_comma_rule_keeps_its_vectors():
    chunks = chunks_of("cat " * 70 + ", dog tinyembed " + "dog " * 3, {"tinyembed": 2})
    assert [len(c.ids) for c in chunks] == [71, 6]
    assert chunks[0].fixes == [] and chunks[1].fixes == [(1, "tinyembed")]


# ---- the counter -------------------------------------------------------------------------------------

def test_count_plain_prompt():
    assert count_tokens("a photo of a cat") == TokenCount(5, 1, 5)
    assert count_tokens("") == TokenCount(0, 1, 0)


def test_count_ignores_weight_syntax_and_lora_tags():
    assert count_tokens("a ((photo)) of [a] (cat:1.3) <lora:style:0.8>") == count_tokens("a photo of a cat")


def test_count_long_prompt_break_and_embeddings():
    long = count_tokens("cat " * 100)
    assert (long.tokens, long.chunks, long.limit) == (100, 2, 2 * CHUNK_TOKENS)
    assert count_tokens("cat BREAK dog") == TokenCount(2, 2, 1)
    assert count_tokens("a tinyembed cat", {"tinyembed": 8}) == TokenCount(10, 1, 10)
    assert count_tokens("a tinyembed cat") == TokenCount(len(tokenize(["a tinyembed cat"])[0]), 1,
                                                         len(tokenize(["a tinyembed cat"])[0]))


def test_count_label_is_a1111_style():
    assert count_tokens("cat " * 80).label == "80/150"
    assert count_tokens("").label == "0/75"


def test_count_with_the_library_table_of_vector_counts(models_root):
    from conftest import EMBEDDING, EMBEDDING_VECTORS

    from picotui.engine.models.library import Library
    from picotui.engine.prompting.embeddings import vector_counts

    table = vector_counts(Library(models_root, models_root / ".cache").files("embedding"))
    stem = EMBEDDING.rsplit(".", 1)[0]
    assert table == {stem: EMBEDDING_VECTORS}
    assert count_tokens(f"a {stem} cat", table).tokens == 2 + EMBEDDING_VECTORS


def test_find_embeddings_matches_as_the_encoder_does():
    names = ["bad-hands-5", "bad", "style"]
    assert find_embeddings("(Bad-Hands-5:1.2), a cat <lora:style:1>", names) == ["bad-hands-5"]
    assert find_embeddings("bad BREAK [style]", names) == ["bad", "style"]
    assert find_embeddings("a cat", names) == [] and find_embeddings("bad", []) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.dictionaries(st.text(max_size=12), st.integers(-5, 100), max_size=3))
def test_count_never_raises(text, vectors):
    count = count_tokens(text, vectors)
    assert count.chunks >= 1 and 0 <= count.last_chunk <= CHUNK_TOKENS and count.tokens >= 0
