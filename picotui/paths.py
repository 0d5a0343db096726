"""Where picotui keeps things. platformdirs for the per-user places; ./models and ./outputs when run
from a folder that has them (a checkout), so a clone works without setup.

Precedence for models/outputs: explicit argument (flag) > environment variable > config > default.
State (logs), cache (hashes, demo model) and the config file itself move with PICOTUI_STATE,
PICOTUI_CACHE and PICOTUI_CONFIG (or the XDG_* variables platformdirs reads).
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
        """The last used form settings (the TUI restores them on start). Beside the config file, so
        PICOTUI_CONFIG moves both (and a test that isolates one isolates the other)."""
        return self.config_file.parent / "last-settings.json"

    def model_dir(self, kind: str) -> Path:
        return self.models / kind


def resolve_paths(models: str | os.PathLike | None = None, outputs: str | os.PathLike | None = None,
                  config: dict | None = None, cwd: Path | None = None) -> Paths:
    """models/outputs: flag (the arguments) > PICOTUI_MODELS/PICOTUI_OUTPUTS > config > default.

    The default is ./models and ./outputs when `cwd` has a models/ folder (a checkout, or a folder the
    user set up), else the user data dir. Relative paths are made absolute against `cwd`, so what
    `picotui paths` prints is what a worker thread uses whatever the cwd is later.
    """
    from picotui.config import setting

    cwd = Path(cwd or Path.cwd())
    config = config or {}
    data = Path(_dirs.user_data_dir)
    local = (cwd / "models").is_dir()

    def pick(explicit, key: str) -> Path:
        value = setting(key, os.fspath(explicit) if explicit is not None else None, config)
        if value is None:
            return cwd / key if local else data / key
        path = Path(value).expanduser()
        return path if path.is_absolute() else cwd / path

    return Paths(
        models=pick(models, "models"),
        outputs=pick(outputs, "outputs"),
        config_file=Path(os.environ.get("PICOTUI_CONFIG") or Path(_dirs.user_config_dir) / "config.toml").expanduser(),
        state=Path(os.environ.get("PICOTUI_STATE") or _dirs.user_state_dir).expanduser(),
        cache=Path(os.environ.get("PICOTUI_CACHE") or _dirs.user_cache_dir).expanduser(),
    )
