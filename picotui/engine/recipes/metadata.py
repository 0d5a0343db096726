"""Recipes read back from images: A1111's "parameters" text read as A1111 reads it (infotext.py writes it),
picotui's own "picotui" chunk (the full request as JSON, preferred when there), other tools' settings
(foreign.py), and a recipe checked against the installed models.

When reading, the last line counts as settings only if it holds at least 3 `key: value` pairs; old combined
sampler names ("DPM++ 2M Karras") are read as sampler + schedule type.

No torch here: the UI imports this module.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from picotui.engine.errors import ModelError, PicoError, RequestError, one_line
from picotui.engine.recipes.infotext import INIT_IMAGE_KEYS, PARAMETERS_CHUNK, PICOTUI_CHUNK, model_stem
from picotui.engine.recipes.png_text import read_png_text
from picotui.engine.request import GenerationRequest
from picotui.engine.sampling.samplers import DEFAULT_SAMPLER, SAMPLERS, a1111_schedule, split_sampler_name
from picotui.engine.sampling.schedules import schedule_label

# Keys that describe the files or the program, not the picture: read (or checked), never "unmatched".
INFORMATIONAL = {"Model hash", "VAE hash", "Lora hashes", "TI hashes", "Version", "Batch size", "Batch pos",
                 "Schedule type", "Sampler", "Size", "Prompt", "Negative prompt"}
# A1111's keys for its speed settings -> request fields (numbers; absent means off).
A1111_SPEED_KEYS = {"Token merging ratio": "token_merging_ratio", "NGMS": "ngms"}
_KEY = re.compile(r"\w[\w \-/]*")
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_JSON = json.JSONDecoder()


@dataclass
class Recipe:
    request: GenerationRequest
    unmatched: list[str] = field(default_factory=list)  # what could not be reproduced, one line each
    source: str = "a1111"  # "picotui" | "a1111" | another tool's (foreign.LABELS names each)
    parameters: str = ""  # the A1111 parameters text as stored in the file ("" if none)


# ---- writing ---------------------------------------------------------------------------------------

def parse_parameters(text: str) -> dict[str, str]:
    """A1111's reading of a parameters text: {"Prompt", "Negative prompt", key: value...} (values unquoted)."""
    *lines, last = str(text).strip().split("\n")
    pairs = _pairs(last)
    if len(pairs) < 3:
        lines.append(last)
        pairs = []
    prompt, negative, in_negative = [], [], False
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
            return _check_files(recipe, library, parse_parameters(parameters) if parameters.strip() else {})
    other = foreign.from_other_tools(texts)
    if other is not None:  # mapped onto A1111's keys, so one reader names what cannot be reproduced
        source, params, more = other
        request, mapped = request_from_parameters(params)
        recipe = Recipe(request, notes + more + mapped, source, "")
        return _check_files(recipe, library, params) if library is not None else recipe
    if not parameters.strip():
        raise PicoError(f"{path.name} has no generation settings (no A1111, ComfyUI, InvokeAI, NovelAI, Fooocus or "
                        f"picotui metadata): the metadata was stripped, or another tool made it.", "metadata")
    params = parse_parameters(parameters)
    request, more = request_from_parameters(params)
    recipe = Recipe(request, notes + more, "a1111", parameters)
    return _check_files(recipe, library, params) if library is not None else recipe


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
            converted = _to_number(value, integer=name not in ("cfg", *A1111_SPEED_KEYS.values()))
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
    _second_pass_from_parameters(params, kwargs, take, notes)
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
            converted = _to_number(value, integer=integer)
            take(name, key, converted if converted is not None else value, value)
    if params.get("Seed resize from", "").strip():
        take("seed_resize_from", "Seed resize from", params["Seed resize from"].strip())


HIRES_KEYS = ("Hires upscale", "Hires resize", "Hires resize-1", "Hires resize-2", "Hires steps", "Hires upscaler",
              "Hires sampler", "Hires schedule type", "Hires prompt", "Hires negative prompt")
