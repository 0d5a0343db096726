"""The axis types of an X/Y/Z plot (A1111's scripts/xyz_grid.py, those that apply to picotui) and the
parser for one axis as typed: `Type: values`, e.g. `CFG scale: 4-12 [5]`, `Sampler: Euler a, DPM++ 2M`,
`Prompt S/R: corgi, cat, fox`, `LoRA weight (myStyle): 0-1 [5]`, `Size: 512x512, 512x768`.

The TUI's plot screen and `picotui grid` both use `parse_axis`; what an axis does to a request is in
`AxisType.apply`, so a cell's request is the form's request with each axis's value put in.

Rules taken from A1111: Prompt S/R's first value is the text searched for (and its first cell is the
prompt unchanged); `-1` in a Seed (or Var. seed) axis is replaced by one random seed when the axis is
parsed, so it stays the same across the grid, unless `keep_random` is asked for ("Keep -1 for seeds").
Type names are matched without regard to case, with A1111's own spellings accepted too ("CFG Scale",
"Checkpoint name").
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from picotui.engine.errors import RequestError
from picotui.engine.plots.values import expand_numbers, split_list
from picotui.engine.request import MAX_SEED, GenerationRequest, LoraSpec
from picotui.engine.sampling.samplers import SAMPLERS
from picotui.engine.sampling.schedules import SCHEDULE_TYPES

# Field names the variation-seed work may give the request; the Var. seed axis maps to the first present.
VAR_SEED_FIELDS = ("subseed", "variation_seed", "var_seed")
SCHEDULE_FIELDS = ("schedule_type", "scheduler", "schedule")


def _field(request: GenerationRequest, candidates) -> str | None:
    names = {f.name for f in fields(request)}
    return next((c for c in candidates if c in names), None)


def _number_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class AxisType:
    label: str  # A1111's label: written as "X Type" in the grid's parameters
    kind: str  # "int" | "float" | "text" | "size"
    apply: Callable[[GenerationRequest, Any, Axis], GenerationRequest]
    aliases: tuple[str, ...] = ()
    cost: float = 0.0  # A1111's: the costliest axis is the outermost loop (a checkpoint loads once per value)
    show_label: bool = True  # cell captions "Steps: 20"; False: the value alone ("Euler a")
    help: str = ""

    def names(self) -> tuple[str, ...]:
        return (self.label, *self.aliases)


@dataclass(frozen=True)
class Axis:
    type: AxisType
    text: str  # the values as typed (A1111's "X Values")
    values: tuple
    argument: str | None = None  # LoRA weight's LoRA name
    fixed_seeds: bool = False  # a -1 was replaced by a random seed

    @property
    def label(self) -> str:
        return f"{self.type.label} ({self.argument})" if self.argument and self.type.kind != "matrix" else self.type.label

    def caption(self, value) -> str:
        if self.type.kind == "matrix":  # the optional prompt parts this cell takes
            return ", ".join(value) if value else "(none)"
        if self.type.kind == "size":
            value = f"{value[0]}x{value[1]}"
        shown = _number_text(value)
        return f"{self.label}: {shown}" if self.type.show_label else shown

    def captions(self) -> list[str]:
        return [self.caption(v) for v in self.values]


# ---- what each axis does to a request ---------------------------------------------------------------

def _set(name: str):
    return lambda request, value, axis: replace(request, **{name: value})


def _apply_seed(request, value, axis):
    return replace(request, seed=None if value == -1 else value)  # -1 kept ("keep -1"): random per cell


def _apply_var_seed(request, value, axis):
    name = _field(request, VAR_SEED_FIELDS)
    if name is None:
        raise RequestError("Var. seed: this picotui has no variation seeds yet; use a Seed axis.")
    return replace(request, **{name: value})


def _sampler_name(value: str, schedule: str | None = None) -> str:
    """picotui's sampler for an A1111 sampler name (and schedule type, when the request has no field for it)."""
    from picotui.engine.recipes.metadata import sampler_from_a1111

    exact = {name.lower(): name for name in SAMPLERS}
    if schedule is None and value.lower() in exact:
        return exact[value.lower()]  # picotui's own names, as the form lists them, win
    a1111 = {(getattr(s, "a1111_name", "") or s.name).lower(): (getattr(s, "a1111_name", "") or s.name)
             for s in SAMPLERS.values()}
    found = sampler_from_a1111(a1111.get(value.lower(), value), schedule)
    name, note = found[0], found[-1]
    if name is None or (schedule is not None and note):
        raise RequestError(f"Sampler: {value!r}{f' with {schedule}' if schedule else ''} is not one picotui has; "
                           f"choose from {', '.join(SAMPLERS)}.")
    return name


def _apply_sampler(request, value, axis):
    field_name = _field(request, SCHEDULE_FIELDS)
    if field_name is None:
        return replace(request, sampler=_sampler_name(value))
    # The request keeps the schedule apart: "dpm++ 2m karras" is its sampler plus a schedule (any case).
    lower = value.lower()
    for name in sorted(SAMPLERS, key=len, reverse=True):
        if lower == name.lower():
            return replace(request, sampler=name)
        schedule = {label.lower(): label for label in SCHEDULE_TYPES}.get(lower[len(name):].strip())
        if lower.startswith(name.lower() + " ") and schedule is not None:
            return replace(request, sampler=name, **{field_name: schedule})
    raise RequestError(f"Sampler: {value!r} is not one picotui has; choose from {', '.join(SAMPLERS)} "
                       "(optionally followed by a schedule type, e.g. DPM++ 2M Karras).")


def _apply_schedule(request, value, axis):
    name = _field(request, SCHEDULE_FIELDS)
    if name is not None:
        return replace(request, **{name: value})
    # Without a schedule field, picotui's sampler names carry the schedule: pick the one that has it.
    spec = SAMPLERS[request.sampler]
    return replace(request, sampler=_sampler_name(getattr(spec, "a1111_name", "") or spec.name, value))


