"""A1111 prompt syntax, as text: attention weights, BREAK, and `<lora:...>` tags. Pure Python, no torch.

AUTOMATIC1111's web UI is the specification here, because users paste prompts written for it:

- `(x)` multiplies x's weight by 1.1, `[x]` divides it by 1.1, `(x:1.4)` sets a factor of 1.4;
  nesting multiplies: `((x))` is 1.21, `((x):2)` is 2.2.
- `\\(` `\\)` `\\[` `\\]` `\\\\` are literal characters; a lone backslash is dropped (as A1111 does).
- Unbalanced brackets are forgiven the way A1111 forgives them: a bracket left open applies its
  factor to the rest of the prompt; a stray closing bracket (or `:1.2)` with no open `(`) is literal text.
- `BREAK` (upper case, a whole word) ends the current 75-token chunk. It is returned as the marker
  `("BREAK", -1.0)`, exactly as A1111 represents it.
- Neighbouring pieces with equal weights are merged.

Two deliberate departures from A1111, both where A1111 misbehaves rather than chooses:
- A weight that is not a number (`(x:.)`, `(x:1.2.3)`) makes A1111 raise; here the `:...)` is kept
  as literal text and the bracket is closed with the plain 1.1 factor, so parsing never fails.
- A1111 multiplies the BREAK marker's -1 by the weights of brackets around it, after which it is no
  longer recognised and the word "BREAK" is encoded with a negative weight. Here BREAK always breaks.

Parsing takes time linear in the prompt's length (A1111's is quadratic in the number of brackets);
weights are bit-for-bit A1111's for text inside up to EXACT_DEPTH brackets, and equal up to float
rounding deeper than that.

Extra-network tags `<kind:args>` are removed from the text before weights are parsed (A1111 removes
every such tag). `<lora:...>` and its alias `<lyco:...>` become `LoraSpec`s; other kinds
(`<hypernet:...>` and anything else) are removed and reported as ignored, because picotui cannot
apply them and leaving them in would encode "hypernet" as words.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from picotui.engine.errors import RequestError
from picotui.engine.request import LORA_WEIGHT, LoraSpec

ROUND_FACTOR = 1.1
SQUARE_FACTOR = 1 / 1.1
BREAK = ("BREAK", -1.0)
# The encoder refuses weights beyond this (A1111 has no limit). Community prompts stay within about
# -1..2; past ~100 a word drowns the rest of its chunk, and weights near float32's limit turn the
# conditioning into inf and the image into NaN. The token counter does not check it: it never fails.
MAX_WEIGHT = 100.0
# Pieces inside at most this many brackets get their weight multiplied in exactly A1111's order (so
# equal weights compare equal, and merge, exactly as there). Deeper pieces (no real prompt nests
# this far) get the same factors multiplied in bracket-opening order: equal up to float rounding,
# and it keeps parsing linear where A1111's loop is quadratic.
EXACT_DEPTH = 16

# One lexical piece of a prompt. Order matters: escapes first, then brackets, then an explicit
# weight `:number)`, then runs of ordinary text, and finally a lone `:` (ordinary text as well).
_PIECE = re.compile(r"""
      (?P<escape>\\[()\[\]\\]|\\)
    | (?P<open>[(\[])
    | :\s*(?P<weight>[+-]?[.\d]+)\s*\)
    | (?P<close>[)\]])
    | (?P<text>[^\\()\[\]:]+|:)
