"""GenerationRequest: one job, validated when it is built."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from picotui.engine.errors import RequestError
from picotui.engine.sampling.noise import DEFAULT_RNG, RNG_SOURCES
from picotui.engine.sampling.samplers import (
    DEFAULT_SAMPLER,
    DEFAULT_SCHEDULE_TYPE,
    OLD_PICOTUI_UNIFORM,
    SAMPLER_NAMES,
    a1111_schedule,
    split_sampler_name,
)
from picotui.engine.sampling.schedules import SCHEDULE_TYPES, schedule_label

DEFAULT_PROMPT = ("welsh pembroke corgi, sitting on wooden floor, small laptop, warm lighting, "
                  "soft shadows, cute, stylized")
DEFAULT_NEGATIVE = ("bad anatomy, low quality, blurry, watermark, deformed, extra limbs, disfigured, "
                    "poorly drawn face, poorly drawn hands, duplicate, signature")
DEFAULT_LORA_WEIGHT = 0.8
MAX_SEED = 2**32 - 1

# Bounds the engine enforces. The UI narrows width/height to 256..1024.
STEPS = (1, 150)
CFG = (1.0, 30.0)
CLIP_SKIP = (1, 4)
BATCH_COUNT = (1, 100)
LORA_WEIGHT = (0.0, 2.0)
SIZE = (64, 4096)
MAX_PROMPT_CHARS = 20_000
VARIATION_STRENGTH = (0.0, 1.0)
ENSD = (0, MAX_SEED)
TOKEN_MERGING = (0.0, 0.9)  # A1111's "Token merging ratio" slider
NGMS = (0.0, 15.0)  # A1111's "Negative Guidance minimum sigma" slider (0: off)
# The second pass (img2img and hires fix), with A1111's labels and defaults.
DENOISING_STRENGTH = (0.0, 1.0)
DEFAULT_DENOISING_STRENGTH = 0.75  # A1111's img2img default (its hires fix defaults to 0.7)
DEFAULT_HIRES_DENOISING_STRENGTH = 0.7
RESIZE_MODES: tuple[str, ...] = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
HIRES_SCALE = (1.0, 4.0)
HIRES_STEPS = (0, 150)  # 0: as many as the first pass
DEFAULT_HIRES_UPSCALER = "Latent"


@dataclass(frozen=True)
class LoraSpec:
    name: str  # library file name (stem or full name) or a path
    weight: float = DEFAULT_LORA_WEIGHT

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise RequestError("A LoRA needs a file name: pick one from models/loras.")
        object.__setattr__(self, "weight", _number("LoRA weight", self.weight, *LORA_WEIGHT))


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE
    checkpoint: str = "demo"
    vae: str | None = None  # None: the checkpoint's own VAE
    loras: tuple[LoraSpec, ...] = ()
    sampler: str = f"{DEFAULT_SAMPLER} {DEFAULT_SCHEDULE_TYPE}"  # a combined name splits into the two fields
    schedule_type: str = "Automatic"  # A1111's "Schedule type"
    steps: int = 24
    cfg: float = 7.0
    width: int = 512
    height: int = 512
    seed: int | None = None  # None: a random seed is drawn when the job is built for the worker
    clip_skip: int = 1
    batch_count: int = 1
    # A1111's noise: source (GPU/CPU/NV), variation seed and strength (its subseed), seed resize from
    # (width, height) or None, eta noise seed delta (ENSD). See sampling/noise.py.
    rng: str = DEFAULT_RNG
    variation_seed: int | None = None  # None: a random one is drawn when the strength is above 0
    variation_strength: float = 0.0
    seed_resize_from: tuple[int, int] | None = None
    eta_noise_seed_delta: int = 0
    token_merging_ratio: float = 0.0  # A1111's "Token merging ratio" (0: off)
    ngms: float = 0.0  # A1111's "NGMS": skip the negative prompt's pass below this sigma (every other step)
    # img2img: the source picture's file (None: text to image), how it is fitted to width x height, and how
    # much of it is redrawn. init_image_hash is filled in by the job (the file's SHA-256, first 10 hex digits)
    # so the recipe names the exact source without embedding it.
    init_image: str | None = None
    init_image_hash: str | None = None
    resize_mode: str = RESIZE_MODES[0]
    denoising_strength: float = DEFAULT_DENOISING_STRENGTH  # img2img's, and the hires pass's when hires is on
    # Hires fix (A1111's txt2img "enable_hr"): a first pass at width x height, upscaled by hires_scale, or to
    # hires_resize (width, height; 0 = follow the other from the aspect ratio), then denoised again.
    hires: bool = False
    hires_scale: float = 2.0
    hires_resize: tuple[int, int] | None = None
    hires_upscaler: str = DEFAULT_HIRES_UPSCALER  # "Latent" family, "Lanczos", "Nearest", "None" or a model
    hires_steps: int = 0  # 0: the first pass's steps
    hires_sampler: str = ""  # "": the first pass's sampler
    hires_schedule_type: str = ""  # "": the first pass's schedule type
    hires_prompt: str = ""  # "": the first pass's prompt
    hires_negative_prompt: str = ""  # "": the first pass's negative prompt
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # unknown fields read back from PNGs

    def __post_init__(self):
        for name in ("prompt", "negative_prompt", "checkpoint"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise RequestError(f"{name.replace('_', ' ').capitalize()} must be text.")
            if len(value) > MAX_PROMPT_CHARS:
                raise RequestError(f"{name.replace('_', ' ').capitalize()} is {len(value):,} characters; "
                                   f"keep it under {MAX_PROMPT_CHARS:,}.")
        if not self.checkpoint.strip():
            raise RequestError("No checkpoint chosen: pick one in the model browser (ctrl+o) or use 'demo'.")
        if self.vae is not None and (not isinstance(self.vae, str) or not self.vae.strip()):
            object.__setattr__(self, "vae", None)
        loras = tuple(l if isinstance(l, LoraSpec) else LoraSpec(*l) for l in self.loras)
        object.__setattr__(self, "loras", loras)
        sampler, combined = split_sampler_name(self.sampler) if isinstance(self.sampler, str) else (None, None)
        if sampler is None:
            raise RequestError(f"Unknown sampler {self.sampler!r}: choose one of {', '.join(SAMPLER_NAMES)}.")
        schedule = schedule_label(self.schedule_type) if isinstance(self.schedule_type, str) else None
        if schedule is None:
            raise RequestError(f"Unknown schedule type {self.schedule_type!r}: choose one of "
                               f"{', '.join(SCHEDULE_TYPES)}.")
        if combined and schedule == "Automatic":  # "DPM++ 2M Karras": the old combined name
            schedule = combined
        # Kept as A1111 records it: "Automatic" resolved where its sampler table names a schedule (DPM++ 2M ->
        # Karras); none for the timestep samplers. A recipe then reads back as the request that wrote it.
        schedule = a1111_schedule(sampler, schedule)
        object.__setattr__(self, "sampler", sampler)
        object.__setattr__(self, "schedule_type", schedule)
        object.__setattr__(self, "steps", _integer("Steps", self.steps, *STEPS))
        object.__setattr__(self, "cfg", _number("CFG scale", self.cfg, *CFG))
        for name in ("width", "height"):
            value = _integer(name.capitalize(), getattr(self, name), *SIZE)
            if value % 8:
                raise RequestError(f"{name.capitalize()} {value} is not a multiple of 8: try {round(value / 8) * 8}.")
            object.__setattr__(self, name, value)
        if self.seed is not None:
            object.__setattr__(self, "seed", _integer("Seed", self.seed, 0, MAX_SEED))
        object.__setattr__(self, "clip_skip", _integer("Clip skip", self.clip_skip, *CLIP_SKIP))
        object.__setattr__(self, "batch_count", _integer("Batch count", self.batch_count, *BATCH_COUNT))
        self._check_noise()
        self._check_second_pass()

    def _check_noise(self) -> None:
        rng = self.rng.strip().upper() if isinstance(self.rng, str) else self.rng
        if rng not in RNG_SOURCES:
            raise RequestError(f"Unknown noise source (RNG) {self.rng!r}: choose one of {', '.join(RNG_SOURCES)}.")
        object.__setattr__(self, "rng", rng)
        if self.variation_seed is not None:
            object.__setattr__(self, "variation_seed", _integer("Variation seed", self.variation_seed, 0, MAX_SEED))
        object.__setattr__(self, "variation_strength",
                           _number("Variation strength", self.variation_strength, *VARIATION_STRENGTH))
        object.__setattr__(self, "seed_resize_from", _seed_resize(self.seed_resize_from))
        object.__setattr__(self, "eta_noise_seed_delta",
                           _integer("Eta noise seed delta (ENSD)", self.eta_noise_seed_delta, *ENSD))
        object.__setattr__(self, "token_merging_ratio",
                           _number("Token merging ratio", self.token_merging_ratio, *TOKEN_MERGING))
        object.__setattr__(self, "ngms", _number("NGMS", self.ngms, *NGMS))

    def _check_second_pass(self) -> None:
        for name in ("hires_prompt", "hires_negative_prompt"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise RequestError(f"{name.replace('_', ' ').capitalize()} must be text.")
            if len(value) > MAX_PROMPT_CHARS:
                raise RequestError(f"{name.replace('_', ' ').capitalize()} is {len(value):,} characters; "
                                   f"keep it under {MAX_PROMPT_CHARS:,}.")
        if self.init_image is not None and (not isinstance(self.init_image, str) or not self.init_image.strip()):
            object.__setattr__(self, "init_image", None)
        if self.init_image is None:
            object.__setattr__(self, "init_image_hash", None)
        mode = next((m for m in RESIZE_MODES if isinstance(self.resize_mode, str)
                     and m.lower() == self.resize_mode.strip().lower()), None)
        if mode is None:
            raise RequestError(f"Unknown resize mode {self.resize_mode!r}: choose one of {', '.join(RESIZE_MODES)}.")
        object.__setattr__(self, "resize_mode", mode)
        object.__setattr__(self, "denoising_strength",
                           _number("Denoising strength", self.denoising_strength, *DENOISING_STRENGTH))
        if not isinstance(self.hires, bool):
            raise RequestError("Hires fix must be on or off (true or false).")
        if self.hires and self.init_image is not None:
            raise RequestError("Hires fix is for text to image: clear the source image, or raise the img2img "
                               "size instead.")
        object.__setattr__(self, "hires_scale", _number("Hires upscale", self.hires_scale, *HIRES_SCALE))
        object.__setattr__(self, "hires_resize", _hires_resize(self.hires_resize))
        object.__setattr__(self, "hires_steps", _integer("Hires steps", self.hires_steps, *HIRES_STEPS))
        if not isinstance(self.hires_upscaler, str) or not self.hires_upscaler.strip():
            raise RequestError("Hires upscaler is empty: pick one (Latent, Lanczos, or a model in models/upscalers).")
        object.__setattr__(self, "hires_upscaler", self.hires_upscaler.strip())
        hires_sampler = self.hires_sampler.strip() if isinstance(self.hires_sampler, str) else None
        if hires_sampler is None or (hires_sampler and split_sampler_name(hires_sampler)[0] is None):
            raise RequestError(f"Unknown hires sampler {self.hires_sampler!r}: leave it empty for the first pass's "
                               f"sampler or choose one of {', '.join(SAMPLER_NAMES)}.")
        hires_schedule = self.hires_schedule_type.strip() if isinstance(self.hires_schedule_type, str) else None
        if hires_schedule is None or (hires_schedule and schedule_label(hires_schedule) is None):
            raise RequestError(f"Unknown hires schedule type {self.hires_schedule_type!r}: leave it empty for the "
                               f"first pass's or choose one of {', '.join(SCHEDULE_TYPES)}.")
        if hires_sampler:  # an old combined name ("DPM++ 2M Karras") splits as the first pass's does
            hires_sampler, combined = split_sampler_name(hires_sampler)
            hires_schedule = hires_schedule or combined or ""
        object.__setattr__(self, "hires_sampler", hires_sampler)
        object.__setattr__(self, "hires_schedule_type", schedule_label(hires_schedule) if hires_schedule else "")

    def hires_size(self) -> tuple[int, int, int, int]:
        """A1111's hires target (calculate_target_resolution): (width, height, truncate_x, truncate_y).

        By scale: int(size * scale). By "Hires resize" W x H: one side 0 follows the other through the first
        pass's aspect ratio (integer division); both set: the upscale covers W x H and the latent is
        cropped by truncate_x/y latent pixels (8 image pixels each), centred, to the requested aspect."""
        if self.hires_resize is None:
            return int(self.width * self.hires_scale), int(self.height * self.hires_scale), 0, 0
        target_w, target_h = self.hires_resize
        if target_h == 0:
            return target_w, target_w * self.height // self.width, 0, 0
        if target_w == 0:
            return target_h * self.width // self.height, target_h, 0, 0
        if self.width / self.height < target_w / target_h:
            width, height = target_w, target_w * self.height // self.width
        else:
            width, height = target_h * self.width // self.height, target_h
        return width, height, (width - target_w) // 8, (height - target_h) // 8

    def with_seed(self) -> GenerationRequest:
        """This request with a concrete seed (a random one if none was set), and a concrete variation seed
        when variations are on."""
        request = self
        if request.seed is None:
            request = replace(request, seed=random.SystemRandom().randint(0, MAX_SEED))
        if request.variation_strength and request.variation_seed is None:
            request = replace(request, variation_seed=random.SystemRandom().randint(0, MAX_SEED))
        return request

    def seeds(self) -> list[int]:
        """One seed per image of the batch as A1111 seeds them: seed, seed+1, ...; with a variation
        strength every image keeps the seed and the variation seed counts up instead."""
        base = self.with_seed().seed
        step = 0 if self.variation_strength else 1
        return [(base + i * step) % (MAX_SEED + 1) for i in range(self.batch_count)]

    def variation_seeds(self) -> list[int | None]:
        """One variation seed per image: variation seed, +1, ... (A1111's subseeds); None when off."""
        request = self.with_seed()
        if not request.variation_strength:
            return [None] * self.batch_count
        return [(request.variation_seed + i) % (MAX_SEED + 1) for i in range(self.batch_count)]

    def image_request(self, index: int) -> GenerationRequest:
        """The one-image request for image `index` of this (concretely seeded) batch."""
        request = self.with_seed()
        seed, variation = request.seeds()[index], request.variation_seeds()[index]
        return replace(request, seed=seed, batch_count=1,
                       variation_seed=request.variation_seed if variation is None else variation)

    def remaining(self, done: int) -> GenerationRequest:
        """The images of this batch after the first `done`, their seeds continuing where those stopped."""
        first = self.image_request(done)
        return replace(first, batch_count=self.batch_count - done)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["loras"] = [{"name": l.name, "weight": l.weight} for l in self.loras]
        if self.seed_resize_from is not None:
            data["seed_resize_from"] = list(self.seed_resize_from)
        if self.hires_resize is not None:
            data["hires_resize"] = list(self.hires_resize)
        if not data["extra"]:
            del data["extra"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        """Build from a dict (e.g. PNG JSON); unknown keys are kept in `extra`, bad values raise RequestError."""
        if not isinstance(data, dict):
            raise RequestError("Saved settings are not a JSON object.")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        data = dict(data)
        if "scheduler" in data and "schedule_type" not in data:  # the other name for it
            data["schedule_type"] = data.pop("scheduler")
        if "schedule_type" not in data and data.get("sampler") in OLD_PICOTUI_UNIFORM:
            data["schedule_type"] = "Uniform"  # what these names meant in picotui before the two fields
        kwargs = {k: v for k, v in data.items() if k in known}
        loras = kwargs.get("loras") or ()
        try:
            kwargs["loras"] = tuple(LoraSpec(l["name"], l.get("weight", DEFAULT_LORA_WEIGHT)) if isinstance(l, dict)
                                    else LoraSpec(*l) for l in loras)
        except (TypeError, KeyError) as exc:
            raise RequestError(f"Saved LoRA list is malformed ({exc}).") from None
        extra = {k: v for k, v in data.items() if k not in known and k != "extra"}
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json(cls, text: str) -> GenerationRequest:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise RequestError(f"Saved settings are not valid JSON ({exc.__class__.__name__}).") from None
        return cls.from_dict(data)


def _integer(label: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise RequestError(f"{label} must be a whole number between {lo} and {hi}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise RequestError(f"{label} must be a whole number between {lo} and {hi}, not {value.strip()[:20]!r}.") from None
    if not isinstance(value, int):
        raise RequestError(f"{label} must be a whole number between {lo} and {hi}.")
    if not lo <= value <= hi:
        raise RequestError(f"{label} {value} is out of range: use {lo} to {hi}.")
    return value


def _size_pair(value: Any, label: str, example: str, hint: str = "") -> tuple[Any, Any] | None:
    """The two sides of a (width, height) setting given as a pair or "WxH" ("×" too), not yet checked as
    numbers; None for None, "" and 0x0 (off, as in A1111)."""
    if value is None or value == "" or value in ((0, 0), [0, 0]):
        return None
    if isinstance(value, str):
        parts = value.lower().replace("×", "x").split("x")
        if len(parts) != 2:
            raise RequestError(f"{label} must be WIDTHxHEIGHT, e.g. {example}, not {value.strip()[:20]!r}.")
        value = parts
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise RequestError(f"{label} must be a width and a height, e.g. {example}{hint}.")
    return value[0], value[1]


def _seed_resize(value: Any) -> tuple[int, int] | None:
    """(width, height) in pixels, from a pair or "WxH"; None, "" and 0x0 mean off (as in A1111)."""
    pair = _size_pair(value, "Seed resize from", "512x768")
    if pair is None:
        return None
    width = _integer("Seed resize from width", pair[0], *SIZE)
    height = _integer("Seed resize from height", pair[1], *SIZE)
    return (width, height)


def _hires_resize(value: Any) -> tuple[int, int] | None:
    """A1111's "Hires resize" (width, height) from a pair or "WxH"; either side 0 follows the other, both 0
    (or None, "") means upscale by the scale instead."""
    pair = _size_pair(value, "Hires resize", "1024x1024", " (0 follows the other)")
    if pair is None:
        return None
    sides = []
    for label, side in zip(("width", "height"), pair):
        side = _integer(f"Hires resize {label}", side, 0, SIZE[1])
        if side and side < SIZE[0]:
            raise RequestError(f"Hires resize {label} {side} is too small: use 0 (follow the other side) or "
                               f"{SIZE[0]} to {SIZE[1]}.")
        sides.append(side)
    if sides == [0, 0]:
        return None
    return (sides[0], sides[1])


def _number(label: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise RequestError(f"{label} must be a number between {lo:g} and {hi:g}.")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise RequestError(f"{label} must be a number between {lo:g} and {hi:g}, not {value.strip()[:20]!r}.") from None
    if not isinstance(value, (int, float)) or value != value:  # NaN fails the second test
        raise RequestError(f"{label} must be a number between {lo:g} and {hi:g}.")
    if not lo <= value <= hi:
        raise RequestError(f"{label} {value:g} is out of range: use {lo:g} to {hi:g}.")
    return float(value)
