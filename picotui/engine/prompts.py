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

# One lexical piece of a prompt. Order matters: escapes first, then brackets, then an explicit
# weight `:number)`, then runs of ordinary text, and finally a lone `:` (ordinary text as well).
_PIECE = re.compile(r"""
      (?P<escape>\\[()\[\]\\]|\\)
    | (?P<open>[(\[])
    | :\s*(?P<weight>[+-]?[.\d]+)\s*\)
    | (?P<close>[)\]])
    | (?P<text>[^\\()\[\]:]+|:)
""", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
# A1111's extra-network syntax: <kind:arg1:arg2...>.
_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
_LORA_KINDS = ("lora", "lyco")


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split `text` into (piece, weight) pairs with A1111's semantics; never raises on any string."""
    pieces: list[list] = []  # [text, weight, is_break]; lists so weights can be multiplied in place
    round_open: list[int] = []  # index into pieces where each open "(" began
    square_open: list[int] = []

    def scale_from(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if not piece[2]:
                piece[1] *= factor

    for m in _PIECE.finditer(text):
        token = m.group(0)
        if m.group("escape") is not None:
            pieces.append([token[1:], 1.0, False])
        elif m.group("open") is not None:
            (round_open if token == "(" else square_open).append(len(pieces))
        elif m.group("weight") is not None and round_open:
            factor = _number(m.group("weight"))
            if factor is None:  # not a number: keep the text, close the bracket as a plain "("
                pieces.append([token[:-1], 1.0, False])
                factor = ROUND_FACTOR
            scale_from(round_open.pop(), factor)
        elif token == ")" and round_open:
            scale_from(round_open.pop(), ROUND_FACTOR)
        elif token == "]" and square_open:
            scale_from(square_open.pop(), SQUARE_FACTOR)
        else:  # ordinary text, or a bracket/weight with nothing to close
            for i, part in enumerate(_BREAK.split(token)):
                if i:
                    pieces.append([BREAK[0], BREAK[1], True])
                pieces.append([part, 1.0, False])

    # Brackets never closed apply to everything after them (A1111's forgiveness).
    for start in round_open:
        scale_from(start, ROUND_FACTOR)
    for start in square_open:
        scale_from(start, SQUARE_FACTOR)

    merged: list[list] = []
    for piece in pieces:
        prev = merged[-1] if merged else None
        if prev is not None and not prev[2] and not piece[2] and prev[1] == piece[1]:
            prev[0] += piece[0]
        else:
            merged.append(piece)
    if not merged:
        return [("", 1.0)]
    return [(t, float(w)) for t, w, _ in merged]


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
    found = [(m.group(1).lower(), m.group(2).split(":"), m.group(0)) for m in _EXTRA_NETWORK.finditer(text)]
    return _EXTRA_NETWORK.sub("", text), found


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


def extract_lora_tags(text: str) -> tuple[str, list[LoraSpec]]:
    """(prompt without any <kind:...> tags, LoRAs from its <lora:...> tags). Raises RequestError on a bad tag."""
    found = extract_extra_networks(text)
    return found.text, found.loras