SECOND_PASS_KEYS = ("Denoising strength", *HIRES_KEYS, *INIT_IMAGE_KEYS, "Init image hash", "Mask blur")


def _second_pass_from_parameters(params: dict[str, str], kwargs: dict, take, notes: list[str]) -> None:
    """A1111's second-pass keys onto the request, read as A1111's paste does (infotext_utils): hires fix is on
    when there is a Denoising strength and one of Hires upscale, Hires upscaler, Hires resize; a Denoising
    strength without them is an img2img recipe, whose source picture is not in the file (one line says which
    to pick)."""
    strength = params.get("Denoising strength", "").strip()
    if strength:
        converted = _to_number(strength, integer=False)
        take("denoising_strength", "Denoising strength", converted if converted is not None else strength, strength)
    resize = _hires_resize_value(params)
    hires_keys = [k for k in HIRES_KEYS if params.get(k, "").strip()]
    if strength and (resize or any(k in hires_keys for k in ("Hires upscale", "Hires upscaler"))):
        _hires_from_parameters(params, kwargs, take, notes, resize)
    elif hires_keys:
        notes.append(f"{hires_keys[0]}: {one_line(params[hires_keys[0]], 80)} (hires fix without a Denoising "
                     f"strength: A1111 leaves it off, and so does picotui)")
    elif strength:
        _img2img_from_parameters(params, take, notes)
    if params.get("Mask blur", "").strip():  # A1111 writes it for inpainting (a mask) only
        notes.append(f"Mask blur: {one_line(params['Mask blur'], 20)} (an inpainting recipe: picotui has no "
                     f"inpainting; image to image without the mask redraws the whole picture)")


def _hires_resize_value(params: dict[str, str]) -> str | None:
    """"Hires resize" as "WxH": A1111 writes one key and reads it back as "Hires resize-1" and "-2" (any
    "WxH" value splits so); either form is accepted. None when absent or 0x0 (by scale)."""
    value = params.get("Hires resize", "").strip()
    if not value and (params.get("Hires resize-1", "").strip() or params.get("Hires resize-2", "").strip()):
        value = f"{params.get('Hires resize-1', '0').strip() or '0'}x{params.get('Hires resize-2', '0').strip() or '0'}"
    return None if not value or value.replace(" ", "") == "0x0" else value


def _hires_from_parameters(params: dict[str, str], kwargs: dict, take, notes: list[str], resize: str | None) -> None:
    kwargs["hires"] = True
    if "denoising_strength" not in kwargs:  # A1111's hires default when the strength could not be read
        from picotui.engine.request import DEFAULT_HIRES_DENOISING_STRENGTH

        kwargs["denoising_strength"] = DEFAULT_HIRES_DENOISING_STRENGTH
    scale = params.get("Hires upscale", "").strip()
    if scale:
        converted = _to_number(scale, integer=False)
        take("hires_scale", "Hires upscale", converted if converted is not None else scale, scale)
    if resize:
        take("hires_resize", "Hires resize", resize)
    steps = params.get("Hires steps", "").strip()
    if steps:
        converted = _to_number(steps, integer=True)
        take("hires_steps", "Hires steps", converted if converted is not None else steps, steps)
    if params.get("Hires upscaler", "").strip():
        take("hires_upscaler", "Hires upscaler", params["Hires upscaler"].strip())
    for key, name in (("Hires prompt", "hires_prompt"), ("Hires negative prompt", "hires_negative_prompt")):
        if params.get(key, ""):
            take(name, key, params[key])
    _hires_sampler_from_parameters(params, kwargs, notes)


