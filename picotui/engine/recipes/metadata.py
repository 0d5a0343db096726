"""Recipes read back from images: the request that reproduces a picture, from picotui's own "picotui" chunk
(the full request as JSON, preferred when there), A1111's "parameters" text (parameters.py reads it as A1111
does; infotext.py writes it; second_pass_keys.py maps its img2img and hires keys) or other tools' settings
(foreign.py), optionally checked against the installed models (library_check.py).

No torch here: the UI imports this module.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from picotui.engine.errors import PicoError, RequestError, one_line
from picotui.engine.recipes.infotext import PARAMETERS_CHUNK, PICOTUI_CHUNK
from picotui.engine.recipes.library_check import check_files
from picotui.engine.recipes.parameters import hash_pairs, parse_parameters, sampler_from_a1111, to_number
from picotui.engine.recipes.png_text import read_png_text
from picotui.engine.recipes.second_pass_keys import SECOND_PASS_KEYS, second_pass_from_parameters
from picotui.engine.request import GenerationRequest

# Read from here by the UI, the CLI, the plots and the tests: the reader's whole surface in one place.
__all__ = ["Recipe", "read_recipe", "request_from_parameters", "parse_parameters", "sampler_from_a1111",
           "hash_pairs", "sanitize_for_terminal", "INFORMATIONAL", "A1111_SPEED_KEYS", "NOISE_KEYS"]

# Keys that describe the files or the program, not the picture: read (or checked), never "unmatched".
INFORMATIONAL = {"Model hash", "VAE hash", "Lora hashes", "TI hashes", "Version", "Batch size", "Batch pos",
                 "Schedule type", "Sampler", "Size", "Prompt", "Negative prompt"}
# A1111's keys for its speed settings -> request fields (numbers; absent means off).
A1111_SPEED_KEYS = {"Token merging ratio": "token_merging_ratio", "NGMS": "ngms"}
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@dataclass
class Recipe:
    request: GenerationRequest
    unmatched: list[str] = field(default_factory=list)  # what could not be reproduced, one line each
    source: str = "a1111"  # "picotui" | "a1111" | another tool's (foreign.LABELS names each)
    parameters: str = ""  # the A1111 parameters text as stored in the file ("" if none)


# ---- reading a PNG ---------------------------------------------------------------------------------

def read_recipe(path, library=None) -> Recipe:
    """The request that reproduces the PNG at `path` (ours or A1111's), plus what could not be matched.

    With a `library`, the named checkpoint, VAE, LoRAs and embeddings are looked up (by name, then by the
    recorded hashes, which also find renamed files) and missing ones reported.
    Raises PicoError (one line) for a missing, unreadable or metadata-less file.
    """
    from picotui.engine.recipes import foreign

    path = Path(path)
    # JPEG/WebP: A1111's text in EXIF; PNG: text chunks (picotui's, A1111's, or another tool's)
    texts = foreign.exif_texts(path) if foreign.is_exif_image(path) else read_png_text(path)
    parameters = texts.get(PARAMETERS_CHUNK, "")
    notes: list[str] = []
    if texts.get("postprocessing", "").strip():  # A1111's Extras (and `picotui upscale`) keep the recipe, add this
        notes.append(f"postprocessing: {one_line(texts['postprocessing'], 120)} (upscaled after it was made: the "
                     f"recipe makes the picture before; `picotui upscale` repeats the rest)")
    if PICOTUI_CHUNK in texts:
        try:
            request = _picotui_request(texts[PICOTUI_CHUNK])
        except (ValueError, TypeError, AttributeError) as exc:  # RequestError is a ValueError
            if not parameters:
                raise PicoError(f"{path.name}: its picotui settings cannot be used ({one_line(exc, 120)}).",
                                "metadata") from None
            notes.append(f"picotui settings ignored ({one_line(exc, 120)}); read the A1111 text instead")
        else:
            notes += [f"{one_line(k, 40) or repr(k)}: {one_line(v, 80)} (unknown setting)"
                      for k, v in request.extra.items()]
            recipe = Recipe(request, notes, "picotui", parameters)
            if library is None:
                return recipe
            return _checked(recipe, library, parse_parameters(parameters) if parameters.strip() else {})
    other = foreign.from_other_tools(texts)
    if other is not None:  # mapped onto A1111's keys, so one reader names what cannot be reproduced
        source, params, more = other
        request, mapped = request_from_parameters(params)
        recipe = Recipe(request, notes + more + mapped, source, "")
        return _checked(recipe, library, params) if library is not None else recipe
    if not parameters.strip():
        raise PicoError(f"{path.name} has no generation settings (no A1111, ComfyUI, InvokeAI, NovelAI, Fooocus or "
                        f"picotui metadata): the metadata was stripped, or another tool made it.", "metadata")
    params = parse_parameters(parameters)
    request, more = request_from_parameters(params)
    recipe = Recipe(request, notes + more, "a1111", parameters)
    return _checked(recipe, library, params) if library is not None else recipe


def _checked(recipe: Recipe, library, params: dict) -> Recipe:
    """The recipe with the files it names looked up in `library` (library_check.py)."""
    notes = list(recipe.unmatched)
    request = check_files(recipe.request, library, params, notes)
    return Recipe(request, notes, recipe.source, recipe.parameters)


def _picotui_request(text: str) -> GenerationRequest:
    """The request in a picotui chunk. ValueError (one line) when it is not usable JSON or not a request."""
    try:
        data = json.loads(text)
    except RecursionError:  # hostile or damaged: nesting deeper than Python's parser goes
        raise ValueError("its JSON is nested too deeply to read") from None
    body = data.get("request", data) if isinstance(data, dict) else data
    if isinstance(body, dict) and "rng" not in body:
        body = {**body, "rng": "CPU"}  # picotui before the noise sources drew every picture's noise on the CPU
    try:
        return GenerationRequest.from_dict(body)
    except RecursionError:
        raise ValueError("a value is nested too deeply to read") from None


def request_from_parameters(params: dict[str, str]) -> tuple[GenerationRequest, list[str]]:
    """Map A1111's keys onto a request. Values picotui cannot take are reported, never guessed."""
    kwargs: dict = {}
    notes: list[str] = []

    def take(field_name: str, key: str, value, raw=None):
        try:
            GenerationRequest(**{field_name: value})  # validates this one field against our bounds
        except (RequestError, TypeError) as exc:
            notes.append(f"{key}: {one_line(raw if raw is not None else value, 80)} ({one_line(exc, 120)})")
            return
        kwargs[field_name] = value

    take("prompt", "Prompt", params.get("Prompt", ""))
    take("negative_prompt", "Negative prompt", params.get("Negative prompt", ""))
    for key, name in (("Steps", "steps"), ("CFG scale", "cfg"), ("Seed", "seed"), ("Clip skip", "clip_skip"),
                      *A1111_SPEED_KEYS.items()):
        if key in params:
            value = params[key].strip()
            converted = to_number(value, integer=name not in ("cfg", *A1111_SPEED_KEYS.values()))
            take(name, key, converted if converted is not None else value, value)
    if "Size" in params:
        m = _SIZE.match(params["Size"].strip())
        if m:
            take("width", "Size", int(m[1]), params["Size"])
            take("height", "Size", int(m[2]), params["Size"])
        else:
            notes.append(f"Size: {one_line(params['Size'], 80)} (not WIDTHxHEIGHT)")
    if "Sampler" in params:
        name, schedule, note = sampler_from_a1111(params["Sampler"], params.get("Schedule type"))
        if name:
            kwargs["sampler"], kwargs["schedule_type"] = name, schedule
        if note:
            notes.append(one_line(note, 200))  # the names come from the file: one line, whatever they hold
    if params.get("Model", "").strip():
        take("checkpoint", "Model", params["Model"].strip())
    else:
        notes.append("Model: not recorded (using the demo model; pick a checkpoint)")
    if params.get("VAE", "").strip() and params["VAE"].strip().lower() not in ("none", "automatic"):
        kwargs["vae"] = params["VAE"].strip()
    _noise_from_parameters(params, take, notes)
    second_pass_from_parameters(params, kwargs, take, notes)
    for key, value in params.items():
        if key not in INFORMATIONAL and key not in ("Steps", "CFG scale", "Seed", "Clip skip", "Model", "VAE",
                                                    *NOISE_KEYS, *A1111_SPEED_KEYS, *SECOND_PASS_KEYS):
            notes.append(f"{key}: {one_line(value, 80)} (not supported by picotui)")
    try:
        return GenerationRequest(**kwargs), notes
    except RequestError as exc:  # each field passed alone; together they still must
        notes.append(f"settings ignored: {exc}")
        return GenerationRequest(prompt=kwargs.get("prompt", ""), negative_prompt=kwargs.get("negative_prompt", "")), notes


NOISE_KEYS = ("RNG", "ENSD", "Variation seed", "Variation seed strength", "Seed resize from")


def _noise_from_parameters(params: dict[str, str], take, notes: list[str]) -> None:
    """A1111's noise keys onto the request; no RNG key means GPU, A1111's default."""
    rng = params.get("RNG", "GPU").strip()
    take("rng", "RNG", rng)
    for key, name, integer in (("ENSD", "eta_noise_seed_delta", True), ("Variation seed", "variation_seed", True),
                               ("Variation seed strength", "variation_strength", False)):
        value = params.get(key, "").strip()
        if value:
            converted = to_number(value, integer=integer)
            take(name, key, converted if converted is not None else value, value)
    if params.get("Seed resize from", "").strip():
        take("seed_resize_from", "Seed resize from", params["Seed resize from"].strip())


def sanitize_for_terminal(text: str, *, keep_newlines: bool = True) -> str:
    """Text that is safe to print: control characters (ESC, CR, BEL...), bidi overrides and undecodable
    bytes from file names are shown as visible escapes (\\x1b), so metadata can never drive the terminal."""
    text = str(text)
    if not keep_newlines:
        text = text.replace("\n", " ")

    def escape(m: re.Match) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escape, text)
