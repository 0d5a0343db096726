"""The README's install and run commands, run for real in a fresh virtual environment.

`pip install .` must build the wheel (with the bundled assets) and resolve every dependency in
pyproject.toml. Downloading torch, diffusers and transformers again for each run would take
minutes and gigabytes, so the fresh venv sees the packages already installed for the test run:
pip then resolves the requirements against them (a version that does not satisfy pyproject's
ranges would make it fetch or fail) and installs only picotui itself. The only download left is
the build backend for pip's isolated build.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import ROOT


def make_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    # --system-site-packages reaches only the *base* interpreter's site-packages. When the tests
    # themselves run inside a venv (CI's .ci-venv), torch & co live in that venv, so hand its
    # site-packages to the new one with a .pth file. Plain path lines: the parent's own .pth files
    # (such as an editable picotui) are not processed, so the fresh install is what gets imported.
    if sys.prefix != sys.base_prefix:
        purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        parent = [p for p in site.getsitepackages() if Path(p).is_dir()]
        (Path(purelib) / "_picotui_test_parent.pth").write_text("\n".join(parent) + "\n")
    return where / "bin"


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PICOTUI_", "PYTHON", "VIRTUAL_ENV", "XDG_"))}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    bin_dir = make_venv(base / "venv")
    home = base / "home"
    home.mkdir()
    env = clean_env(home)
    # README's install command, run from the checkout (it says "from a checkout of this repository").
    result = subprocess.run([str(bin_dir / "pip"), "install", "."], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    work = base / "somewhere"  # not a checkout: no models/ here, so the user data dir is used
    work.mkdir()
    return bin_dir, env, work, home


def run(installed, *args, timeout=300):
    bin_dir, env, work, _home = installed
    return subprocess.run([str(bin_dir / "picotui"), *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_installed_package_is_the_wheel_not_the_checkout(installed):
    bin_dir, env, work, _home = installed
    result = subprocess.run([str(bin_dir / "python"), "-c",
                             "import picotui, picotui.paths as p; print(picotui.__file__); print(p.assets_dir())"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    module, assets = result.stdout.split()
    assert not module.startswith(str(ROOT)), module
    # The bundled SD1.5 configs and tokenizer travel inside the wheel.
    assert Path(assets).is_relative_to(Path(module).parent)
    assert (Path(assets) / "sd15" / "tokenizer" / "vocab.json").is_file()


@pytest.mark.slow
def test_version(installed):
    from picotui import __version__

    result = run(installed, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"picotui {__version__}"


@pytest.mark.slow
def test_paths(installed):
    _bin, _env, work, home = installed
    result = run(installed, "paths")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert rows["models"] == str(home / ".local" / "share" / "picotui" / "models")
    assert rows["config"] == str(home / ".config" / "picotui" / "config.toml")
    assert rows["log"] == str(home / ".local" / "state" / "picotui" / "picotui.log")


@pytest.mark.slow
def test_check_generates_with_the_demo_model(installed):
    # README's run command in headless mode: load the demo model, make one tiny image, exit 0.
    result = run(installed, "--check", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