def _hires_sampler_from_parameters(params: dict[str, str], kwargs: dict, notes: list[str]) -> None:
    """Hires sampler and schedule type as A1111 reads them (sd_samplers.get_hr_sampler_and_scheduler): each is
    "the same as the first pass" unless named; an old combined name ("DPM++ 2M Karras") carries its schedule;
    without "Hires schedule type" the hires pass uses the first pass's schedule type."""
    first_sampler = kwargs.get("sampler", GenerationRequest.__dataclass_fields__["sampler"].default)
    first = GenerationRequest(sampler=first_sampler, schedule_type=kwargs.get("schedule_type", "Automatic"))
    raw_sampler = params.get("Hires sampler", "").strip()
    raw_schedule = params.get("Hires schedule type", "").strip()
    if not raw_sampler and not raw_schedule:
        return
    schedule_key = raw_schedule or params.get("Schedule type")
    name, schedule, note = sampler_from_a1111(raw_sampler or first.sampler, schedule_key)
    if name is None:
        notes.append(f"Hires sampler: {one_line(raw_sampler, 60)} (picotui has no such sampler; the hires pass uses "
                     f"the first pass's)")
        return
    if note or (raw_schedule and schedule_label(raw_schedule) is None):  # a schedule type picotui lacks
        notes.append(f"Hires schedule type: {one_line(schedule_key, 40)} (not supported by picotui; the hires pass "
                     f"uses the first pass's)")
        schedule = ""
    resolved = a1111_schedule(name, schedule) if schedule else first.schedule_type
    kwargs["hires_sampler"] = name if name != first.sampler else ""
    kwargs["hires_schedule_type"] = resolved if resolved != a1111_schedule(name, first.schedule_type) else ""


def _img2img_from_parameters(params: dict[str, str], take, notes: list[str]) -> None:
    """An img2img recipe: its strength and resize mode are read; its source picture never is in the file."""
    if params.get("Resize mode", "").strip():
        take("resize_mode", "Resize mode", params["Resize mode"].strip())
    name = params.get("Init image", "").strip()
    if name:
        file_hash = params.get("Init image file hash", "").strip()
        known = f" (file hash {one_line(file_hash, 20)})" if file_hash else ""
        notes.append(f"Init image: {one_line(name, 80)} (image to image: the source picture is not in the recipe; "
                     f"pick {one_line(name, 80)}{known} as the source)")
    else:
        md5 = params.get("Init image hash", "").strip()  # A1111's MD5 of the pixels, when it kept a copy
        known = f" (A1111 kept a copy named {one_line(md5, 40)}.png in its init-images folder)" if md5 else ""
        notes.append(f"Denoising strength: {one_line(params['Denoising strength'], 20)} (an image to image recipe: "
                     f"the source picture is not in the file; pick it as the source{known})")


def hash_pairs(text: str) -> dict[str, str]:
    """A1111's "Lora hashes" / "TI hashes": 'a: 0123456789ab, b: ba9876543210' -> {"a": ..., "b": ...}."""
    out = {}
    for part in str(text).split(","):
        name, sep, value = part.rpartition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def _check_files(recipe: Recipe, library, params: dict) -> Recipe:
    """Report model files the recipe names that this library does not have (by name, then cached hash);
    a file found by its hash under another name takes that name in the request."""
    from dataclasses import replace

    request, notes = recipe.request, recipe.unmatched

    def look(name: str, kind: str, short_hash: str | None, label: str) -> str | None:
        try:
            return library.resolve(name, kind).name
        except ModelError as exc:
            found = library.find_by_hash(short_hash, kind) if short_hash else None
            if found is not None:
                return found.name
            notes.append(f"{label}: {one_line(name, 80)} ({one_line(exc, 160)})")
            return None

    def renamed(name: str, found: str | None) -> bool:
        return bool(found) and found != name and model_stem(found) != model_stem(name)

    if request.checkpoint.strip().lower() != "demo":
        found = look(request.checkpoint, "checkpoint", params.get("Model hash"), "Model")
        if renamed(request.checkpoint, found):
            request = replace(request, checkpoint=found)
    if request.vae:
        found = look(request.vae, "vae", params.get("VAE hash"), "VAE")
        if renamed(request.vae, found):
            request = replace(request, vae=found)
    hashes = hash_pairs(params.get("Lora hashes", ""))
    names = [l.name for l in request.loras]
    try:
        from picotui.engine.prompting.prompts import extract_lora_tags

        names += [l.name for l in extract_lora_tags(request.prompt)[1]]
    except (ImportError, ValueError):
        pass
    for name in dict.fromkeys(names):
        # A1111 keys Lora hashes by the name as written in the tag (without ':' and ',')
        short = hashes.get(name.replace(":", "").replace(",", "")) or hashes.get(model_stem(name))
        found = look(name, "lora", short, "LoRA")
        if renamed(name, found):
            stem = model_stem(found)
            request = replace(request, prompt=_rename_lora_tags(request.prompt, name, stem),
                              loras=tuple(replace(l, name=stem) if l.name == name else l for l in request.loras))
    _check_embeddings(hash_pairs(params.get("TI hashes", "")), library, notes)
    _check_upscaler(request, library, notes)
    _check_init_image(request, notes)
    return Recipe(request, notes, recipe.source, recipe.parameters)