""", re.X)
# A1111 splits on r"\s*\bBREAK\b\s*", which backtracks quadratically over long runs of spaces; splitting
# on the bare word and stripping the whitespace around it gives the same parts in linear time.
_BREAK_WORD = re.compile(r"\bBREAK\b")
# A1111's extra-network syntax: <kind:arg1:arg2...>.
_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
_LORA_KINDS = ("lora", "lyco")


class _Bracket:
    """An open bracket: its factor and when A1111 applies it, both known once it closes (or never does)."""
    __slots__ = ("factor", "order")

    def __init__(self, factor: float):
        self.factor = factor
        self.order = -1


class _Open:
    """A node of a persistent stack of open brackets: each piece keeps the stacks it was written inside."""
    __slots__ = ("bracket", "below", "depth", "product")

    def __init__(self, bracket: _Bracket, below: _Open | None):
        self.bracket = bracket
        self.below = below
        self.depth = 1 + (below.depth if below else 0)
        self.product: float | None = None  # factors of this node and those below, in opening order


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split `text` into (piece, weight) pairs with A1111's semantics; never raises on any string.

    A1111 multiplies the weight of every piece after a bracket when the bracket closes, which is
    quadratic in the number of brackets. Here each piece remembers the brackets open around it
    (persistent stacks, shared between pieces), and weights are computed once the factors are known.
    """
    texts: list[str] = []
    inside: list[tuple[_Open | None, _Open | None] | None] = []  # per piece; None marks BREAK
    stacks: dict[str, _Open | None] = {"(": None, "[": None}
    closed = 0  # brackets closed so far: A1111 applies factors in closing order

    def close(kind: str, factor: float) -> None:
        nonlocal closed
        top = stacks[kind]
        top.bracket.factor, top.bracket.order = factor, closed
        closed += 1
        stacks[kind] = top.below

    def add(piece: str) -> None:
        texts.append(piece)
        inside.append((stacks["("], stacks["["]))

    for m in _PIECE.finditer(text):
        token, kind = m.group(0), m.lastgroup
        if kind == "escape":
            add(token[1:])
        elif kind == "open":
            stacks[token] = _Open(_Bracket(ROUND_FACTOR if token == "(" else SQUARE_FACTOR), stacks[token])
        elif kind == "weight" and stacks["("] is not None:
            factor = _number(m.group("weight"))
            if factor is None:  # not a number: keep the text, close the bracket as a plain "("
                add(token[:-1])
                factor = ROUND_FACTOR
            close("(", factor)
        elif token == ")" and stacks["("] is not None:
            close("(", ROUND_FACTOR)
        elif token == "]" and stacks["["] is not None:
            close("[", SQUARE_FACTOR)
        elif "BREAK" not in token:  # ordinary text, or a bracket/weight with nothing to close
            add(token)
        else:
            for i, part in enumerate(_split_break(token)):
                if i:
                    texts.append(BREAK[0])
                    inside.append(None)
                add(part)

    # Brackets never closed apply to everything after them (A1111's forgiveness): after every closed
    # one, round before square, each stack from the bottom up.
    for kind in "([":
        node, unclosed = stacks[kind], []
        while node is not None:
            unclosed.append(node.bracket)
            node = node.below
        for bracket in reversed(unclosed):
            bracket.order = closed
            closed += 1

    merged: list[tuple[str, float]] = []
    run: list[str] = []
    run_weight: float | None = None  # None: no run of text open (start, or just after a BREAK)
    weights: dict[tuple, float] = {}
    for piece, where in zip(texts, inside):
        if where is None:
            if run_weight is not None:
                merged.append(("".join(run), run_weight))
            merged.append(BREAK)
            run, run_weight = [], None
            continue
        weight = weights.get(where)
        if weight is None:
            weight = weights[where] = _weight(*where)
        if weight != run_weight and run_weight is not None:
            merged.append(("".join(run), run_weight))
            run = []
        run.append(piece)
        run_weight = weight
    if run_weight is not None:
        merged.append(("".join(run), run_weight))
    return merged or [("", 1.0)]


def _split_break(text: str) -> list[str]:
    r"""`re.split(r"\s*\bBREAK\b\s*", text)` without its quadratic backtracking."""
    parts = _BREAK_WORD.split(text)
    last = len(parts) - 1
    if last:  # strip only the sides that touch a BREAK
        parts = [part.rstrip() if i == 0 else part.lstrip() if i == last else part.strip()
                 for i, part in enumerate(parts)]
    return parts


def _weight(round_top: _Open | None, square_top: _Open | None) -> float:
    """The weight of a piece written inside these open-bracket stacks."""
    depth = (round_top.depth if round_top else 0) + (square_top.depth if square_top else 0)
    if depth > EXACT_DEPTH:
        return _opening_product(round_top) * _opening_product(square_top)
    brackets = []
    for node in (round_top, square_top):
        while node is not None:
            brackets.append(node.bracket)
            node = node.below
    weight = 1.0
    for bracket in sorted(brackets, key=lambda b: b.order):
        weight *= bracket.factor
    return weight


def _opening_product(node: _Open | None) -> float:
    """The product of a stack's factors from the bottom up; each node's is kept, so this is O(1) amortised."""
    chain = []
    while node is not None and node.product is None:
        chain.append(node)
        node = node.below
    value = 1.0 if node is None else node.product
    for item in reversed(chain):
        value *= item.bracket.factor
        item.product = value
    return value


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def is_break(piece: tuple[str, float]) -> bool:
    return piece[0] == BREAK[0] and piece[1] == BREAK[1]


