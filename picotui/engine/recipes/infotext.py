"""Writing recipes: A1111's "parameters" text exactly as A1111 writes it, and picotui's own "picotui" chunk
(the full request as JSON). metadata.py reads both back.

A1111's layout (modules/processing.py `create_infotext`, modules/infotext_utils.py):

    <prompt, any number of lines>
    Negative prompt: <negative, any number of lines>      (only when there is one)
    Steps: 24, Sampler: DPM++ 2M SDE, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512,
    Model hash: 0123456789, Model: name, VAE hash: ..., VAE: file.safetensors, Variation seed: 5,
    Variation seed strength: 0.3, Seed resize from: 512x768, Clip skip: 2, ENSD: 31337, RNG: CPU,
    Lora hashes: "a: 0123456789ab, b: ba9876543210", TI hashes: "emb: 0123456789ab", Version: picotui 0.1.0
                                                                          (all on one line)

The second pass (img2img, hires fix) adds A1111's "Denoising strength" after "Seed resize from", picotui's
img2img source keys (init_image_fields) before RNG, and the hires keys (hires_fields) after NGMS, e.g.
    ..., Denoising strength: 0.7, Clip skip: 2, ..., Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, ...
"Size" stays the first pass's size, as in A1111.

Keys keep that order; Clip skip appears only above 1; the noise keys only where A1111 writes them (RNG
only when not GPU: a file without it means GPU, A1111's default; see noise_fields); extra-network
entries (Lora hashes, then TI hashes) come after RNG and before Version. Model and VAE hashes are 10 hex digits of the file's SHA-256; Lora
hashes 12 of the addnet hash (see hashing.py); TI hashes 12 of the file's SHA-256. A hash that could not
be computed is left out, as A1111 does. A value containing `,` `:` or a newline is written JSON-quoted.
Since 1.9, A1111 writes "DPM++ 2M Karras" as `Sampler: DPM++ 2M, Schedule type: Karras`; older files say
the former. When reading, the last line counts as settings only if it holds at least 3 `key: value` pairs.

No torch here: the UI imports this module.
"""

from __future__ import annotations

import json
from pathlib import Path

from picotui import __version__
from picotui.engine.models.headers import SUFFIXES
from picotui.engine.request import RESIZE_MODES, GenerationRequest

PARAMETERS_CHUNK = "parameters"
PICOTUI_CHUNK = "picotui"


def quote(value) -> str:
    """A1111's rule: values with `,` `:` or a newline are written as JSON strings."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if ("," in text or ":" in text or "\n" in text) else text


def number(value: float) -> str:
    """7.0 -> "7", 7.5 -> "7.5": how A1111's UI values print."""
    value = round(float(value), 4)
    return str(int(value)) if value.is_integer() else repr(value)


def model_stem(name: str) -> str:
    """The name without a model-file suffix (and without folders): what A1111 shows as a model's name."""
    base = Path(name).name
    return base[: -len(Path(base).suffix)] if Path(base).suffix.lower() in SUFFIXES else base


def lora_tags(request: GenerationRequest) -> str:
    """The prompt as A1111 would hold it: the LoRA panel's entries as <lora:name:weight> tags at the end."""
    prompt = request.prompt
    tags = [f"<lora:{model_stem(l.name)}:{number(l.weight)}>" for l in request.loras]
    tags = [t for t in tags if t not in prompt]
    return " ".join([prompt, *tags]) if prompt and tags else prompt or " ".join(tags)


def _hash_list(hashes: dict[str, str | None] | None) -> str | None:
    """'name: hash, ...' as A1111 joins extra-network hashes (it drops ':' and ',' from names; unknown
    hashes are left out)."""
    text = ", ".join(f"{n.replace(':', '').replace(',', '')}: {h}" for n, h in (hashes or {}).items() if h)
    return text or None


