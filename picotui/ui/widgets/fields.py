"""The form's typed fields: each one's label, validator and length, and the labelled Input that shows it
(the main form and its second-pass section build theirs from this one table)."""

from __future__ import annotations

from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from picotui.engine.request import (
    BATCH_COUNT,
    CFG,
    CLIP_SKIP,
    DENOISING_STRENGTH,
    ENSD,
    HIRES_SCALE,
    HIRES_STEPS,
    MAX_SEED,
    NGMS,
    STEPS,
    TOKEN_MERGING,
    VARIATION_STRENGTH,
)
from picotui.ui.validators import Decimal, SizePair, WholeNumber, seed_validator, size_validator

INPUTS = {  # id -> (label, validator factory, max length)
    "steps": ("Steps", lambda: WholeNumber("Steps", *STEPS), 3),
    "cfg": ("CFG scale", lambda: Decimal("CFG scale", *CFG), 5),
    "width": ("Width", lambda: size_validator("Width"), 4),
    "height": ("Height", lambda: size_validator("Height"), 4),
    "seed": ("Seed", seed_validator, 10),
    "clip-skip": ("Clip skip", lambda: WholeNumber("Clip skip", *CLIP_SKIP), 1),
    "batch": ("Batch count", lambda: WholeNumber("Batch count", *BATCH_COUNT), 3),
    # A1111's noise controls (its "Extra" seed options and the ENSD setting)
    "variation-seed": ("Variation seed", lambda: WholeNumber("Variation seed", 0, MAX_SEED, allow_empty=True), 10),
    "variation-strength": ("Var. strength", lambda: Decimal("Variation strength", *VARIATION_STRENGTH), 5),
    "seed-resize": ("Seed resize", lambda: SizePair("Seed resize from"), 9),
    "ensd": ("ENSD", lambda: WholeNumber("ENSD", *ENSD), 10),
    "tome": ("Token merging", lambda: Decimal("Token merging ratio", *TOKEN_MERGING), 4),
    "ngms": ("NGMS", lambda: Decimal("NGMS", *NGMS), 5),
    # the second pass (widgets/second_pass.py): img2img and hires fix, with A1111's labels
    "denoising": ("Denoising", lambda: Decimal("Denoising strength", *DENOISING_STRENGTH), 5),
    "hires-scale": ("Upscale by", lambda: Decimal("Hires upscale by", *HIRES_SCALE), 5),
    "hires-resize": ("Resize to", lambda: SizePair("Hires resize to", zero_follows=True), 9),
    "hires-steps": ("Hires steps", lambda: WholeNumber("Hires steps", *HIRES_STEPS), 3),
}
EMPTY_OK = {"seed", "variation-seed", "seed-resize", "hires-resize"}  # empty: random / random / off / by scale
PLACEHOLDERS = {"seed": "random", "variation-seed": "random", "seed-resize": "off (WxH)", "hires-resize": "off (WxH)"}


def labelled_input(field_id: str, value: str) -> Vertical:
    """The field's label, its Input (validated as typed) and the line its error shows on."""
    title, validator, max_length = INPUTS[field_id]
    return Vertical(Label(title, classes="field-label"),
                    Input(value, id=field_id, validators=[validator()], max_length=max_length,
                          placeholder=PLACEHOLDERS.get(field_id, ""), valid_empty=field_id in EMPTY_OK,
                          compact=True, select_on_focus=True),
                    Static("", id=f"{field_id}-error", classes="field-error"),
                    classes="field", id=f"{field_id}-field")
