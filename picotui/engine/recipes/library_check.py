"""A recipe checked against the installed models: the checkpoint, VAE, LoRAs, embeddings and hires upscaler it
names (by name, then by the hashes it recorded, which also find renamed files), and an img2img source that is
missing or has changed. Each problem is one line for the recipe's "not reproduced" list.

No torch here: the UI imports this module.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from picotui.engine.errors import ModelError, RequestError, one_line
from picotui.engine.recipes.infotext import model_stem
from picotui.engine.recipes.parameters import hash_pairs
from picotui.engine.request import GenerationRequest


def check_files(request: GenerationRequest, library, params: dict, notes: list[str]) -> GenerationRequest:
    """Report (in `notes`) model files the recipe names that this library does not have (by name, then cached
    hash); a file found by its hash under another name takes that name in the returned request."""

    def look(name: str, kind: str, short_hash: str | None, label: str) -> str | None:
        try:
            return library.resolve(name, kind).name
        except ModelError as exc:
            found = library.find_by_hash(short_hash, kind) if short_hash else None
            if found is not None:
                return found.name
            notes.append(f"{label}: {one_line(name, 80)} ({one_line(exc, 160)})")
            return None

    def renamed(name: str, found: str) -> bool:
        return found != name and model_stem(found) != model_stem(name)

    if request.checkpoint.strip().lower() != "demo":
        found = look(request.checkpoint, "checkpoint", params.get("Model hash"), "Model")
        if found and renamed(request.checkpoint, found):
            request = replace(request, checkpoint=found)
    if request.vae:
        found = look(request.vae, "vae", params.get("VAE hash"), "VAE")
        if found and renamed(request.vae, found):
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
        if found and renamed(name, found):
            stem = model_stem(found)
            request = replace(request, prompt=_rename_lora_tags(request.prompt, name, stem),
                              loras=tuple(replace(l, name=stem) if l.name == name else l for l in request.loras))
    _check_embeddings(hash_pairs(params.get("TI hashes", "")), library, notes)
    _check_upscaler(request, library, notes)
    _check_init_image(request, notes)
    return request


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
