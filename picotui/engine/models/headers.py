"""Reading a .safetensors header (and only the header) and telling from its tensor names and shapes what
the file is. Used by the library; no torch, no tensor data read.

Format: 8 bytes little-endian header length N, then N bytes of JSON {name: {dtype, shape, data_offsets}}
(+ optional "__metadata__"), then the tensor bytes. A header can lie (offsets past the end of the file,
sizes that do not match the shape), the file can be cut short, or not be safetensors at all: each case
is a one-line reason that ends in what to do.

Families come from the UNet's cross-attention width (attn2.to_k input features): 768 is SD1.x, 1024
SD2.x, 2048 SDXL. Any other width is treated as SD1.x-compatible (same architecture, other sizes: the
tiny demo/test models use 32).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from picotui.engine.models.upscaler_headers import sniff_upscaler

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
SUFFIXES = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES
MAX_HEADER = 100 * 1024 * 1024  # real headers are well under 1 MB
MAX_EMBEDDING_VECTORS = 75  # one 77-token chunk minus start/end: A1111 cannot place a longer one either
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
UNET = "model.diffusion_model."
LORA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")
LORA_MARKERS = (".lora_A.", ".lora_B.", ".lora_down.", ".lora_up.", ".lora.down.", ".lora.up.", "_lora.down.",
                "_lora.up.", "lora_linear_layer.", ".hada_w1_a", ".lokr_w1")


class HeaderError(ValueError):
    """The file is not a readable safetensors file; str() is the one-line reason."""


def read_header(path: Path, size: int, metadata: dict | None = None) -> dict[str, tuple[int, ...]]:
    """name -> shape from the header, after checking it against the file. Raises HeaderError or OSError.

    `metadata`, when given, receives the header's `__metadata__` strings (trainer notes, kohya's hash)."""
    name = Path(path).name
    again = "download it again"
    if size == 0:
        raise HeaderError(f"{name} is empty (0 bytes): the download failed; {again}.")
    if size < 8:
        raise HeaderError(f"{name} is too small to be a .safetensors file ({size} bytes): {again}.")
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise HeaderError(f"{name} is truncated (it shrank while being read): {again}.")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > MAX_HEADER:
            raise HeaderError(f"{name} is not a .safetensors file (no valid header at its start): {again}.")
        if n > size - 8:
            raise HeaderError(f"{name} is truncated ({size:,} bytes, less than its own header): {again}.")
        raw = fh.read(n)
    if len(raw) < n:
        raise HeaderError(f"{name} is truncated (it shrank while being read): {again}.")
    try:
        header = json.loads(raw.decode("utf-8")) if raw.lstrip()[:1] == b"{" else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise HeaderError(f"{name} has a damaged header (not the JSON a .safetensors file starts with): {again}.")
    shapes, end = {}, 0
    for key, info in header.items():
        if key == "__metadata__":
            if metadata is not None and isinstance(info, dict):
                metadata.update((str(k), v) for k, v in info.items() if isinstance(v, str))
            continue
        shape, begin, stop = _entry(info)
        if shape is None:
            raise HeaderError(f"{name} has a damaged header (entry {key[:60]!r} is malformed): {again}.")
        item = DTYPE_BYTES.get(info["dtype"])
        if item is not None and stop - begin != math.prod(shape) * item:
            raise HeaderError(f"{name} has a header that lies about sizes ({key[:60]!r} says {stop - begin:,} "
                              f"bytes, its shape needs {math.prod(shape) * item:,}): {again}.")
        shapes[key] = shape
        end = max(end, stop)
    if 8 + n + end > size:
        raise HeaderError(f"{name} is truncated ({size:,} of {8 + n + end:,} bytes): {again}.")
    return shapes


def _entry(info) -> tuple[tuple[int, ...] | None, int, int]:
    if not isinstance(info, dict) or not isinstance(info.get("dtype"), str):
        return None, 0, 0
    shape, offsets = info.get("shape"), info.get("data_offsets")
    ints = lambda xs: isinstance(xs, list) and all(type(x) is int and x >= 0 for x in xs)  # noqa: E731
    if not ints(shape) or not ints(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        return None, 0, 0
    return tuple(shape), offsets[0], offsets[1]


def family_from_context(dim: int | None) -> str:
    if dim is None:
        return "other"
    return {2048: "SDXL", 1024: "SD2.x"}.get(dim, "SD1.x")


def classify_file(path: Path, size: int) -> dict:
    """kind, family, usable, reason, context_dim, vectors for a safetensors file (never raises)."""
    name = Path(path).name
    metadata: dict[str, str] = {}
    try:
        shapes = read_header(path, size, metadata)
    except HeaderError as exc:
        return _unknown(str(exc))
    except OSError as exc:
        return _unknown(f"{name} cannot be read ({exc.strerror or exc}): check the file and its permissions.")
    if not shapes:
        return _unknown(f"{name} holds no tensors: it is not a model; download it again.")
    info = classify(shapes, name)
    if info["kind"] == "lora":  # kohya records the addnet hash it computed; A1111 trusts it over hashing
        value = metadata.get("sshs_model_hash", "").strip().lower()
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            info["sshs_hash"] = value
    return info


def _unknown(reason: str, family: str = "other", context_dim: int | None = None) -> dict:
    return dict(kind="unknown", family=family, usable=False, reason=reason, context_dim=context_dim, vectors=None)


def _result(kind: str, family: str, name: str, context_dim=None, vectors=None, reason=None) -> dict:
    if reason is None and family not in ("SD1.x", "upscaler"):
        label = {"checkpoint": "checkpoint", "vae": "VAE", "lora": "LoRA", "embedding": "embedding",
                 "taesd": "TAESD preview decoder", "upscaler": "upscaler"}[kind]
        reason = (f"{name} is an {family} {label}; picotui runs SD1.5 models only."
                  if family in ("SDXL", "SD2.x") else
                  f"{name} is an SD1.x inpainting checkpoint; picotui generates from text only: pick a regular "
                  f"SD1.5 checkpoint." if family == "SD1.x inpainting" else
                  f"{name} is a {label} picotui cannot use with SD1.5.")
    return dict(kind=kind, family=family, usable=reason is None, reason=reason, context_dim=context_dim,
                vectors=vectors)


def classify(shapes: dict[str, tuple[int, ...]], name: str) -> dict:
    names = list(shapes)
    is_lora = any(n.startswith(LORA_PREFIXES) or any(m in n for m in LORA_MARKERS) for n in names)
    if is_lora:
        return _lora(shapes, name)
    if any(n.startswith(UNET) for n in names):
        return _checkpoint(shapes, name)
    vae = _vae(shapes, name)
    if vae is not None:
        return vae
    embedding = _embedding(shapes, name)
    if embedding is not None:
        return embedding
    taesd = _taesd(shapes, name)
    if taesd is not None:
        return taesd
    ctx = _context_dim(shapes, "")
    if any(n.startswith(("control_model.", "input_hint_block.")) or ".zero_convs." in n for n in names):
        return _unknown(f"{name} is a ControlNet model; picotui does not use ControlNets.")
    if ctx is not None and "conv_in.weight" in shapes:
        return _unknown(f"{name} is a diffusers-format UNet on its own; picotui needs a single-file checkpoint "
                        f"(one .safetensors with UNet, VAE and text encoder).", family_from_context(ctx), ctx)
    if any(n.startswith(("text_model.", "cond_stage_model.")) for n in names):
        return _unknown(f"{name} is a text encoder on its own; picotui needs a single-file checkpoint.")
    upscaler = sniff_upscaler(shapes)
    if upscaler is not None:
        reason = (f"{name} is a 1x restoration model (denoise, deblur), not an upscaler: picotui uses 2x, 4x... "
                  f"models." if upscaler[1] == 1 else None)
        return dict(_result("upscaler", "upscaler", name, reason=reason), architecture=upscaler[0], scale=upscaler[1])
    return dict(_unknown(f"{name} is not a checkpoint, VAE, LoRA, embedding or upscaler picotui recognises."),
                unrecognised=True)  # a readable file of tensors: in an upscaler folder, spandrel judges it


def _context_dim(shapes: dict, prefix: str) -> int | None:
    for n, shape in shapes.items():
        if n.startswith(prefix) and n.endswith("attn2.to_k.weight") and len(shape) == 2:
            return shape[1]
    return None


def _checkpoint(shapes: dict, name: str) -> dict:
    ctx = _context_dim(shapes, UNET)
    names = shapes.keys()
    if ctx == 1024 or any(n.startswith("cond_stage_model.model.") for n in names):
        return _result("checkpoint", "SD2.x", name, ctx)
    if ctx == 2048 or any(n.startswith(("conditioner.embedders.", UNET + "label_emb.")) for n in names):
        return _result("checkpoint", "SDXL", name, ctx)
    if ctx is None:
        return _result("checkpoint", "other", name, None,
                       reason=f"{name} has no cross-attention layers: it is not a Stable Diffusion 1.5 checkpoint.")
    conv_in = shapes.get(UNET + "input_blocks.0.0.weight", ())
    channels = conv_in[1] if len(conv_in) >= 2 else 4
    if channels == 9:
        return _result("checkpoint", "SD1.x inpainting", name, ctx)
    if channels != 4:
        return _result("checkpoint", "other", name, ctx,
                       reason=f"{name} has {channels} input channels (instruct-pix2pix or another special model): "
                              f"pick a regular SD1.5 checkpoint.")
    return _result("checkpoint", "SD1.x", name, ctx)


def _lora(shapes: dict, name: str) -> dict:
    names = list(shapes)
    if any(n.startswith(("lora_te1_", "lora_te2_", "text_encoder_2.")) for n in names):
        return _result("lora", "SDXL", name)
    down = (".lora_down.", ".lora_A.", ".lora.down.", "_lora.down.", "lora_linear_layer.down.")
    ctx = te = None
    for n, shape in shapes.items():
        if len(shape) < 2 or not any(d in n for d in down):
            continue
        flat = n.replace(".", "_")
        if ctx is None and "attn2_" in flat and "to_k" in flat:
            ctx = shape[1]
        elif te is None and ("k_proj" in flat and ("lora_te_" in n or "text_encoder" in n or "text_model" in n)):
            te = shape[1]
    if ctx is None and te is None:
        return _result("lora", "SD1.x", name)  # cannot tell (e.g. a conv-only LoRA): the loader will judge
    return _result("lora", family_from_context(ctx if ctx is not None else te), name, ctx or te)


def _vae(shapes: dict, name: str) -> dict | None:
    prefix = "first_stage_model." if any(n.startswith("first_stage_model.") for n in shapes) else ""
    if prefix + "encoder.conv_in.weight" not in shapes or prefix + "decoder.conv_out.weight" not in shapes:
        return None
    conv = shapes.get(prefix + "decoder.conv_in.weight", ())
    latent = conv[1] if len(conv) >= 2 else 4
    if latent != 4:
        return _result("vae", "other", name, reason=f"{name} is a VAE with {latent} latent channels (SD3/Flux "
                                                    f"style); SD1.5 needs a 4-channel VAE.")
    return _result("vae", "SD1.x", name)


def _embedding(shapes: dict, name: str) -> dict | None:
    keys = set(shapes)
    if {"clip_l", "clip_g"} <= keys:
        return _result("embedding", "SDXL", name)
    tensors = [shapes[k] for k in keys if k == "emb_params" or k.startswith("string_to_param")] or \
        (list(shapes.values()) if len(shapes) == 1 else [])
    if len(tensors) != 1 or len(tensors[0]) not in (1, 2) or tensors[0][-1] > 4096 or 0 in tensors[0]:
        return None
    shape = tensors[0]
    vectors, width = (1, shape[0]) if len(shape) == 1 else shape
    if vectors > MAX_EMBEDDING_VECTORS:
        if "emb_params" not in keys and not any(k.startswith("string_to_param") for k in keys):
            return None  # a big lone matrix is something else
        return _result("embedding", "SD1.x", name, width, vectors,
                       reason=f"{name} takes {vectors} vectors; at most {MAX_EMBEDDING_VECTORS} fit in a prompt.")
    return _result("embedding", family_from_context(width if width in (768, 1024) else 32), name, width, vectors)


def _taesd(shapes: dict, name: str) -> dict | None:
    """A TAESD decoder (madebyollin/taesd: taesd_decoder.safetensors/.pth, whose first conv is "1." after
    a clamp; or diffusers' AutoencoderTiny layout): the live preview's decoder. The SDXL one (taesdxl) has
    the same shapes, so its file name tells it apart; SD3/FLUX ones take 16 latent channels."""
    first = shapes.get("1.weight") or shapes.get("decoder.layers.0.weight")
    if first is None or len(first) != 4 or first[2:] != (3, 3):
        if shapes.get("0.weight", ())[1:2] == (3,) and all(n.split(".")[0].isdigit() for n in shapes):
            return _unknown(f"{name} is a TAESD encoder; the preview needs the decoder (taesd_decoder.safetensors).")
        return None
    if not all(n.split(".")[0].isdigit() or n.startswith(("decoder.", "encoder.")) for n in shapes):
        return None
    lower = name.lower()
    family = "SDXL" if "taesdxl" in lower else "SD1.x" if first[1] == 4 else "other"
    return _result("taesd", family, name)