def a1111_parameters(request: GenerationRequest, *, model_name: str, model_hash: str | None,
                     vae_name: str | None = None, vae_hash: str | None = None,
                     lora_hashes: dict[str, str | None] | None = None, ti_hashes: dict[str, str | None] | None = None,
                     version: str = __version__) -> str:
    """The "parameters" text A1111 would write for this request (one image: request.seed is its seed)."""
    noise = noise_fields(request)  # A1111 writes Denoising strength after Seed resize from, Token merging ratio
    hires = hires_fields(request)  # before RNG (the last); the hires keys come from its extra parameters
    second_pass = request.hires or request.init_image is not None
    fields = [("Steps", request.steps), ("Sampler", request.sampler),
              ("Schedule type", request.schedule_type), ("CFG scale", number(request.cfg)), ("Seed", request.seed),
              ("Size", f"{request.width}x{request.height}"), ("Model hash", model_hash), ("Model", model_name),
              ("VAE hash", vae_hash if vae_name else None), ("VAE", vae_name), *noise[:3],
              ("Denoising strength", number(request.denoising_strength) if second_pass else None), *noise[3:-1],
              ("Token merging ratio", number(request.token_merging_ratio) if request.token_merging_ratio else None),
              *init_image_fields(request), noise[-1], ("NGMS", number(request.ngms) if request.ngms else None),
              *hires[:-1], ("Lora hashes", _hash_list(lora_hashes)), ("TI hashes", _hash_list(ti_hashes)),
              hires[-1], ("Version", f"picotui {version}")]
    settings = ", ".join(f"{k}: {quote(v)}" for k, v in fields if v is not None and v != "")
    negative = f"\nNegative prompt: {request.negative_prompt}" if request.negative_prompt else ""
    return f"{lora_tags(request)}{negative}\n{settings}".strip()


# A1111 writes ENSD only for the samplers whose options say "uses_ensd" (modules/sd_samplers_kdiffusion.py).
A1111_ENSD_SAMPLERS = {"Euler a", "DPM2 a", "DPM++ 2S a"}


def noise_fields(request: GenerationRequest) -> list[tuple[str, object]]:
    """A1111's noise keys in its order, each only where A1111 writes it (create_infotext): Variation seed
    and strength when the strength is not 0, Seed resize from when set, Clip skip (between them, as in
    A1111), ENSD for the samplers that use it, RNG unless GPU (no RNG key means GPU)."""
    strength = request.variation_strength
    resize = request.seed_resize_from
    ensd = request.eta_noise_seed_delta
    return [("Variation seed", request.variation_seed if strength else None),
            ("Variation seed strength", number(strength) if strength else None),
            ("Seed resize from", f"{resize[0]}x{resize[1]}" if resize else None),
            ("Clip skip", request.clip_skip if request.clip_skip > 1 else None),
            ("ENSD", ensd if ensd and request.sampler.removesuffix(" Karras") in A1111_ENSD_SAMPLERS else None),
            ("RNG", request.rng if request.rng != "GPU" else None)]


# picotui's own keys for an img2img source (A1111 writes none that name it: its "Init image hash" is an MD5 of
# the pixels, written only when it saves a copy of the source). Where A1111 writes "Init image hash".
INIT_IMAGE_KEYS = ("Init image", "Init image file hash", "Resize mode")


def init_image_fields(request: GenerationRequest) -> list[tuple[str, object]]:
    """The img2img source by file name and file hash (the first 10 hex digits of its SHA-256, as model hashes),
    never the image itself, and the resize mode unless A1111's default "Just resize". Nothing for text to image.
    No "Mask blur": A1111 writes it for inpainting only (a mask), which picotui does not have."""
    if request.init_image is None:
        return []
    return [("Init image", Path(request.init_image).name), ("Init image file hash", request.init_image_hash),
            ("Resize mode", request.resize_mode if request.resize_mode != RESIZE_MODES[0] else None)]


def hires_fields(request: GenerationRequest) -> list[tuple[str, object]]:
    """A1111's hires fix keys in its order (StableDiffusionProcessingTxt2Img.init, then
    calculate_target_resolution), each only where A1111 writes it: Hires sampler when another than the first
    pass's, Hires prompt / negative prompt when set and different, Hires upscale (by scale) or Hires resize
    ("WxH"), Hires steps when not 0 (0: as many as the first pass), Hires upscaler. The last entry is Hires
    schedule type: A1111's sampler adds it during the hires pass, so after the extra networks' hashes."""
    if not request.hires:
        return [("Hires schedule type", None)]
    resize = request.hires_resize

    def differs(value: str, first: str) -> str | None:
        return value if value and value != first else None

    return [("Hires sampler", differs(request.hires_sampler, request.sampler)),
            ("Hires prompt", differs(request.hires_prompt, request.prompt)),
            ("Hires negative prompt", differs(request.hires_negative_prompt, request.negative_prompt)),
            ("Hires upscale", number(request.hires_scale) if resize is None else None),
            ("Hires resize", f"{resize[0]}x{resize[1]}" if resize else None),
            ("Hires steps", request.hires_steps or None),
            ("Hires upscaler", request.hires_upscaler),
            ("Hires schedule type", differs(request.hires_schedule_type, request.schedule_type))]


def picotui_chunk(request: GenerationRequest, version: str = __version__) -> str:
    return json.dumps({"version": version, "request": request.to_dict()}, ensure_ascii=False, sort_keys=True)
