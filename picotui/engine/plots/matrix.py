"""A1111's Prompt matrix (scripts/prompt_matrix.py) as a plot: `a corgi | wearing a hat | in the snow` makes
every combination of the optional parts after the first: 2^(n) images for n optional parts.

As A1111: combination k takes optional part j when bit j of k is set, joined after the first part with ", "
(in part order); every image has the same seed unless different seeds are asked for (seed + k); the grid has
2^(n // 2) rows, so the first half of the parts (the low bits) vary along a row and the second half down
the columns. Parts are stripped of spaces and trailing commas (A1111 keeps the first part's trailing space,
"a corgi , hat": CLIP reads the same tokens either way).

The two axes are ordinary plan axes of the type "Prompt matrix": their values are the parts a cell takes.
"""

from __future__ import annotations

from dataclasses import replace

from picotui.engine.errors import RequestError
from picotui.engine.plots.axes import Axis, AxisType
from picotui.engine.plots.plan import GridPlan, build_plan
from picotui.engine.request import MAX_SEED, GenerationRequest

MATRIX_LABEL = "Prompt matrix"
MAX_PARTS = 8  # 256 images


def _apply(first: str):
    def apply(request: GenerationRequest, parts: tuple, axis: Axis) -> GenerationRequest:
        # the X axis starts the prompt again from the first part; the Y axis adds its (later) parts
        prompt = first if axis.argument == "x" else request.prompt
        return replace(request, prompt=", ".join([prompt, *parts]) if parts else prompt)
    return apply


def matrix_parts(prompt: str) -> tuple[str, list[str]]:
    pieces = prompt.split("|")
    first, rest = pieces[0].strip().rstrip(",").strip(), [p.strip().strip(",").strip() for p in pieces[1:]]
    if not rest:
        raise RequestError("Prompt matrix: separate the optional parts of the prompt with |, e.g. "
                           "'a corgi | wearing a hat | in the snow'.")
    if any(not p for p in rest):
        raise RequestError("Prompt matrix: an optional part between | is empty; remove the extra |.")
    if len(rest) > MAX_PARTS:
        raise RequestError(f"Prompt matrix: {len(rest)} optional parts make {2 ** len(rest)} images; keep it to "
                           f"{MAX_PARTS} or fewer.")
    return first, rest


def build_matrix_plan(base: GenerationRequest, *, different_seeds: bool = False) -> GridPlan:
    """The prompt matrix of `base.prompt` as a plan. Raises RequestError (one line)."""
    first, rest = matrix_parts(base.prompt)
    boundary = len(rest) - len(rest) // 2  # A1111: rows = 2^(n // 2), so the row holds the first ceil(n/2) parts
    kind = AxisType(MATRIX_LABEL, "matrix", _apply(first), show_label=False)

    def axis(parts: list[str], name: str) -> Axis | None:
        if not parts:
            return None
        values = tuple(tuple(p for j, p in enumerate(parts) if k & (1 << j)) for k in range(2 ** len(parts)))
        return Axis(kind, " | ".join(parts), values, name)

    plan = build_plan(replace(base, prompt=first), axis(rest[:boundary], "x"), axis(rest[boundary:], "y"))
    if different_seeds:
        seed = plan.base.seed
        cells = tuple(replace(c, request=replace(c.request, seed=(seed + c.index) % (MAX_SEED + 1)))
                      for c in plan.cells)
        plan = replace(plan, cells=cells)
    return plan
