"""A1111's second-pass keys read back into a request (img2img's Denoising strength, the Hires keys), as
A1111's paste reads them. infotext.py writes them; metadata.request_from_parameters calls this module.

No torch here: the UI imports this module.
"""

from __future__ import annotations

from picotui.engine.errors import one_line
from picotui.engine.recipes.infotext import INIT_IMAGE_KEYS
from picotui.engine.recipes.parameters import sampler_from_a1111, to_number
from picotui.engine.request import GenerationRequest
from picotui.engine.sampling.samplers import a1111_schedule
from picotui.engine.sampling.schedules import schedule_label

HIRES_KEYS = ("Hires upscale", "Hires resize", "Hires resize-1", "Hires resize-2", "Hires steps", "Hires upscaler",
              "Hires sampler", "Hires schedule type", "Hires prompt", "Hires negative prompt")
SECOND_PASS_KEYS = ("Denoising strength", *HIRES_KEYS, *INIT_IMAGE_KEYS, "Init image hash", "Mask blur")


def second_pass_from_parameters(params: dict[str, str], kwargs: dict, take, notes: list[str]) -> None:
    """A1111's second-pass keys onto the request, read as A1111's paste does (infotext_utils): hires fix is on
    when there is a Denoising strength and one of Hires upscale, Hires upscaler, Hires resize; a Denoising
    strength without them is an img2img recipe, whose source picture is not in the file (one line says which
    to pick)."""
    strength = params.get("Denoising strength", "").strip()
    if strength:
        converted = to_number(strength, integer=False)
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
        converted = to_number(scale, integer=False)
        take("hires_scale", "Hires upscale", converted if converted is not None else scale, scale)
    if resize:
        take("hires_resize", "Hires resize", resize)
    steps = params.get("Hires steps", "").strip()
    if steps:
        converted = to_number(steps, integer=True)
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
