"""A1111's "parameters" text read as A1111 reads it (modules/infotext_utils.py): the prompt, the negative prompt
and the last line's `key: value` pairs, quoted values unquoted; sampler names old and new; numbers; the
extra-network hash lists. infotext.py writes the text; metadata.py turns these values into a request.

When reading, the last line counts as settings only if it holds at least 3 `key: value` pairs; old combined
sampler names ("DPM++ 2M Karras") are read as sampler + schedule type.

No torch here: the UI imports this module.
"""

from __future__ import annotations

import json
import re

from picotui.engine.sampling.samplers import DEFAULT_SAMPLER, SAMPLERS, split_sampler_name
from picotui.engine.sampling.schedules import schedule_label

_KEY = re.compile(r"\w[\w \-/]*")
_JSON = json.JSONDecoder()


def parse_parameters(text: str) -> dict[str, str]:
    """A1111's reading of a parameters text: {"Prompt", "Negative prompt", key: value...} (values unquoted)."""
    *lines, last = str(text).strip().split("\n")
    pairs = _pairs(last)
    if len(pairs) < 3:
        lines.append(last)
        pairs = []
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    result = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    result.update(pairs)
    return result


def _pairs(line: str) -> list[tuple[str, str]]:
    """`key: value, key: "quoted, value", ...` in one linear pass (no regex backtracking on long lines)."""
    out, i, n = [], 0, len(line)
    colon = comma = -1
    while i < n:
        if colon < i:
            colon = line.find(":", i)
            if colon < 0:
                break
        if comma < i:
            comma = line.find(",", i)
            comma = n if comma < 0 else comma
        if comma < colon:  # a piece without a key: skip it
            i = comma + 1
            continue
        key = line[i:colon].strip()
        j = colon + 1
        while j < n and line[j] == " ":
            j += 1
        if not _KEY.fullmatch(key):
            i = comma + 1
            continue
        if j < n and line[j] == '"':
            try:
                value, end = _JSON.raw_decode(line, j)
            except ValueError:
                end = -1
            if end >= 0 and (end == n or line[end] == ","):
                out.append((key, str(value)))
                i = end + 1
                continue
        end = line.find(",", j)
        end = n if end < 0 else end
        out.append((key, line[j:end].strip()))
        i = end + 1
    return out


def sampler_from_a1111(sampler: str, schedule: str | None) -> tuple[str | None, str | None, str | None]:
    """(our sampler or None, our schedule type or None, a note when something could not be matched).

    A combined name ("DPM++ 2M Karras", A1111 before 1.9) carries its schedule; a plain name without a
    "Schedule type" comes from before 1.9, when it meant the uniform schedule. A1111's timestep samplers
    (DDIM, PLMS, UniPC) ignore the schedule. A schedule we do not have is reported, never silently swapped.
    """
    name, combined = split_sampler_name(sampler)
    if name is None:
        return None, None, f"Sampler: {sampler.strip()} (picotui has no such sampler; using {DEFAULT_SAMPLER})"
    if SAMPLERS[name].timestep:
        return name, "Automatic", None
    if schedule is None or not schedule.strip():
        return name, combined or "Uniform", None
    label = schedule_label(schedule)
    if label is None:
        return name, "Automatic", (f"Schedule type: {schedule.strip()} (not supported by picotui; using "
                                   f"{SAMPLERS[name].automatic or 'Uniform'}, {name}'s automatic schedule)")
    return name, label, None


def hash_pairs(text: str) -> dict[str, str]:
    """A1111's "Lora hashes" / "TI hashes": 'a: 0123456789ab, b: ba9876543210' -> {"a": ..., "b": ...}."""
    out = {}
    for part in str(text).split(","):
        name, sep, value = part.rpartition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def to_number(text: str, integer: bool):
    """A number from a recipe's text (an int when `integer` and whole), or None when it is not one."""
    try:
        value = float(text)
    except ValueError:
        return None
    if integer:
        return int(value) if value.is_integer() else value
    return value
