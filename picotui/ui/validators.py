"""Input validators for the form: each failure says what is accepted, in words a learner understands."""

from __future__ import annotations

from textual.validation import ValidationResult, Validator

from picotui.engine.request import MAX_SEED

UI_SIZE = (256, 1024)  # the UI's bounds for width/height (the engine accepts more)


class WholeNumber(Validator):
    def __init__(self, label: str, lo: int, hi: int, multiple: int = 1, allow_empty: bool = False):
        super().__init__()
        self.label, self.lo, self.hi, self.multiple, self.allow_empty = label, lo, hi, multiple, allow_empty

    def validate(self, value: str) -> ValidationResult:
        text = value.strip()
        if not text:
            return self.success() if self.allow_empty else self.failure(f"{self.label}: type a number.")
        try:
            number = int(text)
        except ValueError:
            return self.failure(f"{self.label}: whole numbers only ({self.lo}–{self.hi}).")
        if not self.lo <= number <= self.hi:
            return self.failure(f"{self.label}: use {self.lo}–{self.hi}.")
        if number % self.multiple:
            near = min(max(round(number / self.multiple) * self.multiple, self.lo), self.hi)
            return self.failure(f"{self.label}: must be a multiple of {self.multiple} (try {near}).")
        return self.success()


class Decimal(Validator):
    def __init__(self, label: str, lo: float, hi: float):
        super().__init__()
        self.label, self.lo, self.hi = label, lo, hi

    def validate(self, value: str) -> ValidationResult:
        try:
            number = float(value.strip())
        except ValueError:
            return self.failure(f"{self.label}: type a number like {self.lo + (self.hi - self.lo) / 4:g}.")
        if number != number or not self.lo <= number <= self.hi:
            return self.failure(f"{self.label}: use {self.lo:g}–{self.hi:g}.")
        return self.success()


class SizePair(Validator):
    """WIDTHxHEIGHT in pixels, or empty for off. A1111's "Seed resize from" (e.g. 512x768), or with
    `zero_follows` its hires "Resize width/height to", where one side 0 follows the other through the first
    pass's aspect ratio (empty: upscale by the factor instead)."""

    def __init__(self, label: str, *, zero_follows: bool = False):
        super().__init__()
        self.label = label
        self.zero_follows = zero_follows

    def validate(self, value: str) -> ValidationResult:
        text = value.strip().lower().replace("×", "x")
        if not text:
            return self.success()
        width, sep, height = text.partition("x")
        if not sep or not width.strip().isdigit() or not height.strip().isdigit():
            if self.zero_follows:
                return self.failure(f"{self.label}: WIDTHxHEIGHT like 1024x1024 (0 follows the other side), "
                                    "or empty to upscale by the factor.")
            return self.failure(f"{self.label}: WIDTHxHEIGHT like 512x768, or empty for off.")
        sides = [int(width), int(height)]
        if self.zero_follows and (sides == [0, 0] or not all(n == 0 or 64 <= n <= 4096 for n in sides)):
            return self.failure(f"{self.label}: each side 64–4096, or 0 for one side to follow the other.")
        if not self.zero_follows and not all(64 <= n <= 4096 for n in sides):
            return self.failure(f"{self.label}: each side 64–4096.")
        return self.success()


def size_validator(label: str) -> WholeNumber:
    return WholeNumber(label, *UI_SIZE, multiple=8)


def seed_validator() -> WholeNumber:
    return WholeNumber("Seed", 0, MAX_SEED, allow_empty=True)