def _apply_prompt_sr(request, value, axis):
    search = axis.values[0]
    if search not in request.prompt and search not in request.negative_prompt:
        raise RequestError(f"Prompt S/R: {search!r} is in neither the prompt nor the negative prompt; the first "
                           f"value is the text to replace.")
    return replace(request, prompt=request.prompt.replace(search, value),
                   negative_prompt=request.negative_prompt.replace(search, value))


def _apply_vae(request, value, axis):
    return replace(request, vae=None if value.lower() in ("none", "automatic", "auto", "") else value)


def _apply_size(request, value, axis):
    return replace(request, width=value[0], height=value[1])


def _lora_key(name: str) -> str:
    from picotui.engine.recipes.infotext import model_stem

    return model_stem(name).lower()


def _apply_lora_weight(request, value, axis):
    wanted = axis.argument
    if wanted is None:
        if len(request.loras) != 1:
            names = ", ".join(l.name for l in request.loras) or "none"
            raise RequestError(f"LoRA weight: name the LoRA, e.g. 'LoRA weight (myStyle): 0-1 [5]' (the form "
                               f"has: {names}).")
        wanted = request.loras[0].name
    loras = list(request.loras)
    for i, spec in enumerate(loras):
        if _lora_key(spec.name) == _lora_key(wanted):
            loras[i] = LoraSpec(spec.name, value)
            break
    else:
        loras.append(LoraSpec(wanted, value))  # a LoRA not in the form joins every cell at the axis's weight
    return replace(request, loras=tuple(loras))


AXIS_TYPES: list[AxisType] = [
    AxisType("Seed", "int", _apply_seed, help="-1 is one random seed for the whole grid"),
    AxisType("Var. seed", "int", _apply_var_seed, ("Variation seed",)),
    AxisType("Steps", "int", _set("steps")),
    AxisType("CFG Scale", "float", _set("cfg"), ("CFG",)),
    AxisType("Sampler", "text", _apply_sampler, show_label=False),
    AxisType("Schedule type", "text", _apply_schedule, ("Schedule", "Scheduler")),
    AxisType("Checkpoint name", "text", _set("checkpoint"), ("Checkpoint", "Model"), cost=1.0, show_label=False),
    AxisType("VAE", "text", _apply_vae, cost=0.7),
    AxisType("Clip skip", "int", _set("clip_skip")),
    AxisType("Prompt S/R", "text", _apply_prompt_sr, ("Prompt SR", "S/R"), show_label=False),
    AxisType("LoRA weight", "float", _apply_lora_weight, ("Lora weight",), cost=0.0),
    AxisType("Size", "size", _apply_size, ("Resolution",)),
]
_BY_NAME = {name.lower(): t for t in AXIS_TYPES for name in t.names()}
TYPE_NAMES = [t.label for t in AXIS_TYPES]
_SIZE = re.compile(r"^(\d+)\s*[xX×]\s*(\d+)$")
_LORA_ARG = re.compile(r"^(.*?)\s*\((.+)\)\s*$")


def find_type(name: str) -> tuple[AxisType, str | None]:
    """The axis type named `name` (any case, A1111's spelling too), and its argument (`LoRA weight (x)`)."""
    key = " ".join(name.split()).lower()
    argument = None
    m = _LORA_ARG.match(key)
    if key not in _BY_NAME and m and m[1] in _BY_NAME:
        key = m[1]
        argument = _LORA_ARG.match(" ".join(name.split()))[2].strip()
    if key not in _BY_NAME:
        raise RequestError(f"Unknown axis type {name.strip()[:30]!r}: use one of {', '.join(_display_names())}.")
    kind = _BY_NAME[key]
    if argument is not None and kind.label != "LoRA weight":
        raise RequestError(f"{kind.label} takes no name in brackets; only 'LoRA weight (name)' does.")
    return kind, argument


def _display_names() -> list[str]:
    return ["CFG scale" if t.label == "CFG Scale" else "Checkpoint" if t.label == "Checkpoint name" else t.label
            for t in AXIS_TYPES]


def parse_axis(text: str | None, *, keep_random: bool = False, rng: random.Random | None = None) -> Axis | None:
    """One axis from `Type: values`; None for empty text (no such axis). Raises RequestError (one line)."""
    if text is None or not text.strip():
        return None
    name, colon, values_text = text.partition(":")
    if not colon:
        raise RequestError(f"Write an axis as 'Type: values', e.g. 'CFG scale: 4-12 [5]' (got {text.strip()[:30]!r}).")
    kind, argument = find_type(name)
    label = kind.label
    if kind.kind in ("int", "float"):
        values = expand_numbers(values_text, kind.kind == "int", label)
    elif kind.kind == "size":
        values = []
        for item in split_list(values_text):
            m = _SIZE.match(item)
            if not m:
                raise RequestError(f"Size: {item[:20]!r} is not WIDTHxHEIGHT: write e.g. 512x768.")
            values.append((int(m[1]), int(m[2])))
    else:
        values = split_list(values_text)
        if kind.label == "Prompt S/R" and len(values) < 2:
            raise RequestError("Prompt S/R needs the text to find and at least one replacement: 'Prompt S/R: corgi, "
                               "cat, fox' (the first cell keeps 'corgi').")
    fixed = False
    if kind.label in ("Seed", "Var. seed") and not keep_random:
        rng = rng or random.SystemRandom()
        fixed = -1 in values
        values = [rng.randint(0, MAX_SEED) if v == -1 else v for v in values]
    return Axis(kind, values_text.strip(), tuple(values), argument, fixed)