def _check_upscaler(request: GenerationRequest, library, notes: list[str]) -> None:
    """A hires upscaler model the library lacks (models/upscalers): one line, as for a missing LoRA. The Latent
    family and the built-in resizes (None, Lanczos, Nearest) need no file."""
    from picotui.engine.upscaling.upscalers import Upscalers, builtin_name, is_latent

    name = request.hires_upscaler
    if not request.hires or is_latent(name) or builtin_name(name):
        return
    try:
        Upscalers(library).resolve(name)  # by file name, or A1111's name ("R-ESRGAN 4x+") of the files it names
    except (ModelError, RequestError) as exc:
        notes.append(f"Hires upscaler: {one_line(name, 80)} ({one_line(exc, 160)}; or pick Latent or Lanczos)")


def _check_init_image(request: GenerationRequest, notes: list[str]) -> None:
    """An img2img recipe's source picture: missing, or changed since (its file hash differs), is one line."""
    if request.init_image is None:
        return
    from picotui.engine.models.hashing import AUTOV2_LENGTH, sha256_file

    path = Path(request.init_image).expanduser()
    try:
        digest = (sha256_file(path) or "")[:AUTOV2_LENGTH]
    except OSError:
        notes.append(f"Init image: {one_line(path.name, 80)} (not found at {one_line(path, 120)}: pick the source "
                     f"picture)")
        return
    recorded = (request.init_image_hash or "").strip().lower()
    if recorded and recorded != digest:
        notes.append(f"Init image: {one_line(path.name, 80)} (changed since the recipe was made: its file hash is "
                     f"{digest}, the recipe's {one_line(recorded, 20)}; the picture will differ)")


def _rename_lora_tags(prompt: str, old: str, new: str) -> str:
    """The prompt with its <lora:old:...> tags naming `new` instead (weights and the rest kept)."""
    from picotui.engine.prompting.prompts import _LORA_KINDS, strip_extra_networks

    for kind, args, tag in strip_extra_networks(prompt)[1]:
        if kind in _LORA_KINDS and args[0].strip() == old:
            head = tag.index(":") + 1
            prompt = prompt.replace(tag, tag[:head] + args[0].replace(old, new, 1) + tag[head + len(args[0]):])
    return prompt


def _check_embeddings(ti_hashes: dict[str, str], library, notes: list[str]) -> None:
    """Embeddings the A1111 prompt used (its TI hashes) that this library lacks under that name."""
    if not ti_hashes:
        return
    stems = {mf.stem.lower() for mf in library.files("embedding", usable_only=True)}
    for name, short in ti_hashes.items():
        if name.lower() in stems:
            continue
        found = library.find_by_hash(short, "embedding") if short else None
        if found is not None:
            notes.append(f"Embedding: {one_line(name, 80)} (it is {one_line(found.name, 80)} here: rename the file to "
                         f"{one_line(name, 80)}{Path(found.name).suffix} for the prompt to use it)")
        else:
            notes.append(f"Embedding: {one_line(name, 80)} (not in models/embeddings: the prompt reads it as plain words)")


def _to_number(text: str, integer: bool):
    try:
        value = float(text)
    except ValueError:
        return None
    if integer:
        return int(value) if value.is_integer() else value
    return value



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
