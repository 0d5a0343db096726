"""A1111's X/Y/Z value syntax (scripts/xyz_grid.py), for one axis's text.

* A comma-separated list, read as CSV (so a value with a comma can be quoted: `"a, b", c`), each stripped.
* Whole-number ranges: `1-5` is 1..5 inclusive; `1-10 (+2)` steps by 2 up to 10 (`10-5 (-3)` is 10, 7);
  `1-10 [5]` is 5 numbers spread evenly from 1 to 10, cut to whole numbers (1, 3, 5, 7, 10).
* Decimal ranges: `0.5-2 (+0.5)` counts from 0.5 in steps of 0.5 while below 2 + 0.5 (numpy's
  `arange(start, end + step, step)`, as A1111 does, so a step that does not divide the range can overshoot
  the end by less than one step); `1.0-2.0 [5]` is 5 numbers from 1 to 2 (`linspace`); `1.0-2.0` with
  neither is a step of 1.
Ranges and lists mix: `1-3, 7, 10-20 (+5)`.

Every mistake raises RequestError with one line that says what to write instead.
"""

from __future__ import annotations

import csv
import io
import math
import re

from picotui.engine.errors import RequestError

_NUM = r"[+-]?\s*\d+(?:\.\d*)?"
_RANGE = re.compile(rf"^({_NUM})\s*-\s*({_NUM})\s*(?:\(\s*({_NUM})\s*\)|\[\s*(\d+)\s*\])?$")
_LOOKS_LIKE_RANGE = re.compile(r"^[+-]?\s*[\d.]+\s*-")  # "1-", "1-x", "1-5 [x]": a range gone wrong
MAX_VALUES = 200  # one axis; more is a typo (a step of 0.001), not a plot


def split_list(text: str) -> list[str]:
    """The comma-separated values, CSV-quoted as A1111 reads them, each stripped; empty ones refused."""
    try:
        rows = list(csv.reader(io.StringIO(text.strip()), skipinitialspace=True))
    except csv.Error as exc:
        raise RequestError(f"Could not read the values {text.strip()[:40]!r} ({exc}): separate them with commas, "
                           f"quote a value that holds a comma.") from None
    values = [v.strip() for row in rows for v in row]
    if not values or all(not v for v in values):
        raise RequestError("No values: write them after the colon, e.g. 'Steps: 10, 20, 30'.")
    if any(not v for v in values):
        raise RequestError(f"Two commas with nothing between them in {text.strip()[:40]!r}: remove one.")
    return values


def _number(text: str, integer: bool) -> float:
    text = re.sub(r"\s+", "", text)
    if integer and "." in text:
        raise ValueError(text)
    return int(text) if integer else float(text)


def _arange(start: float, stop: float, step: float) -> list[float]:
    """numpy.arange's values: ceil((stop - start) / step) of them, start + i * step."""
    count = max(0, math.ceil((stop - start) / step))
    return [start + i * step for i in range(count)]


def _linspace(start: float, stop: float, num: int) -> list[float]:
    """numpy.linspace's values (the last one is `stop` exactly)."""
    if num == 1:
        return [start]
    step = (stop - start) / (num - 1)
    return [start + i * step for i in range(num - 1)] + [stop] if num > 1 else []


def expand_range(text: str, integer: bool) -> list | None:
    """The values of one range item (`1-5`, `1-10 (+2)`, `1-10 [5]`), or None when it is not a range."""
    m = _RANGE.match(text.strip())
    if m is None:
        if _LOOKS_LIKE_RANGE.match(text.strip()) and not _is_number(text):
            raise RequestError(f"{text.strip()[:40]!r} is not a range A1111 understands: write 1-5, 1-10 (+2) or "
                               f"1.0-2.0 [5].")
        return None
    first, last, step_text, count_text = m.groups()
    kind = "whole numbers" if integer else "numbers"
    try:
        start, end = _number(first, integer), _number(last, integer)
        step = _number(step_text, integer) if step_text is not None else 1
    except ValueError:
        raise RequestError(f"{text.strip()!r}: this axis takes {kind}; write e.g. 1-10 (+2).") from None
    if count_text is not None:
        count = int(count_text)
        if count < 1:
            raise RequestError(f"{text.strip()!r}: the count in [ ] must be 1 or more.")
        values = _linspace(float(start), float(end), count)
        values = [int(v) for v in values] if integer else values  # A1111 cuts toward zero
    elif step == 0:
        raise RequestError(f"{text.strip()!r}: a step of 0 never ends; write e.g. (+1).")
    elif integer:
        values = list(range(start, end + 1, step))  # A1111's end + 1, whichever way the step goes
    else:
        values = _arange(start, end + step, step)
    if not values:
        raise RequestError(f"{text.strip()!r} gives no values: the step goes the wrong way (write "
                           f"{last.strip()}-{first.strip()} or a {'negative' if step > 0 else 'positive'} step).")
    if len(values) > MAX_VALUES:
        raise RequestError(f"{text.strip()!r} gives {len(values)} values: keep an axis under {MAX_VALUES}.")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def expand_numbers(text: str, integer: bool, label: str) -> list:
    """All values of a numeric axis: list items and ranges, in the order written."""
    out: list = []
    for item in split_list(text):
        values = expand_range(item, integer)
        if values is None:
            try:
                values = [_number(item, integer)]
            except ValueError:
                what = "a whole number" if integer else "a number"
                raise RequestError(f"{label}: {item[:30]!r} is not {what} or a range (e.g. 1-5, 1-10 (+2), "
                                   f"1.0-2.0 [5]).") from None
        out.extend(values)
    if len(out) > MAX_VALUES:
        raise RequestError(f"{label} has {len(out)} values: keep an axis under {MAX_VALUES}.")
    return out
