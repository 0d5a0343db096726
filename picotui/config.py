"""The user's config file (TOML, in the user config dir). A broken file never stops the app.

Every setting is resolved the same way: command-line flag > environment variable > config file >
built-in default. The file's own location comes from --config or PICOTUI_CONFIG (see picotui.paths). A config value of the wrong type, or a key we do not know, is dropped and reported
in one line (`Config.problem`) so the app can show it as a notice; the rest of the file still counts.

Example `config.toml`:

    models = "~/sd/models"
    outputs = "~/Pictures/picotui"
    state = "~/.local/state/picotui"   # the log
    cache = "~/.cache/picotui"         # model hashes, the demo model
    graphics = "halfcell"      # auto, kitty, sixel, halfcell, unicode, none
    allow_pickle = false       # load .ckpt files (weights only, never code)
    device = "auto"            # auto, cuda, cuda:1, cpu
    memory_mode = "auto"       # how hard to save VRAM (see `picotui --help`)
    speed = "auto"             # auto, eager, cuda-graphs
    preview_rate = "200K"      # bytes per second live previews may send to the terminal (0: no limit)

    [keymap]                   # binding id = key(s): see the README's Keys section for the ids
    generate = "ctrl+enter"
    new_seed = "f5,ctrl+r"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picotui.engine.errors import one_line
from picotui.engine.hardware.speed import SPEED_SETTINGS
from picotui.paths import PLACE_ENV, default_config_file, env_flag

GRAPHICS_CHOICES = ("auto", "kitty", "sixel", "halfcell", "unicode", "none")

# key -> (type the TOML value must have, environment variable that overrides it, default)
# The places (models, outputs, state, cache) default to None: picotui.paths picks them (./models or the
# data dir, the platformdirs user state/cache dirs) and resolves them itself.
SETTINGS: dict[str, tuple[type, str, Any]] = {
    **{place: (str, env, None) for place, env in PLACE_ENV.items()},
    "graphics": (str, "PICOTUI_GRAPHICS", "auto"),
    "allow_pickle": (bool, "PICOTUI_ALLOW_PICKLE", False),
    "device": (str, "PICOTUI_DEVICE", "auto"),
    "memory_mode": (str, "PICOTUI_MEMORY_MODE", "auto"),
    "speed": (str, "PICOTUI_SPEED", "auto"),
    "preview_rate": (str, "PICOTUI_PREVIEW_RATE", "200K"),  # bytes/s for live previews (0 = no limit)
}
# Values with a closed set of choices; the others (device, memory_mode) are checked by whoever uses them.
CHOICES: dict[str, tuple[str, ...]] = {"graphics": GRAPHICS_CHOICES, "speed": SPEED_SETTINGS}

KEYMAP = "keymap"  # the config table that changes keys

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass
class Config:
    values: dict = field(default_factory=dict)
    path: Path | None = None
    problem: str | None = None  # one line, shown as a notice when (part of) the file could not be used
    keymap: dict[str, str] = field(default_factory=dict)  # [keymap]: binding id -> key(s), for App.set_keymap

    def get(self, key: str, flag: Any = None) -> Any:
        """The effective value of `key`: flag > environment > this file > default."""
        return setting(key, flag, self.values)


def load_config(path: Path | None = None) -> Config:
    path = Path(path) if path else default_config_file()
    try:
        if not path.is_file():
            return Config(path=path)
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        return Config(path=path, problem=f"Ignored {path}: {one_line(exc)}. Fix or delete it.")
    values, bad, keymap = {}, [], {}
    for key, value in raw.items():
        if key == KEYMAP:
            keymap = _keymap(value, bad)
            continue
        if key not in SETTINGS:
            bad.append(f"unknown key '{key}'")
            continue
        kind = SETTINGS[key][0]
        if not isinstance(value, kind):
            bad.append(f"'{key}' should be {'true or false' if kind is bool else 'a string'}")
            continue
        if key in CHOICES and value not in CHOICES[key]:
            bad.append(f"'{key}' should be one of {', '.join(CHOICES[key])}")
            continue
        values[key] = value
    problem = f"In {path}: ignored {'; '.join(bad)}." if bad else None
    return Config(values=values, path=path, problem=problem, keymap=keymap)


def _keymap(table: Any, bad: list[str]) -> dict[str, str]:
    """The [keymap] table's string entries (binding id -> "key" or "key1,key2"); the rest is reported in
    `bad`. Whether an id names a binding only the app knows: it says so when it starts."""
    if not isinstance(table, dict):
        bad.append(f"'{KEYMAP}' should be a table ([{KEYMAP}] with lines like generate = \"ctrl+enter\")")
        return {}
    keymap = {}
    for binding_id, keys in table.items():
        if isinstance(keys, str) and keys.strip():
            keymap[binding_id] = keys.strip()
        else:
            bad.append(f"keymap '{binding_id}' should be a key as a string, like \"ctrl+enter\"")
    return keymap


def setting(key: str, flag: Any = None, config: dict | None = None) -> Any:
    """Resolve one setting. Empty flags/env values count as unset; a bad env value falls through."""
    return resolve(key, flag, config)[0]


def resolve(key: str, flag: Any = None, config: dict | None = None) -> tuple[Any, str]:
    """(value, where it came from: "flag", the env variable's name, "config" or "default")."""
    kind, env, default = SETTINGS[key]
    if flag is not None and flag != "":
        return flag, "flag"
    env_value = env_flag(env)
    if env_value is not None:
        parsed = _parse_env(key, kind, env_value)
        if parsed is not None:
            return parsed, env
    value = (config or {}).get(key)
    if isinstance(value, kind) and value != "" and (key not in CHOICES or value in CHOICES[key]):
        return value, "config"
    return default, "default"


def env_problems() -> list[str]:
    """One line per PICOTUI_* variable whose value is ignored (so `picotui paths` can say so)."""
    problems = []
    for key, (kind, env, _default) in SETTINGS.items():
        text = env_flag(env)
        if text is not None and _parse_env(key, kind, text) is None:
            wanted = "1/0, true/false, yes/no" if kind is bool else ", ".join(CHOICES[key])
            problems.append(f"Ignored {env}={text!r}: use {wanted}.")
    return problems


def _parse_env(key: str, kind: type, text: str) -> Any:
    if kind is bool:
        low = text.lower()
        return True if low in _TRUE else False if low in _FALSE else None
    if key in CHOICES and text not in CHOICES[key]:
        return None
    return text

