"""Recipes from other tools' images, mapped onto A1111's keys so one reader (metadata.request_from_parameters)
turns them into a request and names whatever picotui cannot reproduce.

- JPEG and WebP: A1111 (and civitai) store the parameters text in the EXIF UserComment (tag 0x9286 in the
  Exif IFD), as EXIF 2.3 defines it: an 8-byte character-code prefix, `UNICODE\\0` followed by UTF-16
  (piexif writes big-endian; some tools write little-endian), or `ASCII\\0\\0\\0`, or 8 zero bytes.
  ComfyUI's WebP saver writes its graph as "prompt:{...}" in the IFD0 Model tag.
- ComfyUI PNGs: the `prompt` chunk holds the executed graph (API format: node id -> class_type, inputs;
  a link is [node id, output]); the sampler node is followed to its prompts, checkpoint, LoRAs and size, and
  for image to image (a VAEEncode latent and a denoise below 1) to the LoadImage that names the source; a
  second sampler fed by a LatentUpscale(By) of the first, or by a VAEEncode of its picture upscaled by a model
  and/or resized, is a hires fix.
- InvokeAI PNGs: the `invokeai_metadata` chunk (JSON, 3.x and 4.x keys).
- NovelAI PNGs: `Software: NovelAI` and the `Comment` chunk (JSON: prompt, uc, steps, scale, seed, ...).
- Fooocus PNGs: the `parameters` chunk as JSON (its log scheme; `fooocus_scheme: a1111` files hold plain
  A1111 text and need nothing from here).

sd-parsers (PyPI) reads these too, but its A1111 splitter breaks quoted values, it decodes every UserComment
as big-endian UTF-16, it does not recognise Fooocus' own scheme, and InvokeAI 4's model entry is dropped:
mapping its normalised output would have been as long as reading the documented formats directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from picotui.engine.errors import PicoError, one_line

JPEG_MAGIC = b"\xff\xd8\xff"
EXIF_IFD, USER_COMMENT = 0x8769, 0x9286
COMFY_MODEL_TAG, COMFY_MAKE_TAG = 0x0110, 0x010F  # IFD0 Model and Make: where ComfyUI's WebP saver puts its JSON
MAX_JSON = 1_000_000  # characters: a graph larger than this is not a picture's recipe

LABELS = {"picotui": "picotui", "a1111": "A1111 text", "comfyui": "ComfyUI workflow", "invokeai": "InvokeAI metadata",
          "novelai": "NovelAI metadata", "fooocus": "Fooocus metadata"}

# k-diffusion names as ComfyUI (and Fooocus, which runs ComfyUI's samplers) spell them -> A1111's names.
# The _gpu variants draw their SDE noise on the GPU: the same sampler, other noise.
K_SAMPLERS = {"euler": "Euler", "euler_ancestral": "Euler a", "lms": "LMS", "heun": "Heun", "dpm_2": "DPM2",
              "dpm_2_ancestral": "DPM2 a", "dpmpp_2s_ancestral": "DPM++ 2S a", "dpmpp_sde": "DPM++ SDE",
              "dpmpp_sde_gpu": "DPM++ SDE", "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE",
              "dpmpp_2m_sde_gpu": "DPM++ 2M SDE", "dpmpp_3m_sde": "DPM++ 3M SDE", "dpmpp_3m_sde_gpu": "DPM++ 3M SDE",
              "ddim": "DDIM", "uni_pc": "UniPC", "lcm": "LCM", "restart": "Restart"}
K_SCHEDULES = {"normal": "Uniform", "karras": "Karras", "exponential": "Exponential",
               "sgm_uniform": "SGM Uniform", "polyexponential": "Polyexponential", "native": "Automatic"}
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


def _json(text: str, tool: str) -> dict:
    if len(text) > MAX_JSON:
        raise PicoError(f"The {tool} metadata is too large to be a recipe ({len(text):,} characters).", "metadata")
    try:
        data = json.loads(text)
    except RecursionError:
        raise PicoError(f"The {tool} metadata is nested too deeply to read.", "metadata") from None
    except ValueError as exc:
        raise PicoError(f"The {tool} metadata is damaged ({one_line(exc, 80)}).", "metadata") from None
    if not isinstance(data, dict):
        raise PicoError(f"The {tool} metadata is not a set of settings.", "metadata")
    return data


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _put(params: dict, key: str, value) -> None:
    """One A1111 key, as text (how A1111's own reader hands values on), when the tool recorded it."""
    if value is not None and not isinstance(value, (dict, list, bool)) and str(value).strip() != "":
        params[key] = str(value).strip()


def _sampler(params: dict, name, schedule, table: dict, tool: str, notes: list[str]) -> None:
    name, schedule = _text(name), _text(schedule)
    if not name:
        return
    if name in table:
        params["Sampler"] = table[name]
        if schedule:
            params["Schedule type"] = K_SCHEDULES.get(schedule, schedule)
    else:
        notes.append(f"Sampler: {one_line(name, 60)} ({tool}'s; picotui has no such sampler)")


def _lora_tags(prompt: str, loras: list[tuple[str, object]], notes: list[str]) -> str:
    """LoRAs as A1111 writes them, in the prompt (where picotui reads them from)."""
    tags = []
    for name, weight in loras:
        try:
            weight = float(weight)
        except (TypeError, ValueError, OverflowError):
            weight = None
        if not name or weight is None or weight != weight:
            shown = one_line(name, 60) or "(no name)"
            notes.append(f"LoRA: {shown} at {one_line(weight, 20)} (not a usable LoRA entry)")
            continue
        tags.append(f"<lora:{Path(name).stem}:{weight:g}>")
    return " ".join([prompt, *tags]).strip() if tags else prompt


def _comfyui(graph: dict) -> tuple[dict, list[str]]:
    nodes = {str(k): v for k, v in graph.items() if isinstance(v, dict) and isinstance(v.get("inputs"), dict)}
    samplers = [n for n in nodes.values() if n.get("class_type") in ("KSampler", "KSamplerAdvanced")]
    if not samplers:
        raise PicoError("The ComfyUI workflow has no KSampler node: picotui cannot tell its settings.", "metadata")
    params: dict = {}
    notes: list[str] = []

    def source(link, seen=()):
        """The node a link points at, through reroutes and pass-through nodes, with the LoRA loaders passed."""
        loras = []
        while isinstance(link, list) and link and str(link[0]) in nodes and str(link[0]) not in seen:
            seen = (*seen, str(link[0]))
            target = nodes[str(link[0])]
            kind, inputs = target.get("class_type", ""), target["inputs"]
            if kind in ("LoraLoader", "LoraLoaderModelOnly"):
                loras.append((_text(inputs.get("lora_name")), inputs.get("strength_model", 1.0)))
                link = inputs.get("model")
            elif kind == "Reroute":
                link = inputs.get("input")
            else:
                return target, loras
        return None, loras

    def prompt_of(link, which: str) -> str:
        target, _ = source(link)
        if target is None:
            return ""
        text = target["inputs"].get("text")
        if isinstance(text, list):  # the text widget turned into an input: a primitive or string node feeds it
            feeder, _ = source(text)
            inputs = feeder["inputs"] if feeder else {}
            text = next((inputs[k] for k in ("text", "string", "value") if isinstance(inputs.get(k), str)), None)
        if not isinstance(text, str):
            notes.append(f"{which}: from a {one_line(target.get('class_type'), 40)} node (picotui reads the text of "
                         f"a CLIPTextEncode node)")
            return ""
        return text

    first, hires, chain = _comfyui_passes(samplers, source)
    node = first["inputs"]
    if len(samplers) > (2 if hires else 1):
        notes.append(f"{len(samplers)} sampler nodes (a multi-pass workflow): only the first "
                     f"{'two' if hires else 'one'} read")
    model, loras = source(node.get("model"))
    prompt = _lora_tags(prompt_of(node.get("positive"), "Prompt"), loras, notes)
    params["Prompt"], params["Negative prompt"] = prompt, prompt_of(node.get("negative"), "Negative prompt")
    for key, name in (("Steps", "steps"), ("CFG scale", "cfg"), ("Seed", "seed" if "seed" in node else "noise_seed")):
        _put(params, key, node.get(name))
    _sampler(params, node.get("sampler_name"), node.get("scheduler"), K_SAMPLERS, "ComfyUI", notes)
    if model and model.get("class_type", "").startswith("CheckpointLoader"):
        _put(params, "Model", Path(_text(model["inputs"].get("ckpt_name"))).name)
    latent, _ = source(node.get("latent_image"))
    if latent and latent.get("class_type") == "EmptyLatentImage":
        width, height = latent["inputs"].get("width"), latent["inputs"].get("height")
        if isinstance(width, int) and isinstance(height, int):
            params["Size"] = f"{width}x{height}"
    elif latent and latent.get("class_type") == "VAEEncode":  # image to image: name the LoadImage's file
        pixels, _ = source(latent["inputs"].get("pixels"))
        if pixels and pixels.get("class_type") == "LoadImage":
            _put(params, "Init image", Path(_text(pixels["inputs"].get("image"))).name)
        params.setdefault("Denoising strength", "1")
    elif latent:
        notes.append(f"latent from {one_line(latent.get('class_type'), 40)} (picotui reads an EmptyLatentImage, or a "
                     f"VAEEncode for image to image)")
    denoise = node.get("denoise", 1)
    if isinstance(denoise, (int, float)) and denoise != 1:
        if latent and latent.get("class_type") == "VAEEncode":  # image to image: the A1111 reader names the source
            params["Denoising strength"] = str(denoise)
        else:
            notes.append(f"denoise: {one_line(denoise, 20)} (a partial denoise of a "
                         f"{one_line(latent.get('class_type') if latent else 'missing', 40)} latent: picotui runs the "
                         f"whole schedule)")
    if hires is not None:
        _comfyui_hires(params, notes, node, hires["inputs"], chain, prompt_of, source)
    params["RNG"] = "CPU"  # ComfyUI draws the starting noise on the CPU, as A1111's CPU source does
    return params, notes


# ComfyUI's latent upscale methods -> A1111's latent upscalers (the same torch interpolation)
COMFY_LATENT_UPSCALERS = {"nearest-exact": "Latent (nearest-exact)", "bilinear": "Latent", "bicubic": "Latent (bicubic)"}


def _comfyui_passes(samplers: list[dict], source) -> tuple[dict, dict | None, list[dict]]:
    """(first pass, hires pass or None, the nodes between them). ComfyUI's hires fix is a second sampler whose
    latent is a LatentUpscale(By) of the first sampler's output, or a VAEEncode of its VAEDecode upscaled by a
    model (ImageUpscaleWithModel) and/or resized (ImageScale, ImageScaleBy)."""
    for second in samplers:
        node, _ = source(second["inputs"].get("latent_image"))
        chain: list[dict] = []
        if node and node.get("class_type") == "VAEEncode":
            chain.append(node)
            node, _ = source(node["inputs"].get("pixels"))
            while node and node.get("class_type") in ("ImageScale", "ImageScaleBy", "ImageUpscaleWithModel"):
                chain.append(node)
                node, _ = source(node["inputs"].get("image"))
            if not (node and node.get("class_type") == "VAEDecode" and len(chain) > 1):
                continue
            first, _ = source(node["inputs"].get("samples"))
        elif node and node.get("class_type") in ("LatentUpscale", "LatentUpscaleBy"):
            chain.append(node)
            first, _ = source(node["inputs"].get("samples"))
        else:
            continue
        if first is not None and first is not second and first in samplers:
            return first, second, chain
    return samplers[0], None, []


def _comfyui_hires(params: dict, notes: list[str], first: dict, second: dict, chain: list[dict], prompt_of,
                   source) -> None:
    """A ComfyUI hires fix onto A1111's keys. Its second KSampler at `denoise` d runs the last `steps` of
    int(steps / d): A1111's hires step rule, so its steps are the Hires steps."""
    if chain[0].get("class_type") == "VAEEncode":
        _comfyui_pixel_upscale(params, notes, chain[1:], source)
    else:
        _comfyui_latent_upscale(params, notes, chain[0])
    denoise = second.get("denoise", 1)
    params["Denoising strength"] = str(denoise) if isinstance(denoise, (int, float)) else "1"
    if second.get("steps") != first.get("steps"):
        _put(params, "Hires steps", second.get("steps"))
    hires: dict = {}
    _sampler(hires, second.get("sampler_name"), second.get("scheduler"), K_SAMPLERS, "ComfyUI hires", notes)
    if hires.get("Sampler") and hires["Sampler"] != params.get("Sampler"):
        params["Hires sampler"] = hires["Sampler"]
    if hires.get("Schedule type") and hires["Schedule type"] != params.get("Schedule type"):
        params["Hires schedule type"] = hires["Schedule type"]
    for key, name in (("Hires prompt", "positive"), ("Hires negative prompt", "negative")):
        text = prompt_of(second.get(name), key)
        if text and text != prompt_of(first.get(name), key):
            params[key] = text
    for name, label in (("cfg", "CFG"), ("seed", "seed"), ("noise_seed", "seed")):
        if name in second and second.get(name) != first.get(name):
            notes.append(f"hires {label}: {one_line(second.get(name), 30)} (ComfyUI's second sampler; A1111's hires "
                         f"pass keeps the first pass's)")


_MODEL_SCALE = re.compile(r"(?i)(?:^|[^0-9a-z])([1-8])x|x([1-8])(?:[^0-9]|$)")


def _comfyui_pixel_upscale(params: dict, notes: list[str], chain: list[dict], source) -> None:
    """A model upscale (ImageUpscaleWithModel) and/or a resize (ImageScale to a size, ImageScaleBy a factor) of
    the decoded first pass, as A1111's Hires upscaler and Hires resize / upscale. A model's own factor is read
    from its file name (4x-UltraSharp, RealESRGAN_x4plus), as the graph does not say it."""
    model = next((n for n in chain if n.get("class_type") == "ImageUpscaleWithModel"), None)
    resize = next((n for n in chain if n.get("class_type") == "ImageScale"), None)
    factor = 1.0
    for node in chain:
        if node.get("class_type") == "ImageScaleBy" and isinstance(node["inputs"].get("scale_by"), (int, float)):
            factor *= float(node["inputs"]["scale_by"])
    name = ""
    if model is not None:
        loader, _ = source(model["inputs"].get("upscale_model"))
        name = Path(_text((loader or {}).get("inputs", {}).get("model_name"))).stem
        if not name:
            notes.append("ImageUpscaleWithModel: its model is not named by an UpscaleModelLoader (pick the hires "
                         "upscaler by hand)")
        else:
            params["Hires upscaler"] = name
        found = _MODEL_SCALE.search(name)
        factor *= int(found[1] or found[2]) if found else float("nan")
    else:
        method = _text((resize or next(iter(chain)))["inputs"].get("upscale_method"))
        params["Hires upscaler"] = "Nearest" if method.startswith("nearest") else "Lanczos"
        if method not in ("lanczos", "nearest-exact"):
            notes.append(f"upscale_method: {one_line(method, 30)} (ComfyUI's picture resize; A1111's is Lanczos)")
    if resize is not None and isinstance(resize["inputs"].get("width"), int) \
            and isinstance(resize["inputs"].get("height"), int):
        params["Hires resize"] = f"{resize['inputs']['width']}x{resize['inputs']['height']}"
    elif factor == factor:  # not NaN: the factor is known
        params["Hires upscale"] = f"{factor:g}"
    else:
        notes.append(f"Hires upscale: the factor of {one_line(name, 60)} is not in its name (set the hires scale "
                     f"by hand)")


def _comfyui_latent_upscale(params: dict, notes: list[str], upscale: dict) -> None:
    inputs = upscale["inputs"]
    if upscale.get("class_type") == "LatentUpscaleBy":
        _put(params, "Hires upscale", inputs.get("scale_by"))
    elif isinstance(inputs.get("width"), int) and isinstance(inputs.get("height"), int):
        params["Hires resize"] = f"{inputs['width']}x{inputs['height']}"
        if inputs.get("crop") != "center" and inputs["width"] and inputs["height"]:
            notes.append("LatentUpscale: crop disabled (ComfyUI stretches to the size; A1111 crops to its aspect "
                         "ratio: the same unless the aspect ratio changes)")
    method = _text(inputs.get("upscale_method"))
    if method in COMFY_LATENT_UPSCALERS:
        params["Hires upscaler"] = COMFY_LATENT_UPSCALERS[method]
    else:
        params["Hires upscaler"] = "Latent"
        notes.append(f"upscale_method: {one_line(method, 30)} (ComfyUI's; A1111 has no such latent upscaler: read as "
                     f"Latent)")


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
