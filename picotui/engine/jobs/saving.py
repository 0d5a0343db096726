"""Saving a job's picture: the hashes A1111 writes into the recipe, the recipe's parameters text, and the PNG, with
a failed save kept as one line beside the picture (the UI offers to save it again).

Lives in the worker thread, called by JobRunner.run_job for each finished picture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from picotui.engine.errors import JobCancelled, ModelError, SaveError, one_line

log = logging.getLogger("picotui.jobs")


def recipe_hashes(library, encoder, texts: Iterable[str], checkpoint, vae, loras,
                  warn: Callable[[str], None]) -> dict:
    """The hashes A1111 writes, best effort: one that cannot be computed (the file was deleted mid-job) is left
    out with a notice, as A1111 leaves out unknown hashes; the image is saved either way.

    `loras` pairs each LoraSpec (A1111 keys "Lora hashes" by the name as written) with its (file, weight).
    Embeddings are the ones the encoder found in `texts` (the prompts of every pass; its own matching)."""
    from picotui.engine.recipes.infotext import model_stem

    def best_effort(compute, mf):
        try:
            return compute(mf)
        except ModelError as exc:
            log.warning("%s", exc)
            warn(f"{exc} The image is saved without this hash.")
            return None

    used = dict.fromkeys(name for text in texts if encoder is not None
                         for chunk in encoder.chunks(text) for _offset, name in chunk.fixes)
    embeddings = {mf.stem: mf for mf in library.files("embedding") if mf.usable}
    return {"model": best_effort(library.autov2, checkpoint),
            "vae": best_effort(library.autov2, vae) if vae else None,
            "loras": {model_stem(spec.name): best_effort(library.lora_hash, mf) for spec, (mf, _w) in loras},
            "tis": {name: best_effort(library.ti_hash, embeddings[name]) for name in used if name in embeddings}}


def recipe_text(request, checkpoint, vae, hashes: dict) -> str:
    """A1111's parameters text for the one-image request."""
    from picotui.engine.recipes.infotext import a1111_parameters

    return a1111_parameters(request, model_name=Path(checkpoint.name).stem, model_hash=hashes["model"],
                            vae_name=vae.name if vae else None, vae_hash=hashes["vae"],
                            lora_hashes=hashes["loras"], ti_hashes=hashes["tis"])


def save_image(image, outputs: Path, request, parameters: Callable[[], str], is_cancelled: Callable[[], bool],
               where: str) -> tuple[Path | None, str, str | None]:
    """(path, parameters text, save error): the PNG written with its recipe, or None and one line saying why.
    A cancel before the PNG got its name raises JobCancelled (nothing was written)."""
    from picotui.engine.recipes.output import save_png

    text = ""
    try:
        text = parameters()
        return save_png(image, outputs, request, text, is_cancelled=is_cancelled), text, None
    except JobCancelled:
        raise
    except SaveError as exc:  # the image is kept; the UI offers to save it again
        log.warning("%s: saving failed: %s", where, exc)
        return None, text, str(exc)
    except Exception as exc:
        log.exception("%s: saving failed", where)
        return None, text, f"Could not save the image ({one_line(exc, 160)}): details in the log; save it again."
