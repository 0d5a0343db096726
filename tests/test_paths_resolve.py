"""Where things go: flag > env > config > default for every place, checkout vs user data dir,
and `picotui paths` printing what the app will really use and where each place came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import ROOT, picotui_env, run_picotui

from picotui.paths import Paths, assets_dir, is_checkout, resolve_paths, resolve_paths_with_sources


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Point every per-user place into tmp so nothing here reads or writes the real home."""
    for name in ("PICOTUI_MODELS", "PICOTUI_OUTPUTS", "PICOTUI_CONFIG", "PICOTUI_STATE", "PICOTUI_CACHE"):
        monkeypatch.delenv(name, raising=False)
    for xdg in ("DATA", "CONFIG", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{xdg}_HOME", str(tmp_path / "xdg" / xdg.lower()))
    return tmp_path


def make_checkout(folder: Path) -> Path:
    """A folder that is a checkout of picotui: its pyproject.toml names the project."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text('[project]\nname = "picotui"\n')
    return folder


def test_checkout_defaults_to_local_folders(tmp_path):
    make_checkout(tmp_path)
    paths = resolve_paths(cwd=tmp_path)
    assert paths.models == tmp_path / "models"
    assert paths.outputs == tmp_path / "outputs"


def test_this_repository_is_a_checkout():
    assert is_checkout(ROOT)
    assert resolve_paths(cwd=ROOT).models == ROOT / "models"


@pytest.mark.parametrize("setup", [
    "models-only",            # ~ with an unrelated ~/models (another tool's): not ours
    "other-project",          # a pyproject.toml, but for some other project
    "broken-pyproject",       # not TOML at all
    "project-not-a-table",
])
def test_a_models_folder_alone_is_not_a_checkout(tmp_path, setup):
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    text = {"models-only": None, "other-project": '[project]\nname = "comfyui"\n',
            "broken-pyproject": "[project\nname = picotui", "project-not-a-table": 'project = "picotui"\n'}[setup]
    if text is not None:
        (tmp_path / "pyproject.toml").write_text(text)
    assert not is_checkout(tmp_path)
    paths = resolve_paths(cwd=tmp_path)
    assert paths.models == tmp_path / "xdg" / "data" / "picotui" / "models"
    assert paths.outputs == tmp_path / "xdg" / "data" / "picotui" / "outputs"


def test_elsewhere_defaults_to_user_data_dir(tmp_path):
    paths = resolve_paths(cwd=tmp_path)
    data = tmp_path / "xdg" / "data" / "picotui"
    assert paths.models == data / "models"
    assert paths.outputs == data / "outputs"
    assert paths.config_file == tmp_path / "xdg" / "config" / "picotui" / "config.toml"
    assert paths.log_file == tmp_path / "xdg" / "state" / "picotui" / "picotui.log"
    assert paths.hash_cache == tmp_path / "xdg" / "cache" / "picotui" / "hashes.json"


@pytest.mark.parametrize("flag, env, config, expected", [
    ("flag", "env", "config", "flag"),
    (None, "env", "config", "env"),
    (None, None, "config", "config"),
    (None, None, None, "default"),
    ("", "", "config", "config"),  # empty values count as unset
])
@pytest.mark.parametrize("key", ["models", "outputs"])
def test_precedence(monkeypatch, tmp_path, key, flag, env, config, expected):
    make_checkout(tmp_path)
    if env is not None:
        monkeypatch.setenv(f"PICOTUI_{key.upper()}", str(tmp_path / env) if env else "")
    kwargs = {key: (str(tmp_path / flag) if flag else flag)}
    cfg = {key: str(tmp_path / config)} if config else {}
    paths = resolve_paths(config=cfg, cwd=tmp_path, **kwargs)
    want = tmp_path / key if expected == "default" else tmp_path / expected
    assert getattr(paths, key) == want


def test_relative_and_home_paths_become_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    paths = resolve_paths(models="sd/models", config={"outputs": "~/pics"}, cwd=tmp_path)
    assert paths.models == tmp_path / "sd" / "models"
    assert paths.outputs == tmp_path / "home" / "pics"


def test_bad_config_values_never_crash(tmp_path):
    paths = resolve_paths(config={"models": 5, "outputs": ["x"]}, cwd=tmp_path)
    assert isinstance(paths, Paths)
    assert paths.models.name == "models" and paths.outputs.name == "outputs"


def test_state_cache_config_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("PICOTUI_STATE", str(tmp_path / "st"))
    monkeypatch.setenv("PICOTUI_CACHE", str(tmp_path / "ca"))
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "c.toml"))
    paths = resolve_paths(cwd=tmp_path)
    assert paths.log_file == tmp_path / "st" / "picotui.log"
    assert paths.hash_cache == tmp_path / "ca" / "hashes.json"
    assert paths.config_file == tmp_path / "c.toml"
    assert paths.model_dir("loras") == paths.models / "loras"


def test_assets_dir_has_the_bundled_configs():
    assert (assets_dir() / "sd15" / "model_index.json").is_file()


def run_cli(args, tmp_path, **env):
    xdg = {f"XDG_{xdg}_HOME": str(tmp_path / "xdg" / xdg.lower()) for xdg in ("DATA", "CONFIG", "STATE", "CACHE")}
    return run_picotui(picotui_env(tmp_path, **{**xdg, **env}), *args, cwd=tmp_path, timeout=60)


def rows(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in stdout.splitlines() if line.strip()}


def test_paths_command_prints_every_place_and_its_source(tmp_path):
    config = tmp_path / "xdg" / "config" / "picotui" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'outputs = "{tmp_path / "from-config"}"\n')
    result = run_cli(["--models", str(tmp_path / "from-flag"), "paths"], tmp_path,
                     PICOTUI_OUTPUTS=str(tmp_path / "from-env"))
    assert result.returncode == 0, result.stderr
    got = rows(result.stdout)
    assert set(got) == {"models", "outputs", "config", "settings", "log", "cache", "previews", "few-step"}
    assert got["models"] == str(tmp_path / "from-flag")
    assert got["outputs"] == str(tmp_path / "from-env")  # env beats config
    assert got["config"] == str(config)
    assert got["log"] == str(tmp_path / "xdg" / "state" / "picotui" / "picotui.log")
    assert "from flag" in result.stdout and "from PICOTUI_OUTPUTS" in result.stdout
    assert result.stderr == ""

    # Without the env var the config value wins over the default.
    result = run_cli(["paths"], tmp_path)
    assert rows(result.stdout)["outputs"] == str(tmp_path / "from-config")
    assert "from config" in result.stdout


def test_paths_command_in_a_checkout_uses_local_folders(tmp_path):
    make_checkout(tmp_path)
    got = rows(run_cli(["paths"], tmp_path).stdout)
    assert got["models"] == str(tmp_path / "models")
    assert got["outputs"] == str(tmp_path / "outputs")


def test_settings_file_sits_beside_the_config_file(monkeypatch, tmp_path):
    assert resolve_paths(cwd=tmp_path).settings_file == tmp_path / "xdg" / "config" / "picotui" / "last-settings.json"
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "elsewhere" / "my.toml"))
    assert resolve_paths(cwd=tmp_path).settings_file == tmp_path / "elsewhere" / "last-settings.json"


@pytest.mark.parametrize("flag, env, config, expected", [
    ("flag", "env", "config", "flag"),
    (None, "env", "config", "PICOTUI_{KEY}"),
    (None, None, "config", "config"),
    (None, None, None, "default"),
])
@pytest.mark.parametrize("key", ["state", "cache"])
def test_state_and_cache_precedence(monkeypatch, tmp_path, key, flag, env, config, expected):
    if env:
        monkeypatch.setenv(f"PICOTUI_{key.upper()}", str(tmp_path / env))
    cfg = {key: str(tmp_path / config)} if config else {}
    paths, sources = resolve_paths_with_sources(config=cfg, cwd=tmp_path, **{key: tmp_path / flag if flag else None})
    got = getattr(paths, key)
    if expected == "default":
        assert got == tmp_path / "xdg" / key / "picotui"
        assert sources[key].startswith("default")
    else:
        assert sources[key] == expected.replace("{KEY}", key.upper())
        assert got == tmp_path / (expected if expected in ("flag", "config") else env)


def test_config_file_location_is_flag_then_env_then_default(monkeypatch, tmp_path):
    _, sources = resolve_paths_with_sources(cwd=tmp_path)
    assert sources["config"].startswith("default")
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "env.toml"))
    paths, sources = resolve_paths_with_sources(cwd=tmp_path)
    assert (paths.config_file, sources["config"]) == (tmp_path / "env.toml", "PICOTUI_CONFIG")
    paths, sources = resolve_paths_with_sources(cwd=tmp_path, config_file="flag.toml")
    assert (paths.config_file, sources["config"]) == (tmp_path / "flag.toml", "flag")


def test_paths_command_reports_state_cache_and_config_flags_in_either_position(tmp_path):
    config = tmp_path / "my.toml"
    config.write_text(f'cache = "{tmp_path / "cache-from-config"}"\n')
    for argv in (["--config", str(config), "--state", str(tmp_path / "st"), "paths"],
                 ["paths", "--config", str(config), "--state", str(tmp_path / "st")],
                 ["--config", str(config), "paths", "--state", str(tmp_path / "st")]):
        result = run_cli(argv, tmp_path)
        assert result.returncode == 0, result.stderr
        got = rows(result.stdout)
        assert got["config"] == str(config)
        assert got["settings"] == str(tmp_path / "last-settings.json")
        assert got["log"] == str(tmp_path / "st" / "picotui.log")
        assert got["cache"] == str(tmp_path / "cache-from-config")
        lines = {line.split()[0]: line for line in result.stdout.splitlines()}
        assert "from flag" in lines["config"] and "from flag" in lines["log"] and "from config" in lines["cache"]
        assert "from default: user data dir" in lines["models"]


def test_paths_command_escapes_control_characters(tmp_path):
    result = run_cli(["paths", "--models", str(tmp_path / "evil\x1b[2J\x07")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "evil\\x1b[2J\\x07" in result.stdout


def test_model_folders_are_made_so_the_path_the_app_names_exists(tmp_path):
    from picotui.paths import MODEL_SUBDIRS

    paths = resolve_paths(models=tmp_path / "fresh" / "models", outputs=tmp_path / "out", cwd=tmp_path)
    assert paths.make_model_folders() is None
    assert all((paths.models / sub).is_dir() for sub in MODEL_SUBDIRS)
    assert paths.make_model_folders() is None  # again: nothing to do, no error
    blocked = resolve_paths(models=tmp_path / "file", outputs=tmp_path / "out", cwd=tmp_path)
    (tmp_path / "file").write_text("not a folder")
    problem = blocked.make_model_folders()
    assert problem.startswith("Could not create the model folders in") and "\n" not in problem
