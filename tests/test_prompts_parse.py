"""A1111 prompt syntax: attention weights, BREAK, and <lora:...> tags (pure Python, no model)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picotui.engine.errors import RequestError
from picotui.engine.prompting.prompts import (
    PromptTags,
    extract_extra_networks,
    extract_lora_tags,
    extract_prompt_tags,
    parse_prompt_attention,
    strip_extra_networks,
)
from picotui.engine.request import LoraSpec


def weights(text):
    return [(t, pytest.approx(w)) for t, w in parse_prompt_attention(text)]


# ---- one test per rule ---------------------------------------------------------------------------

def test_round_brackets_multiply_by_1_1():
    assert weights("a (cat) b") == [("a ", 1.0), ("cat", 1.1), (" b", 1.0)]


def test_nested_round_brackets_multiply():
    assert weights("((cat))") == [("cat", 1.21)]
    assert weights("(((cat)))") == [("cat", 1.331)]


def test_square_brackets_divide_by_1_1():
    assert weights("[cat]") == [("cat", 1 / 1.1)]
    assert weights("[[cat]]") == [("cat", 1 / 1.21)]


def test_explicit_weight():
    assert weights("(cat:1.4)") == [("cat", 1.4)]
    assert weights("(cat: 0.5 )") == [("cat", 0.5)]
    assert weights("(cat:-1)") == [("cat", -1.0)]


def test_explicit_weight_nests_with_brackets():
    assert weights("((cat):2)") == [("cat", 2.2)]
    assert weights("((cat:2))") == [("cat", 2.2)]
    assert weights("a (b [c] (d:2)) e") == [("a ", 1.0), ("b ", 1.1), ("c", 1.0), (" ", 1.1), ("d", 2.2),
                                            (" e", 1.0)]


def test_escaped_brackets_are_literal():
    assert weights(r"\(cat\)") == [("(cat)", 1.0)]
    assert weights(r"\[cat\]") == [("[cat]", 1.0)]
    assert weights(r"(a \(b\))") == [("a (b)", 1.1)]
    assert weights("a\\\\b") == [("a\\b", 1.0)]


def test_lone_backslash_is_dropped_as_in_a1111():
    assert weights("a\\b") == [("ab", 1.0)]


def test_unclosed_bracket_applies_to_the_rest():
    assert weights("a (cat") == [("a ", 1.0), ("cat", 1.1)]
    assert weights("a [cat") == [("a ", 1.0), ("cat", 1 / 1.1)]
    assert weights("((a (b") == [("a ", 1.21), ("b", 1.331)]


def test_stray_closing_bracket_is_literal():
    assert weights("cat) dog]") == [("cat) dog]", 1.0)]
    assert weights("cat:1.2) dog") == [("cat:1.2) dog", 1.0)]


def test_colon_outside_a_weight_is_text():
    assert weights("time: 12:30") == [("time: 12:30", 1.0)]
    assert weights("(a:b)") == [("a:b", 1.1)]


def test_weight_that_is_not_a_number_never_raises():
    # A1111 raises here; we keep the text and close the bracket as a plain "(".
    assert weights("(cat:.)") == [("cat:.", 1.1)]
    assert weights("(cat:1.2.3)") == [("cat:1.2.3", 1.1)]


def test_break_is_a_marker():
    assert parse_prompt_attention("a cat BREAK a dog") == [("a cat", 1.0), ("BREAK", -1.0), ("a dog", 1.0)]


def test_break_must_be_an_upper_case_word():
    assert parse_prompt_attention("a break, BREAKFAST") == [("a break, BREAKFAST", 1.0)]


def test_break_inside_brackets_still_breaks():
    assert weights("(a BREAK b)") == [("a", 1.1), ("BREAK", -1.0), ("b", 1.1)]


def test_adjacent_equal_weights_are_merged():
    assert weights("(a)(b) c") == [("ab", 1.1), (" c", 1.0)]
    assert weights("a\\(b") == [("a(b", 1.0)]


def test_empty_prompt():
    assert parse_prompt_attention("") == [("", 1.0)]
    assert parse_prompt_attention("()") == [("", 1.0)]


# ---- <lora:...> tags -------------------------------------------------------------------------------

def test_lora_tag_with_weight_is_extracted():
    text, loras = extract_lora_tags("a cat <lora:tinyStyle:0.8>, sitting")
    assert text == "a cat , sitting"
    assert loras == [LoraSpec("tinyStyle", 0.8)]


def test_lora_tag_without_weight_means_one():
    assert extract_lora_tags("<lora:style>")[1] == [LoraSpec("style", 1.0)]


def test_several_lora_tags_in_order_and_lyco_alias():
    _, loras = extract_lora_tags("<lora:a:0.5> x <LORA:b:1.5> <lyco:c:0.2>")
    assert loras == [LoraSpec("a", 0.5), LoraSpec("b", 1.5), LoraSpec("c", 0.2)]


def test_separate_te_and_unet_weights_use_the_first():
    assert extract_lora_tags("<lora:a:0.5:0.9>")[1] == [LoraSpec("a", 0.5)]


@pytest.mark.parametrize("tag", ["<lora:a:2.5>", "<lora:a:-1>", "<lora:a:strong>", "<lora: :0.5>",
                                 "<lora:a:nan>", "<lora:a:inf>"])
def test_bad_lora_tags_are_rejected_with_one_line(tag):
    with pytest.raises(RequestError) as err:
        extract_lora_tags(f"cat {tag}")
    message = str(err.value)
    assert "\n" not in message and tag.split(":")[0] in message


def test_other_extra_network_tags_are_removed_and_reported():
    found = extract_extra_networks("cat <hypernet:anime:1> dog")
    assert found.text == "cat  dog"
    assert found.loras == []
    assert found.ignored == ["<hypernet:anime:1>"]


def test_ignored_tags_become_a_notice_that_names_them():
    tags = extract_prompt_tags("cat <hypernet:anime:1> <lora:style:0.5> <hypernet:x>", "")
    assert tags.prompt == "cat   " and tags.loras == [LoraSpec("style", 0.5)]
    (notice,) = tags.notices
    assert "<hypernet:anime:1>, <hypernet:x>" in notice and "LoRA tags only" in notice and "\n" not in notice


def test_a_bad_tag_in_the_negative_prompt_is_removed_and_reported_not_fatal():
    tags = extract_prompt_tags("cat <lora:style:0.5>", "blurry <lora:a:strong> <lora: :9>, ugly")
    assert tags.negative == "blurry  , ugly" and tags.loras == [LoraSpec("style", 0.5)]
    (notice,) = tags.notices
    assert "<lora:a:strong>" in notice and "negative prompt" in notice
    with pytest.raises(RequestError):  # in the prompt, where it would be applied, it is still an error
        extract_prompt_tags("cat <lora:a:strong>", "")


def test_no_tags_no_notices():
    assert extract_prompt_tags("a (cat:1.2)", "blurry") == PromptTags("a (cat:1.2)", "blurry", [], [])


def test_many_long_tags_make_a_short_notice():
    tags = extract_prompt_tags("".join(f"<hypernet:{'x' * 200}{i}>" for i in range(10)), "")
    assert len(tags.notices[0]) < 300 and "and 7 more" in tags.notices[0]


A1111_TAG = re.compile(r"<(\w+):([^>]+)>")  # A1111's extra-network regex, searched the plain (quadratic) way


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["<", ">", ":", "a", "lora", " ", "1", "<a:", "<lora:x:1>"]), max_size=25).map("".join))
def test_tags_are_found_as_a1111_finds_them(text):
    clean, found = strip_extra_networks(text)
    assert clean == A1111_TAG.sub("", text)
    assert [tag for _, _, tag in found] == [m.group(0) for m in A1111_TAG.finditer(text)]


def test_text_without_tags_is_unchanged():
    assert extract_lora_tags("a <b> c: (d:1.2)") == ("a <b> c: (d:1.2)", [])


# ---- properties ---------------------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.text())
def test_parse_never_raises(text):
    parsed = parse_prompt_attention(text)
    assert parsed and all(isinstance(t, str) and isinstance(w, float) for t, w in parsed)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="()[]\\:.0123456789 abBREAK", max_size=40))
def test_parse_never_raises_on_syntax_soup(text):
    parse_prompt_attention(text)
    extract_extra_networks(text.replace(":", ""))  # tags need <...>; never raises without a lora tag


PLAIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ,.!?-'\"/", min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(PLAIN)
def test_plain_text_round_trips_with_weight_one(text):
    assert parse_prompt_attention(text) == [(text, 1.0)]
    assert extract_lora_tags(text) == (text, [])
