"""README stays true: every command in its ```bash blocks is one we know and prove somewhere.

Each known command names where it is proven. picotui commands are also parsed by picotui's own
argument parser here, so a renamed flag or subcommand fails this test instead of misleading users.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from picotui.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CU126 = "https://download.pytorch.org/whl/cu126"

# Command -> where it is proven (the lines are matched exactly).
KNOWN = {
    "pip install .": "tests/test_install_venv.py runs it in a fresh venv",
    f"pip install . --extra-index-url {CU126}":
        "the tested command plus the cu126 index; the index is the Dockerfile's (checked below)",
    "pipx install .": "not run: would download torch (GBs) into pipx's own venv; same wheel as pip install .",
    "uv tool install .": "not run: would download torch (GBs) into uv's own venv; same wheel as pip install .",
    "docker build -t picotui .": "no Docker engine in CI: tests/test_docker_file.py checks the Dockerfile",
    'docker run --gpus all -it -v "$PWD/models:/models" -v "$PWD/outputs:/outputs" picotui':
        "tests/test_docker_file.py checks the volumes, entrypoint and user it relies on",
    "python -m pytest": ".ci/run runs exactly this",
    "picotui": "the TUI: tests/test_ui_* drive it; tests/test_install_venv.py runs its --check mode",
    "picotui --check": "tests/test_install_venv.py runs it from a fresh venv",
    "picotui paths": "tests/test_install_venv.py and tests/test_paths_resolve.py run it",
    "picotui --help": "run below",
}
PICOTUI_PARSED_ONLY = ("picotui generate ", "picotui info ", "picotui models")  # proven by their owners' tests


def bash_commands(text: str) -> list[str]:
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


COMMANDS = bash_commands(README)


def test_readme_has_the_required_commands():
    for required in ("pip install .", "picotui", "picotui --check", "python -m pytest",
                     "docker build -t picotui .", "picotui paths"):
        assert required in COMMANDS, required
    assert any(c.startswith("docker run --gpus all -it -v ") for c in COMMANDS)
    assert "<!-- screen -->" in README


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_is_known(command):
    assert command in KNOWN or command.startswith(PICOTUI_PARSED_ONLY), (
        f"README shows {command!r}, which no test proves; add it to KNOWN with where it is proven")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.split()[0] == "picotui"])
def test_picotui_commands_parse(command):
    argv = shlex.split(command)[1:]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help / --version exit 0 after printing; a bad flag exits 2
            assert exc.code == 0, err.getvalue()
            assert "picotui" in out.getvalue()
            return
    assert callable(args.func)


def test_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line.strip() for line in ci if line.strip() and not line.lstrip().startswith("#")]
    assert "python -m pytest" in COMMANDS
    assert commands[-1] == "python -m pytest"


def test_pascal_index_matches_the_dockerfile():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG TORCH_INDEX={CU126}" in dockerfile
    assert CU126 in README


def test_keys_table_lists_every_documented_key():
    for key in ("ctrl+g", "escape", "ctrl+r", "ctrl+l", "ctrl+o", "ctrl+t", "F1", "?", "ctrl+p", "ctrl+q"):
        assert re.search(rf"^\| {re.escape(key)} \|", README, flags=re.M), key


def test_docker_run_mounts_match_the_image_volumes():
    run = next(c for c in COMMANDS if c.startswith("docker run"))
    mounts = [shlex.split(run)[i + 1] for i, a in enumerate(shlex.split(run)) if a == "-v"]
    targets = {m.split(":")[1] for m in mounts}
    dockerfile = (ROOT / "Dockerfile").read_text()
    volume = re.search(r"^VOLUME (.+)$", dockerfile, flags=re.M).group(1)
    assert targets == {"/models", "/outputs"} and all(t in volume for t in targets)
    assert "-it" in run.split() and "--gpus" in run.split()
