"""Folders for a test: a Paths under one temporary root, and copies of the session's models tree."""

from __future__ import annotations

import shutil
from pathlib import Path

from picotui.paths import MODEL_SUBDIRS, Paths


def make_paths(root: Path, models: Path | None = None, cache: Path | None = None) -> Paths:
    """Paths with everything under `root` (models/ with its four folders made, unless `models` is given)."""
    models = models or root / "models"
    for sub in MODEL_SUBDIRS:
        (models / sub).mkdir(parents=True, exist_ok=True)
    return Paths(models=models, outputs=root / "outputs", config_file=root / "config" / "config.toml",
                 state=root / "state", cache=cache or root / "cache")


def copy_models(models_root: Path, dest: Path, names=None) -> Path:
    """Copies the files of models_root's four folders (only those in `names`, if given) into the same folders
    under `dest`, which may already exist; returns `dest`. Copies, not links: tests may change them."""
    for sub in MODEL_SUBDIRS:
        (dest / sub).mkdir(parents=True, exist_ok=True)
        if not (models_root / sub).is_dir():  # e.g. vae-approx/, which the session's models tree has none of
            continue
        for src in sorted((models_root / sub).iterdir()):
            if names is None or src.name in names:
                shutil.copy2(src, dest / sub / src.name)
    return dest
