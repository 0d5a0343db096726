"""The TOML config: precedence flag > env > config > default, and a broken file never crashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_support import picotui_env, run_picotui

from picotui.config import SETTINGS, env_problems, load_config, resolve, setting


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for _kind, env, _default in SETTINGS.values():
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_missing_file_is_fine_and_defaults_apply(tmp_path):
    config = load_config(tmp_path / "nope.toml")
    assert config.values == {} and config.problem is None
    assert config.get("graphics") == "auto"
    assert config.get("allow_pickle") is False
    assert config.get("device") == "auto" and config.get("memory_mode") == "auto"


def test_default_location_follows_picotui_config(tmp_path):
    write(tmp_path, 'graphics = "sixel"\n')
    assert load_config().values == {"graphics": "sixel"}


def test_all_keys_read(tmp_path):
    path = write(tmp_path, 'models = "/m"\noutputs = "/o"\ngraphics = "halfcell"\n'
                           'allow_pickle = true\ndevice = "cpu"\nmemory_mode = "low"\nspeed = "eager"\n'
                           'state = "/s"\ncache = "/c"\npreview_rate = "100K"\n')
    config = load_config(path)
    assert config.problem is None
    assert config.values == {"models": "/m", "outputs": "/o", "graphics": "halfcell", "allow_pickle": True,
                             "device": "cpu", "memory_mode": "low", "speed": "eager", "state": "/s", "cache": "/c",
                             "preview_rate": "100K"}
    assert set(config.values) == set(SETTINGS)  # the test names every key there is


@pytest.mark.parametrize("key, env, env_value, config_value, flag, expected", [
    ("graphics", "PICOTUI_GRAPHICS", "kitty", "sixel", "halfcell", ("halfcell", "flag")),
    ("graphics", "PICOTUI_GRAPHICS", "kitty", "sixel", None, ("kitty", "PICOTUI_GRAPHICS")),
    ("graphics", "PICOTUI_GRAPHICS", None, "sixel", None, ("sixel", "config")),
    ("graphics", "PICOTUI_GRAPHICS", None, None, None, ("auto", "default")),
    ("allow_pickle", "PICOTUI_ALLOW_PICKLE", "no", True, True, (True, "flag")),
    ("allow_pickle", "PICOTUI_ALLOW_PICKLE", "no", True, None, (False, "PICOTUI_ALLOW_PICKLE")),
    ("allow_pickle", "PICOTUI_ALLOW_PICKLE", "YES", False, None, (True, "PICOTUI_ALLOW_PICKLE")),
    ("allow_pickle", "PICOTUI_ALLOW_PICKLE", None, True, None, (True, "config")),
    ("device", "PICOTUI_DEVICE", "cuda:1", "cpu", None, ("cuda:1", "PICOTUI_DEVICE")),
    ("memory_mode", "PICOTUI_MEMORY_MODE", None, "low", None, ("low", "config")),
    ("state", "PICOTUI_STATE", "/env", "/cfg", None, ("/env", "PICOTUI_STATE")),
    ("cache", "PICOTUI_CACHE", None, "/cfg", None, ("/cfg", "config")),
    ("speed", "PICOTUI_SPEED", "turbo", "eager", None, ("eager", "config")),  # a bad env value falls through
])
def test_precedence(monkeypatch, key, env, env_value, config_value, flag, expected):
    if env_value is not None:
        monkeypatch.setenv(env, env_value)
    config = {} if config_value is None else {key: config_value}
    assert resolve(key, flag, config) == expected
    assert setting(key, flag, config) == expected[0]


def test_empty_or_bad_env_value_falls_through_and_is_reported(monkeypatch):
    monkeypatch.setenv("PICOTUI_GRAPHICS", "  ")
    assert resolve("graphics", None, {"graphics": "sixel"}) == ("sixel", "config")
    monkeypatch.setenv("PICOTUI_GRAPHICS", "retina")
    monkeypatch.setenv("PICOTUI_ALLOW_PICKLE", "maybe")
    assert resolve("graphics", None, {"graphics": "sixel"}) == ("sixel", "config")
    assert resolve("allow_pickle", None, {}) == (False, "default")
    problems = env_problems()
    assert len(problems) == 2
    assert any("PICOTUI_GRAPHICS='retina'" in p and "halfcell" in p for p in problems)
    assert any("PICOTUI_ALLOW_PICKLE='maybe'" in p for p in problems)


@pytest.mark.parametrize("content", [
    'models = "unterminated\n',                   # TOML syntax error
    "models = [1, 2\n",
    b"\xff\xfe\x00garbage\x00\x81",               # not UTF-8 at all
    "[[[\n",
    'a = 1\na = 2\n',                              # duplicate key
])
def test_corrupt_file_is_ignored_with_one_line(tmp_path, content):
    config = load_config(write(tmp_path, content))
    assert config.values == {}
    assert config.problem and "\n" not in config.problem
    assert str(tmp_path / "config.toml") in config.problem
    assert config.get("graphics") == "auto"  # the app goes on with defaults


def test_wrong_types_and_unknown_keys_are_dropped_rest_kept(tmp_path):
    path = write(tmp_path, 'models = 5\nallow_pickle = "yes"\ngraphics = "retina"\n'
                           'colour = "blue"\noutputs = "/o"\ndevice = "cpu"\n')
    config = load_config(path)
    assert config.values == {"outputs": "/o", "device": "cpu"}
    assert "\n" not in config.problem
    for word in ("'models' should be a string", "'allow_pickle' should be true or false",
                 "'graphics' should be one of", "unknown key 'colour'"):
        assert word in config.problem


def test_keymap_table_is_read_and_bad_entries_reported(tmp_path):
    path = write(tmp_path, 'device = "cpu"\n[keymap]\ngenerate = "ctrl+enter"\nnew_seed = " f5,ctrl+r "\n'
                           'quit = 3\nhistory = ""\n')
    config = load_config(path)
    assert config.keymap == {"generate": "ctrl+enter", "new_seed": "f5,ctrl+r"}
    assert config.values == {"device": "cpu"}  # a keymap is not a setting
    assert "\n" not in config.problem
    assert "keymap 'quit' should be a key" in config.problem and "keymap 'history'" in config.problem
    not_a_table = load_config(write(tmp_path, 'keymap = "ctrl+g"\n'))
    assert not_a_table.keymap == {} and "'keymap' should be a table" in not_a_table.problem


def test_config_that_is_a_directory_is_as_if_missing(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    config = load_config(tmp_path / "dir.toml")
    assert (config.values, config.problem) == ({}, None)


def _assert_unreadable_is_one_line(path):
    config = load_config(path)
    assert config.values == {}
    assert config.problem.startswith(f"Ignored {path}: ") and config.problem.endswith("Fix or delete it.")
    assert "\n" not in config.problem and "ermission denied" in config.problem


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_config(tmp_path):
    path = write(tmp_path, 'device = "cpu"\n')
    path.chmod(0)
    try:
        _assert_unreadable_is_one_line(path)
    finally:
        path.chmod(0o600)


def test_unreadable_config_simulated(tmp_path, monkeypatch):
    """The same path as a chmod 000 file, for runs as root (root reads anything): reading it is refused."""
    path = write(tmp_path, 'device = "cpu"\n')
    real = Path.read_text

    def refuse(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    _assert_unreadable_is_one_line(path)


def test_cli_never_crashes_on_corrupt_config(tmp_path):
    write(tmp_path, b"models = \xff\n[[[")
    env = picotui_env(tmp_path, PICOTUI_CONFIG=str(tmp_path / "config.toml"))
    result = run_picotui(env, "paths", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    problem_lines = [line for line in result.stderr.splitlines() if line.startswith("picotui: Ignored")]
    assert len(problem_lines) == 1 and "config.toml" in problem_lines[0]
    assert "models" in result.stdout


def test_config_flag_picks_the_file(tmp_path):
    """`picotui --config FILE` reads that file (and ignores PICOTUI_CONFIG, set by the fixture)."""
    mine = tmp_path / "mine.toml"
    mine.write_text(f'outputs = "{tmp_path / "from-mine"}"\nstate = "{tmp_path / "st"}"\n')
    env = picotui_env(tmp_path, PICOTUI_CONFIG=str(tmp_path / "config.toml"))
    result = run_picotui(env, "paths", "--config", str(mine), cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert rows["config"] == str(mine) and rows["outputs"] == str(tmp_path / "from-mine")
    assert rows["log"] == str(tmp_path / "st" / "picotui.log")
