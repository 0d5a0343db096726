"""Recipes from other tools' images, mapped onto A1111's keys so one reader (metadata.request_from_parameters)
turns them into a request and names whatever picotui cannot reproduce.

- JPEG and WebP: A1111 (and civitai) store the parameters text in the EXIF UserComment (tag 0x9286 in the
  Exif IFD), as EXIF 2.3 defines it: an 8-byte character-code prefix, `UNICODE\\0` followed by UTF-16
  (piexif writes big-endian; some tools write little-endian), or `ASCII\\0\\0\\0`, or 8 zero bytes.
  ComfyUI's WebP saver writes its graph as "prompt:{...}" in the IFD0 Model tag.
- ComfyUI PNGs: the `prompt` chunk holds the executed graph; comfyui.py reads it (prompts, checkpoint, LoRAs,
  size, image to image and hires fix passes).
- InvokeAI PNGs: the `invokeai_metadata` chunk (JSON, 3.x and 4.x keys).
- NovelAI PNGs: `Software: NovelAI` and the `Comment` chunk (JSON: prompt, uc, steps, scale, seed, ...).
- Fooocus PNGs: the `parameters` chunk as JSON (its log scheme; `fooocus_scheme: a1111` files hold plain
  A1111 text and need nothing from here).

sd-parsers (PyPI) reads these too, but its A1111 splitter breaks quoted values, it decodes every UserComment
as big-endian UTF-16, it does not recognise Fooocus' own scheme, and InvokeAI 4's model entry is dropped:
mapping its normalised output would have been as long as reading the documented formats directly.

This module holds the EXIF reading, the dispatch on other tools' PNG chunks, and the InvokeAI, NovelAI and
Fooocus readers; the shared field helpers are in foreign_fields.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from picotui.engine.errors import PicoError, one_line
from picotui.engine.recipes.comfyui import _comfyui
from picotui.engine.recipes.foreign_fields import K_SAMPLERS, _json, _lora_tags, _put, _sampler, _text

JPEG_MAGIC = b"\xff\xd8\xff"
EXIF_IFD, USER_COMMENT = 0x8769, 0x9286
COMFY_MODEL_TAG, COMFY_MAKE_TAG = 0x0110, 0x010F  # IFD0 Model and Make: where ComfyUI's WebP saver puts its JSON

LABELS = {"picotui": "picotui", "a1111": "A1111 text", "comfyui": "ComfyUI workflow", "invokeai": "InvokeAI metadata",
          "novelai": "NovelAI metadata", "fooocus": "Fooocus metadata"}

# InvokeAI's scheduler names: "_k" means Karras sigmas.
INVOKE_SAMPLERS = {"euler": "Euler", "euler_a": "Euler a", "lms": "LMS", "heun": "Heun", "kdpm_2": "DPM2",
                   "kdpm_2_a": "DPM2 a", "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE",
                   "dpmpp_sde": "DPM++ SDE", "ddim": "DDIM", "pndm": "PLMS", "unipc": "UniPC", "lcm": "LCM"}


# ---- A1111 text in EXIF (JPEG, WebP) ------------------------------------------------------------------

def is_exif_image(path: Path) -> bool:
    """Whether the file is a JPEG or WebP (by its first bytes; a missing file is left to the PNG reader)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head.startswith(JPEG_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def exif_texts(path: Path) -> dict[str, str]:
    """A JPEG's or WebP's recipe texts, named like the PNG chunks that hold them elsewhere: `parameters`
    (A1111's text, from the EXIF UserComment) and ComfyUI's `prompt`/`workflow` (its WebP saver writes them as
    "prompt:{...}" in the Model tag and "workflow:{...}" in Make). Raises PicoError (one line) when the image
    cannot be read at all."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            exif = image.getexif()
            raw = exif.get_ifd(EXIF_IFD).get(USER_COMMENT)
            texts = {"parameters": decode_user_comment(raw)}
            for tag in (COMFY_MODEL_TAG, COMFY_MAKE_TAG):
                value = exif.get(tag)
                name, sep, rest = value.partition(":") if isinstance(value, str) else ("", "", "")
                if sep and name in ("prompt", "workflow"):
                    texts[name] = rest
    except PermissionError:
        raise PicoError(f"{path.name} cannot be read (permission denied).", "metadata") from None
    except Exception as exc:  # Pillow raises many kinds on damaged files; each is one line for the user
        raise PicoError(f"{path.name} is a damaged image ({one_line(exc, 100)}): its settings cannot be read.",
                        "metadata") from None
    return texts


def decode_user_comment(raw) -> str:
    """EXIF UserComment bytes -> text, by its character-code prefix; anything undecodable is dropped."""
    if isinstance(raw, str):  # Pillow hands back text for some files
        return raw.strip("\0")
    if not isinstance(raw, (bytes, bytearray)):
        return ""
    prefix, body = bytes(raw[:8]), bytes(raw[8:])
    if prefix == b"UNICODE\0":
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return body.decode("utf-16", errors="ignore").strip("\0")
        # no byte-order mark: ASCII text has its zero bytes first in big-endian, last in little-endian
        little = body[1::2].count(0) > body[0::2].count(0)
        return body.decode("utf-16-le" if little else "utf-16-be", errors="ignore").strip("\0")
    if prefix in (b"ASCII\0\0\0", b"\0" * 8):
        return body.decode("utf-8", errors="ignore").strip("\0")
    return bytes(raw).decode("utf-8", errors="ignore").strip("\0")  # no prefix at all (some tools)


# ---- other tools' PNG chunks ----------------------------------------------------------------------------

def from_other_tools(texts: dict[str, str]) -> tuple[str, dict[str, str], list[str]] | None:
    """(source, A1111-keyed parameters, notes) from a ComfyUI, InvokeAI, NovelAI or Fooocus PNG's chunks, or
    None when none of them wrote it. Raises PicoError (one line) when their data is damaged."""
    if "invokeai_metadata" in texts:
        return "invokeai", *_invokeai(_json(texts["invokeai_metadata"], "InvokeAI"))
    if texts.get("Software", "").strip() == "NovelAI" and "Comment" in texts:
        return "novelai", *_novelai(_json(texts["Comment"], "NovelAI"), texts)
    parameters = texts.get("parameters", "").lstrip()
    if parameters.startswith("{") and (texts.get("fooocus_scheme") == "fooocus" or '"Fooocus' in parameters):
        return "fooocus", *_fooocus(_json(parameters, "Fooocus"))
    if "prompt" in texts and texts["prompt"].lstrip().startswith("{") and not parameters.strip():
        return "comfyui", *_comfyui(_json(texts["prompt"], "ComfyUI"))
    return None


def _invokeai(data: dict) -> tuple[dict, list[str]]:
    params, notes = {}, []
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    loras = []
    for entry in data.get("loras") or []:
        if isinstance(entry, dict):
            lora = entry.get("model") or entry.get("lora") or {}
            name = lora.get("name") or lora.get("model_name") if isinstance(lora, dict) else None
            loras.append((_text(name), entry.get("weight", 1.0)))
    params["Prompt"] = _lora_tags(_text(data.get("positive_prompt")), loras, notes)
    params["Negative prompt"] = _text(data.get("negative_prompt"))
    for key, name in (("Steps", "steps"), ("CFG scale", "cfg_scale"), ("Seed", "seed")):
        _put(params, key, data.get(name))
    if isinstance(data.get("width"), int) and isinstance(data.get("height"), int):
        params["Size"] = f"{data['width']}x{data['height']}"
    clip_skip = data.get("clip_skip")
    if isinstance(clip_skip, int) and clip_skip > 0:
        params["Clip skip"] = str(clip_skip + 1)  # InvokeAI counts the layers skipped, A1111 the layer used
    scheduler = _text(data.get("scheduler"))
    karras = scheduler.endswith("_k")
    _sampler(params, scheduler.removesuffix("_k"), "karras" if karras else None, INVOKE_SAMPLERS, "InvokeAI", notes)
    _put(params, "Model", model.get("name") or model.get("model_name"))
    base = model.get("base") or model.get("base_model")
    if base and base != "sd-1":
        notes.append(f"Model base: {one_line(base, 20)} (picotui runs Stable Diffusion 1.x models only)")
    params["RNG"] = "CPU" if data.get("rand_device", "cpu") == "cpu" else "GPU"
    mode = data.get("generation_mode", "txt2img")
    if mode == "img2img":  # InvokeAI's strength is A1111's denoising strength; its source is named, not kept
        _put(params, "Denoising strength", data.get("strength"))
        image = data.get("init_image")
        name = image.get("image_name") if isinstance(image, dict) else image
        _put(params, "Init image", Path(_text(name)).name or None)
    elif mode != "txt2img":
        notes.append(f"generation mode: {one_line(mode, 30)} (picotui has text to image and image to image)")
    if data.get("hrf_enabled") is True:
        notes.append("hrf_enabled: InvokeAI's high resolution fix (its own sizes and method; set picotui's hires fix "
                     "by hand)")
    return params, notes


def _novelai(data: dict, texts: dict[str, str]) -> tuple[dict, list[str]]:
    params, notes = {}, []
    params["Prompt"] = _text(data.get("prompt")) or texts.get("Description", "")
    params["Negative prompt"] = _text(data.get("uc"))
    for key, name in (("Steps", "steps"), ("CFG scale", "scale"), ("Seed", "seed")):
        _put(params, key, data.get(name))
    if isinstance(data.get("width"), int) and isinstance(data.get("height"), int):
        params["Size"] = f"{data['width']}x{data['height']}"
    sampler = _text(data.get("sampler"))
    table = {f"k_{k}": v for k, v in K_SAMPLERS.items()} | {"ddim": "DDIM", "ddim_v3": "DDIM"}
    _sampler(params, sampler, _text(data.get("noise_schedule")) or None, table, "NovelAI", notes)
    notes.append(f"Model: {one_line(texts.get('Source', 'NovelAI'), 60)} (NovelAI's own model, not available as a "
                 f"file; pick a checkpoint)")
    if "{" in params["Prompt"]:
        notes.append("{braces}: NovelAI's emphasis; picotui reads (word:1.05) as A1111 does, braces as text")
    return params, notes


def _fooocus(data: dict) -> tuple[dict, list[str]]:
    params, notes = {}, []
    loras = []
    for key, value in data.items():
        if re.fullmatch(r"lora_combined_\d+", key) and isinstance(value, str) and " : " in value:
            name, _, weight = value.rpartition(" : ")
            loras.append((name.strip(), weight.strip()))
    params["Prompt"] = _lora_tags(_text(data.get("prompt")), loras, notes)
    params["Negative prompt"] = _text(data.get("negative_prompt"))
    for key, name in (("Steps", "steps"), ("CFG scale", "guidance_scale"), ("Seed", "seed")):
        _put(params, key, data.get(name))
    size = re.fullmatch(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)", _text(data.get("resolution")).strip())
    if size:
        params["Size"] = f"{size[1]}x{size[2]}"
    _sampler(params, data.get("sampler"), data.get("scheduler"), K_SAMPLERS, "Fooocus", notes)
    _put(params, "Model", data.get("base_model"))
    styles = _text(data.get("styles"))
    if styles and styles != "[]":
        notes.append(f"Styles: {one_line(styles, 60)} (Fooocus adds their words to the prompt; picotui does not)")
    for key in ("sharpness", "adm_guidance", "refiner_model"):
        value = data.get(key)
        if value not in (None, "", "None", 0):
            notes.append(f"{key}: {one_line(value, 40)} (Fooocus' own; not supported by picotui)")
    params["RNG"] = "CPU"  # Fooocus runs ComfyUI's sampling, which draws the starting noise on the CPU
    return params, notes
