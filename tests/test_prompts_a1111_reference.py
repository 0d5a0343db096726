"""The parser against an independent reference of A1111's algorithm, and hang guards for hostile prompts.

`a1111_parse` below is written from A1111's algorithm (modules/prompt_parser.py, parse_prompt_attention):
one regex splits the text into tokens; "(" and "[" push the current result length on their stack; a
closing token pops it and multiplies the weight of every result piece from there to the end, at once;
brackets left open multiply the rest at the end (round ones first, each stack from the bottom); then
neighbours with equal weights are merged. It is deliberately the simple quadratic loop, so it shares
no code or cleverness with the engine's linear parser.
"""

from __future__ import annotations

import re

import pytest
from hang_guard import finishes
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from picotui.engine.prompting.prompts import EXACT_DEPTH, parse_prompt_attention
from picotui.engine.prompting.tokens import count_tokens

A1111_TOKENS = re.compile(r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|
\(|\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|]|
[^\\()\[\]:]+|
:
""", re.X)
A1111_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def a1111_parse(text: str) -> tuple[list[list], int]:
    """(A1111's result, how many BREAK markers it inserted). Raises ValueError where A1111 does."""
    res: list[list] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []
    markers = 0

    def multiply_range(start: int, multiplier: float) -> None:
        for p in range(start, len(res)):
            res[p][1] *= multiplier

    for m in A1111_TOKENS.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            res.append([token[1:], 1.0])
        elif token == "(":
            round_brackets.append(len(res))
        elif token == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif token == ")" and round_brackets:
            multiply_range(round_brackets.pop(), 1.1)
        elif token == "]" and square_brackets:
            multiply_range(square_brackets.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(A1111_BREAK.split(token)):
                if i > 0:
                    res.append(["BREAK", -1])  # an int, as in A1111: multiplying it makes a float
                    markers += 1
                res.append([part, 1.0])
    for pos in round_brackets:
        multiply_range(pos, 1.1)
    for pos in square_brackets:
        multiply_range(pos, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res, markers


def test_reference_reproduces_a1111_on_known_prompts():
    # Sanity of the reference itself, on results A1111's own documentation gives.
    assert a1111_parse("a (b:1.5) [c]")[0] == [["a ", 1.0], ["b", 1.5], [" ", 1.0], ["c", 1 / 1.1]]
    assert a1111_parse("((x))")[0] == [["x", 1.1 * 1.1]]
    assert a1111_parse("a BREAK b") == ([["a", 1.0], ["BREAK", -1], ["b", 1.0]], 1)


# Pieces of A1111 syntax, words (BREAK among them) and whitespace, so that random strings are dense
# in brackets, weights, escapes and their misuses.
SYNTAX = st.sampled_from(list("()[]:\\ ,ab") + ["1.5", "1", ".", "-", "\t", "\n", "\\(", "\\)", ":0.5)",
                                                  ":-1)", "cat", "masterpiece", "BREAK", " BREAK "])


def is_departure(text: str, ref: list[list], markers: int) -> bool:
    """Where picotui departs from A1111 on purpose (see prompts.py): A1111 multiplies a BREAK inside
    brackets by their weights, after which it is no longer a marker (and may merge with its neighbours)."""
    return sum(1 for t, w in ref if t == "BREAK" and type(w) is int) != markers


@settings(max_examples=300, deadline=None)
@given(st.lists(SYNTAX, max_size=30).map("".join))
def test_same_result_as_a1111(text):
    try:
        ref, markers = a1111_parse(text)
    except ValueError:  # a weight that is not a number: A1111 raises, picotui keeps the text (documented)
        assume(False)
    assume(not is_departure(text, ref, markers))
    expected = [(t, -1.0 if (t, w) == ("BREAK", -1) else float(w)) for t, w in ref]
    ours = parse_prompt_attention(text)
    if text.count("(") + text.count("[") <= EXACT_DEPTH:
        assert ours == expected  # texts and weights bit for bit
    else:  # deeper than any real prompt: the same factors, multiplied in another order
        assert [t for t, _ in ours] == [t for t, _ in expected]
        assert [w for _, w in ours] == pytest.approx([w for _, w in expected], rel=1e-12)


@pytest.mark.parametrize("text", ["a BREAK b", "aBREAK ", " BREAKx ", "a\tBREAK\n b", "BREAK BREAK", " BREAK", "x BREAK  BREAK y",
                                  "BREAKFAST BREAK", "a,BREAK,b", "\u00a0BREAK\u2003x"])
def test_break_splits_like_a1111(text):
    ref, _ = a1111_parse(text)
    assert parse_prompt_attention(text) == [(t, float(w)) for t, w in ref]


@pytest.mark.parametrize("text,halves", [("(a BREAK b)", ("(a)", "(b)")), ("(a BREAK b:0)", ("(a:0)", "(b:0)")),
                                         ("[x, (a BREAK b:1.5)]", ("[x, (a:1.5)]", "[(b:1.5)]"))])
def test_departure_a_break_inside_brackets_still_breaks(text, halves):
    """prompts.py's documented departure: where A1111 multiplies a bracketed BREAK (so it stops breaking),
    picotui breaks there, each side weighted as A1111 weights it with the brackets closed at the BREAK."""
    ref, markers = a1111_parse(text)
    assert is_departure(text, ref, markers)  # A1111 itself does not break here
    before, after = (a1111_parse(half)[0] for half in halves)
    expected = before + [["BREAK", -1.0]] + after
    assert parse_prompt_attention(text) == [(t, float(w)) for t, w in expected]


# ---- hang guards -------------------------------------------------------------------------------------
# Not speed tests: A1111's quadratic loops (brackets, the BREAK regex over long runs of spaces, the tag
# regex over "<x:" with no ">") are slow on these 20,000-character prompts (the request maximum). Here
# only the result and the absence of a hang are checked; linear growth is measured in benchmarks/parsers.py.

@pytest.mark.parametrize("text,kept", [("(a" * 10000, "a" * 10000), (")" * 200000, ")" * 200000),
                                       (" " * 20000 + "x", " " * 20000 + "x"), ("[(a" * 6666, "a" * 6666),
                                       ("(a:1.1)" * 2857, "a" * 2857), ("<a:" * 6666, "<a:" * 6666)],
                         ids=["open", "close", "spaces", "mixed", "weights", "tags"])
def test_hang_guard_parse_and_count(text, kept):
    parsed = finishes(parse_prompt_attention, text)
    assert "".join(t for t, _ in parsed) == kept
    assert finishes(count_tokens, text).chunks >= 1
