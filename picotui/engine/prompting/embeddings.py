"""Textual-inversion embeddings: the files civitai ships, read into a [vectors, width] float32 tensor.

Accepted, as A1111 accepts them:
- `.safetensors` with one tensor (`emb_params` from A1111's converter, or any single key as the
  diffusers concept files use); a 1-D tensor is one vector.
- A1111's pickled `.pt` (`string_to_param: {"*": tensor}`) and diffusers' `.bin` (`{"<token>": tensor}`),
  only when pickles are allowed (the same opt-in as checkpoints), and then through
  `torch.load(weights_only=True)`, which refuses to run code from the file.
SDXL embeddings (`clip_l` + `clip_g`) and files with several terms are refused with a one-line reason.
The original textual-inversion trainer pickled `string_to_param` as an `nn.ParameterDict`; that one
class is allowed to the weights-only unpickler while an embedding loads, and nothing else.

`vector_count` reads only a safetensors header (no torch), and `vector_counts` gives the table the
UI's token counter takes; `skipped_embedding_notices` tells a job which names in its prompt are
files that cannot be used (and so are read as words). None of these import torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from picotui.engine.errors import ModelError
from picotui.engine.models.headers import MAX_EMBEDDING_VECTORS, PICKLE_SUFFIXES


def vector_count(path: Path) -> int | None:
    """How many token slots the embedding takes, from a .safetensors header; None when unknown."""
    from picotui.engine.models.headers import classify_file

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return None
    try:
        return classify_file(path, os.stat(path).st_size)["vectors"]
    except OSError:
        return None

def vector_counts(files) -> dict[str, int]:
    """{name as written in prompts: token slots} for the usable embeddings among library ModelFiles.

    For `count_tokens`. A pickled embedding's size is unknown without loading it: it counts as one.
    """
    return {Path(mf.name).stem: int(mf.vectors or 1) for mf in files if mf.usable}


def skipped_embedding_notices(texts, files) -> list[str]:
    """One line for each unusable embedding file (library ModelFiles) whose name one of `texts` uses.

    The encoder reads such a name as plain words, as A1111 does silently; the line says which file and
    why it was skipped (for a .pt without the opt-in, how to opt in). Never raises.
    """
    usable = {Path(mf.name).stem for mf in files if mf.usable}
    skipped = {}
    for mf in files:
        if not mf.usable and Path(mf.name).stem not in usable:
            skipped.setdefault(Path(mf.name).stem, mf)
    if not skipped:
        return []
    from picotui.engine.prompting.tokens import find_embeddings

    # Matched among all names, so where a usable name is the longer match the encoder would use it.
    names = [*usable, *skipped]
    used = {name for text in texts for name in find_embeddings(text, names)}
    return [f"Embedding {mf.name} was skipped, so {stem!r} in the prompt was read as plain words: "
            f"{mf.reason or 'it cannot be used.'}" for stem, mf in skipped.items() if stem in used]


def load_embedding(path: Path, width: int, *, allow_pickle: bool = False):
    """The embedding's vectors as a float32 tensor [n, width]; ModelError with a one-line reason otherwise."""
    import torch

    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ModelError(f"Embedding {name} is missing ({path}): rescan the models folder.")
    if suffix == ".safetensors":
        from picotui.engine.models.weights import load_safetensors  # opens non-UTF-8 file names too

        try:
            data = load_safetensors(path)
        except Exception as exc:  # safetensors raises several types for damaged files
            raise ModelError(f"Embedding {name} is not a readable .safetensors file ({type(exc).__name__}): "
                             f"download it again.") from None
    elif suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ModelError(f"Embedding {name} is a pickle ({suffix}) file; use a .safetensors version, or "
                             f"start picotui with --allow-pickle if you trust its source.")
        try:
            # ParameterDict is rebuilt by Module.__setstate__ (a __dict__ update) from what the weights-only
            # unpickler can make anyway, tensors and containers: allowing it runs no code from the file.
            # A context, not add_safe_globals, so checkpoint loading never sees the wider list.
            with torch.serialization.safe_globals([torch.nn.ParameterDict]):
                data = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # weights_only refuses anything but plain tensors and containers
            raise ModelError(f"Embedding {name} could not be loaded safely ({type(exc).__name__}): "
                             f"use a .safetensors version.") from None
    else:
        raise ModelError(f"Embedding {name} has an unknown file type: use .safetensors.")
    vec = _vectors_from(data, name)
    if vec.ndim == 1:
        vec = vec.unsqueeze(0)
    if vec.ndim != 2 or vec.shape[0] < 1:
        raise ModelError(f"Embedding {name} has an unexpected shape {tuple(vec.shape)}: it is not a "
                         f"textual-inversion embedding.")
    if vec.shape[1] != width:
        family = {768: "SD1.x", 1024: "SD2.x", 1280: "SDXL"}.get(int(vec.shape[1]), f"{vec.shape[1]}-wide")
        raise ModelError(f"Embedding {name} is for {family} ({vec.shape[1]} wide) but this checkpoint's "
                         f"text encoder is {width} wide: use an embedding made for this model.")
    if vec.shape[0] > MAX_EMBEDDING_VECTORS:
        raise ModelError(f"Embedding {name} has {vec.shape[0]} vectors; at most {MAX_EMBEDDING_VECTORS} fit in a prompt.")
    if not torch.isfinite(vec).all():
        raise ModelError(f"Embedding {name} contains NaN or infinite values: download it again.")
    return vec.detach().to(torch.float32)


def _vectors_from(data, name: str):
    import torch

    if not isinstance(data, dict):
        raise ModelError(f"Embedding {name} is not a textual-inversion embedding.")
    if "string_to_param" in data:  # A1111's own training output
        params = data["string_to_param"]
        params = getattr(params, "_parameters", params)
        if not isinstance(params, dict) or len(params) != 1:
            raise ModelError(f"Embedding {name} holds {len(params) if isinstance(params, dict) else 'no'} "
                             f"terms; picotui reads files with exactly one.")
        data = params
    if "clip_l" in data and "clip_g" in data:
        raise ModelError(f"Embedding {name} is an SDXL embedding: picotui runs SD1.x models.")
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if "emb_params" in tensors:
        return tensors["emb_params"]
    if len(tensors) != 1:
        raise ModelError(f"Embedding {name} holds {len(tensors)} tensors; picotui reads files with exactly one.")
    return next(iter(tensors.values()))