# ---- extra networks: <lora:name:weight> ------------------------------------------------------------

@dataclass(frozen=True)
class ExtraNetworks:
    text: str  # the prompt with every <kind:...> tag removed
    loras: list[LoraSpec] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # tags of kinds picotui cannot apply, as written


def strip_extra_networks(text: str) -> tuple[str, list[tuple[str, list[str], str]]]:
    """(text without tags, [(kind, args, tag as written)]). Never raises: the token counter uses it."""
    # Searching only up to the last ">" keeps this linear: without it, every "<x:" with no ">" after it
    # would scan to the end of the text ("<a:" * 6666 took seconds). No tag can end past the last ">".
    matches = list(_EXTRA_NETWORK.finditer(text, 0, text.rfind(">") + 1))
    if not matches:
        return text, []
    kept, start = [], 0
    for m in matches:
        kept.append(text[start:m.start()])
        start = m.end()
    kept.append(text[start:])
    return "".join(kept), [(m.group(1).lower(), m.group(2).split(":"), m.group(0)) for m in matches]


def extract_extra_networks(text: str) -> ExtraNetworks:
    """The prompt without tags, the LoRAs its tags ask for, and the tags that were ignored.

    `<lora:name>` means weight 1.0 (A1111's default multiplier). `<lora:name:te:unet>` (separate
    text-encoder and UNet weights) uses the first weight: picotui applies one weight per LoRA.
    A weight outside the engine's 0..2 bounds is rejected, not clamped, so the image is never made
    with a weight other than the one written; the message names the tag.
    """
    clean, found = strip_extra_networks(text)
    loras, ignored = [], []
    for kind, args, tag in found:
        if kind not in _LORA_KINDS:
            ignored.append(tag)
            continue
        name = args[0].strip()
        if not name:
            raise RequestError(f"{tag} has no LoRA name: write it as <lora:filename:0.8>.")
        weight = 1.0
        if len(args) > 1 and args[1].strip():
            value = _number(args[1].strip())
            if value is None or not math.isfinite(value):
                raise RequestError(f"{tag} has weight {args[1].strip()!r}, which is not a number: "
                                   f"write it as <lora:{name}:0.8>.")
            weight = value
        lo, hi = LORA_WEIGHT
        if not lo <= weight <= hi:
            raise RequestError(f"{tag}: LoRA weight {weight:g} is out of range; use {lo:g} to {hi:g}.")
        loras.append(LoraSpec(name, weight))
    return ExtraNetworks(clean, loras, ignored)


@dataclass(frozen=True)
class PromptTags:
    """A job's prompt and negative prompt with their tags removed, the LoRAs to apply, and what to tell the user."""
    prompt: str
    negative: str
    loras: list[LoraSpec]
    notices: list[str]  # one line each: tags that were removed without effect


def extract_prompt_tags(prompt: str, negative: str) -> PromptTags:
    """Tags of both prompts, as a job applies them. Raises RequestError only for a bad <lora:...> in the prompt.

    Tags in the negative prompt are removed and never applied (A1111 applies none there either), so
    a malformed one there cannot fail the job; both kinds of ignored tag are reported, not dropped silently.
    """
    found = extract_extra_networks(prompt)
    negative_text, negative_tags = strip_extra_networks(negative)
    notices = []
    if found.ignored:
        notices.append(f"Ignored {_tag_list(found.ignored)}: picotui supports LoRA tags only (<lora:name:weight>).")
    if negative_tags:
        notices.append(f"Ignored {_tag_list([tag for _, _, tag in negative_tags])} in the negative prompt: "
                       f"tags there are removed and never applied.")
    return PromptTags(found.text, negative_text, found.loras, notices)


def _tag_list(tags: list[str], shown: int = 3) -> str:
    """Tags for a one-line notice: the first few, each cut short (a tag may be as long as the prompt)."""
    names = [tag if len(tag) <= 60 else tag[:57] + "...>" for tag in tags[:shown]]
    more = f" and {len(tags) - shown} more" if len(tags) > shown else ""
    return ", ".join(names) + more


def extract_lora_tags(text: str) -> tuple[str, list[LoraSpec]]:
    """(prompt without any <kind:...> tags, LoRAs from its <lora:...> tags). Raises RequestError on a bad tag."""
    found = extract_extra_networks(text)
    return found.text, found.loras
