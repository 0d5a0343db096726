"""The user's config file (TOML, in the user config dir). A broken file never stops the app."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Config:
    values: dict = field(default_factory=dict)
    path: Path | None = None
    problem: str | None = None  # one line, shown as a notice when the file could not be used


def load_config(path: Path | None = None) -> Config:
    from picotui.paths import resolve_paths

    path = path or resolve_paths(config={}).config_file
    if not path.is_file():
        return Config(path=path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return Config(path=path, problem=f"Ignored {path}: {' '.join(str(exc).split())}")
    return Config(values=values, path=path)


def env_flag(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None
