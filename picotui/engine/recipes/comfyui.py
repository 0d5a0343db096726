"""ComfyUI's executed graph (the `prompt` chunk of its PNGs, "prompt:{...}" in its WebP's Model tag) read as
A1111's keys: the `prompt` chunk holds the graph in API format (node id -> class_type, inputs; a link is
[node id, output]); the sampler node is followed to its prompts, checkpoint, LoRAs and size, and for image to
image (a VAEEncode latent and a denoise below 1) to the LoadImage that names the source; a second sampler fed
by a LatentUpscale(By) of the first, or by a VAEEncode of its picture upscaled by a model and/or resized, is a
hires fix."""

from __future__ import annotations

import re
from pathlib import Path

from picotui.engine.errors import PicoError, one_line
from picotui.engine.recipes.foreign_fields import K_SAMPLERS, _lora_tags, _put, _sampler, _text


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
