"""Where picotui keeps things. platformdirs for the per-user places; ./models and ./outputs when run
from a checkout of picotui (a folder whose pyproject.toml names picotui), so a clone works without setup.

Every place is resolved the same way: flag > environment variable > config file > default.
  models   --models   PICOTUI_MODELS   models = "..."
  outputs  --outputs  PICOTUI_OUTPUTS  outputs = "..."
  state    --state    PICOTUI_STATE    state = "..."     (the log)
  cache    --cache    PICOTUI_CACHE    cache = "..."     (hashes, the demo model)
  config   --config   PICOTUI_CONFIG   (the config file cannot name itself)
The defaults for state, cache and config follow the XDG_* variables platformdirs reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import PlatformDirs

APP = "picotui"
_dirs = PlatformDirs(APP, appauthor=False)

MODEL_SUBDIRS = ("checkpoints", "vae", "loras", "embeddings", "vae-approx")  # vae-approx: TAESD preview decoders
# The places a config file may set, and the environment variable that overrides each. picotui.config
# builds its settings table on these: paths is the lower module (the engine may import it), so it
# imports nothing of config.
PLACE_ENV = {"models": "PICOTUI_MODELS", "outputs": "PICOTUI_OUTPUTS", "state": "PICOTUI_STATE",
             "cache": "PICOTUI_CACHE"}
CONFIG_ENV = "PICOTUI_CONFIG"


def env_flag(name: str) -> str | None:
    """An environment variable's value, stripped; empty counts as unset."""
    value = os.environ.get(name, "").strip()
    return value or None
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

    def make_model_folders(self) -> str | None:
        """Create models/checkpoints, vae, loras, embeddings if missing, so the folder the app tells a new
        user to fill exists. Returns a one-line problem instead of raising (a read-only models folder
        still works for reading)."""
        try:
            for sub in MODEL_SUBDIRS:
                (self.models / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"Could not create the model folders in {self.models}: {exc.strerror or exc}."
        return None


def is_checkout(folder: Path) -> bool:
    """Whether `folder` is a checkout of picotui: its pyproject.toml names the project "picotui".

    A models/ folder alone is not enough: running from ~ with an unrelated ~/models (another tool's)
    must not turn that into picotui's library and drop outputs/ next to it.
    """
    import tomllib

    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(project, dict) and project.get("name") == APP


PATH_KEYS = ("models", "outputs", "config", "state", "cache")


def resolve_paths(models: str | os.PathLike | None = None, outputs: str | os.PathLike | None = None,
                  config: dict | None = None, cwd: Path | None = None, *, config_file: str | os.PathLike | None = None,
                  state: str | os.PathLike | None = None, cache: str | os.PathLike | None = None) -> Paths:
    """Every place: flag (the arguments) > PICOTUI_* environment variable > config > default.

    `config` is the config file's values (it cannot move the config file itself). models/outputs
    default to ./models and ./outputs when `cwd` is a checkout of picotui, else the user data dir.
    Relative paths are made absolute against `cwd`, so what `picotui paths` prints is what a worker
    thread uses whatever the cwd is later.
    """
    return resolve_paths_with_sources(models, outputs, config, cwd, config_file=config_file, state=state,
                                      cache=cache)[0]


def resolve_paths_with_sources(models=None, outputs=None, config: dict | None = None, cwd: Path | None = None, *,
                               config_file=None, state=None, cache=None) -> tuple[Paths, dict[str, str]]:
    """(Paths, where each came from): "flag", the environment variable's name, "config", or a
    description of the default ("default: checkout", "default: user data dir", "default")."""
    cwd = Path(cwd or Path.cwd())
    config = config or {}
    local = is_checkout(cwd)
    defaults = {
        "models": (cwd / "models", "default: checkout") if local else
                  (Path(_dirs.user_data_dir) / "models", "default: user data dir"),
        "outputs": (cwd / "outputs", "default: checkout") if local else
                   (Path(_dirs.user_data_dir) / "outputs", "default: user data dir"),
        "state": (Path(_dirs.user_state_dir), "default: user state dir"),
        "cache": (Path(_dirs.user_cache_dir), "default: user cache dir"),
        "config": (Path(_dirs.user_config_dir) / "config.toml", "default: user config dir"),
    }
    flags = {"models": models, "outputs": outputs, "state": state, "cache": cache, "config": config_file}
    chosen: dict[str, Path] = {}
    sources: dict[str, str] = {}
    for key, flag in flags.items():
        flag = os.fspath(flag) if flag is not None else None
        value, source = _place(key, flag, config)
        if not value:
            chosen[key], sources[key] = defaults[key]
            continue
        path = Path(value).expanduser()
        chosen[key], sources[key] = (path if path.is_absolute() else cwd / path), source
    paths = Paths(models=chosen["models"], outputs=chosen["outputs"], config_file=chosen["config"],
                  state=chosen["state"], cache=chosen["cache"])
    return paths, sources


def _place(key: str, flag: str | None, config: dict) -> tuple[str | None, str]:
    """(value or None, its source) for one place: flag > environment > config file. The config file
    cannot name itself, so "config" is flag > PICOTUI_CONFIG only; a config value that is not a
    non-empty string is ignored (config.load_config has already said so)."""
    if flag:
        return flag, "flag"
    env = CONFIG_ENV if key == "config" else PLACE_ENV[key]
    if env_flag(env):
        return env_flag(env), env
    value = None if key == "config" else config.get(key)
    return (value, "config") if isinstance(value, str) and value else (None, "default")


def default_config_file() -> Path:
    """The config file when no --config flag is given: PICOTUI_CONFIG, else the user config dir's."""
    return resolve_paths(config={}).config_file
