"""Where picotui keeps things. platformdirs for the per-user places; ./models and ./outputs when run
from a folder that has them (a checkout), so a clone works without setup.

Precedence for models/outputs: explicit argument (flag) > environment variable > config > default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import PlatformDirs

APP = "picotui"
_dirs = PlatformDirs(APP, appauthor=False)

MODEL_SUBDIRS = ("checkpoints", "vae", "loras", "embeddings")
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def assets_dir() -> Path:
    """Bundled configs and tokenizer: next to the package in a checkout, inside it when installed."""
    packaged = Path(__file__).resolve().parent / "assets"
    return packaged if packaged.is_dir() else ASSETS


@dataclass(frozen=True)
class Paths:
    models: Path
    outputs: Path
    config_file: Path
    state: Path  # logs
    cache: Path  # hash cache, demo model

    @property
    def log_file(self) -> Path:
        return self.state / "picotui.log"

    @property
    def hash_cache(self) -> Path:
        return self.cache / "hashes.json"

    @property
    def settings_file(self) -> Path:
        """The last used form settings (the TUI restores them on start)."""
        return Path(_dirs.user_config_dir) / "last-settings.json"

    def model_dir(self, kind: str) -> Path:
        return self.models / kind


def resolve_paths(models: str | os.PathLike | None = None, outputs: str | os.PathLike | None = None,
                  config: dict | None = None, cwd: Path | None = None) -> Paths:
    cwd = cwd or Path.cwd()
    config = config or {}
    data = Path(_dirs.user_data_dir)

    # A folder with models/ in it (a checkout, or a folder the user set up) keeps everything local.
    local = (cwd / "models").is_dir()

    def pick(explicit, env, key, name: str) -> Path:
        for value in (explicit, os.environ.get(env), config.get(key)):
            if value:
                return Path(value).expanduser()
        return cwd / name if local else data / name

    return Paths(
        models=pick(models, "PICOTUI_MODELS", "models", "models"),
        outputs=pick(outputs, "PICOTUI_OUTPUTS", "outputs", "outputs"),
        config_file=Path(os.environ.get("PICOTUI_CONFIG") or Path(_dirs.user_config_dir) / "config.toml"),
        state=Path(os.environ.get("PICOTUI_STATE") or _dirs.user_state_dir),
        cache=Path(os.environ.get("PICOTUI_CACHE") or _dirs.user_cache_dir),
    )
