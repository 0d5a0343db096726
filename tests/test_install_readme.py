"""README stays true: every command in its ```bash blocks maps to the tests that run (or, where
nothing here can run it, check) it, by pytest node id, and those tests must exist. The README's
`picotui ...` commands are run here for real on the demo model.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import ROOT, picotui_env, run_picotui

from picotui.cli import build_parser

README = (ROOT / "README.md").read_text()
CU126 = "https://download.pytorch.org/whl/cu126"
RUNS = "tests/test_install_readme.py::test_readme_picotui_command_runs"

# README command -> the tests that prove it (pytest node ids), or ".ci/run".
PROVEN_BY = {
    "pip install .": ["tests/test_install_venv.py::test_installed_package_is_the_wheel_not_the_checkout",
                      "tests/test_install_venv.py::test_check_generates_with_the_demo_model"],
    # PyTorch's index is out of reach here: the pin, the index and pyproject's range are checked.
    f'pip install . "torch==2.13.0+cu126" --extra-index-url {CU126}':
        ["tests/test_install_readme.py::test_pascal_installs_pin_the_dockerfile_torch"],
    "pipx install .": ["tests/test_install_tools.py::test_pipx_install_then_check"],
    "uv tool install .": ["tests/test_install_tools.py::test_uv_tool_install_then_check",
                          "tests/test_install_tools.py::test_uv_pip_compile_resolves_the_ranges_today"],
    # Run with the pin and the index swapped for the local CPU wheel.
    f'PIPX_DEFAULT_BACKEND=pip pipx install . --preinstall "torch==2.13.0+cu126" '
    f'--pip-args="--extra-index-url {CU126}"':
        ["tests/test_install_tools.py::test_pipx_install_then_check",
         "tests/test_install_readme.py::test_pascal_installs_pin_the_dockerfile_torch"],
    f'uv tool install . --with "torch==2.13.0+cu126" --extra-index-url {CU126} --index-strategy unsafe-best-match':
        ["tests/test_install_tools.py::test_uv_tool_install_then_check",
         "tests/test_install_readme.py::test_pascal_installs_pin_the_dockerfile_torch"],
    # No Docker engine here: the Dockerfile is linted and read.
    "docker build -t picotui .": ["tests/test_docker_file.py::test_hadolint_passes",
                                  "tests/test_docker_file.py::test_base_image_is_cuda_12_6_runtime",
                                  "tests/test_docker_file.py::test_torch_is_pinned_from_the_cu126_index"],
    'docker run --gpus all -it -v "$PWD/models:/models" -v "$PWD/outputs:/outputs" picotui':
        ["tests/test_docker_file.py::test_models_and_outputs_are_volumes_wired_to_picotui",
         "tests/test_docker_file.py::test_entrypoint_is_picotui",
         "tests/test_install_readme.py::test_docker_run_mounts_match_the_image_volumes"],
    "python -m pytest": [".ci/run", "tests/test_install_readme.py::test_test_command_is_what_ci_runs"],
    # The TUI, driven through Textual's pilot; its headless --check from a fresh install.
    "picotui": ["tests/test_ui_engine.py::test_fill_the_form_with_keys_generate_and_restore",
                "tests/test_ui_browser.py::test_empty_library_says_where_files_go_and_r_finds_a_file_added_since",
                "tests/test_install_venv.py::test_check_generates_with_the_demo_model"],
    # The plot's README example at 512x512 and 20 steps takes minutes on a CPU: the same axes at 64x64.
    'picotui grid --x "CFG scale: 4-12 [5]" --y "Sampler: Euler a, DPM++ 2M" --steps 20 "a corgi"':
        ["tests/test_cli_grid.py::test_grid_prints_every_cell_then_the_grid"],
    # Upscaling needs a picture and (the first) a model file: the same commands on a tiny picture and model.
    "picotui upscale outputs/2025-01-31/00001-1234.png --upscaler 4x-UltraSharp --scale 4":
        ["tests/test_upscalers_extras.py::test_picotui_upscale_with_a_model_keeps_the_recipe"],
    "picotui upscale photo.jpg --resize 2048x2048":
        ["tests/test_upscalers_extras.py::test_picotui_upscale_to_a_size_crops_to_fit"],
    # The second pass on the demo model at 64x64 (an upscaler model: a tiny one named as the README's).
    'picotui generate "a castle on a hill, watercolor" --init-image sketch.png --strength 0.6 --resize-mode '
    '"crop and resize"': ["tests/test_cli_second_pass.py::test_generate_img2img_with_the_demo_model_names_its_source"],
    'picotui generate "a castle on a hill, watercolor" --hires 2 --hires-upscaler Latent --hires-steps 12':
        ["tests/test_cli_second_pass.py::test_generate_hires_then_again_from_its_recipe"],
    'picotui generate "a castle on a hill" --hires-resize 1024x1536 --hires-upscaler 4x-UltraSharp '
    '--hires-strength 0.35': ["tests/test_cli_second_pass.py::test_generate_hires_with_an_upscaler_model"],
    "picotui generate --from outputs/2025-01-31/00001-1234.png --hires 2":
        ["tests/test_cli_second_pass.py::test_generate_hires_then_again_from_its_recipe"],
    "picotui --check": ["tests/test_install_venv.py::test_check_generates_with_the_demo_model",
                        "tests/test_cli_generate.py::test_check_makes_one_tiny_image_and_says_ok"],
}


def bash_commands(text: str) -> list[str]:
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


COMMANDS = bash_commands(README)
RUN_HERE = [c for c in COMMANDS if c.startswith("picotui ") and c not in PROVEN_BY]
for _command in RUN_HERE:
    PROVEN_BY[_command] = [f"{RUNS}[{_command}]"]


def test_readme_has_the_required_commands():
    for required in ("pip install .", "picotui", "picotui --check", "python -m pytest",
                     "docker build -t picotui .", "picotui paths"):
        assert required in COMMANDS, required
    assert any(c.startswith("docker run --gpus all -it -v ") for c in COMMANDS)


def test_readme_shows_a_real_capture_of_the_main_screen():
    screen = README.split("<!-- screen -->", 1)[1].split("<!-- /screen -->", 1)[0]
    assert "lead pastes" not in screen and "```text" in screen
    for landmark in ("Prompt", "Negative prompt", "Checkpoint", "Sampler", "Seed", "Generate ^g", "engine: ",
                     "^g Generate"):
        assert landmark in screen, landmark  # the form, the status line and the footer as the app draws them


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_is_proven(command):
    assert command in PROVEN_BY, f"README shows {command!r}, which no test proves; add it to PROVEN_BY"


def test_no_stale_entries():
    assert set(PROVEN_BY) <= set(COMMANDS), set(PROVEN_BY) - set(COMMANDS)


def test_the_proving_tests_exist_and_are_collected():
    node_ids = sorted({n for nodes in PROVEN_BY.values() for n in nodes if n != ".ci/run"})
    files = sorted({n.split("::")[0] for n in node_ids})
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             *files], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected = set(result.stdout.splitlines())
    missing = [n for n in node_ids if n not in collected]
    assert not missing, f"README commands point at tests that do not exist: {missing}"
    assert (ROOT / ".ci" / "run").is_file()


def test_pascal_installs_pin_the_dockerfile_torch():
    """Every Pascal install names the cu126 index and pins the torch the Docker image installs, and
    pyproject's range admits that pin (PyTorch's index is out of reach for a test that runs it)."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    dockerfile = (ROOT / "Dockerfile").read_text()
    torch_version = re.search(r"^ARG TORCH_VERSION=(\S+)$", dockerfile, flags=re.M).group(1)
    pin = f"torch=={torch_version}+cu126"
    pascal = [c for c in COMMANDS if CU126 in c]
    assert len(pascal) == 3, pascal  # pip, pipx, uv
    for command in pascal:
        assert f'"{pin}"' in command, command
    pyproject = (ROOT / "pyproject.toml").read_text()
    torch_range = Requirement(re.search(r'"(torch[<>=!~][^"]*)"', pyproject).group(1))
    assert Version(f"{torch_version}+cu126") in torch_range.specifier
    pipx = next(c for c in pascal if "pipx" in c)
    assert pipx.startswith("PIPX_DEFAULT_BACKEND=pip ")  # with the uv backend, --pip-args go to uv
    uv = next(c for c in pascal if c.startswith("uv "))
    assert "--index-strategy unsafe-best-match" in uv


# ---- the README's picotui commands, run ------------------------------------------------------------------

TINY = ["--steps", "2", "--width", "64", "--height", "64", "--seed", "1"]


@pytest.fixture(scope="module")
def user(tmp_path_factory, cache_dir, demo_checkpoint):
    """An isolated user, not in a checkout; the session's cache (the demo model is built once)."""
    base = tmp_path_factory.mktemp("readme-user")
    env = picotui_env(base, inherit=True, PICOTUI_CONFIG=str(base / "config.toml"), PICOTUI_STATE=str(base / "state"),
                      PICOTUI_CACHE=str(cache_dir), PICOTUI_MODELS=str(base / "models"),
                      PICOTUI_OUTPUTS=str(base / "outputs"), PICOTUI_DEVICE="cpu", HF_HUB_OFFLINE="1",
                      TRANSFORMERS_OFFLINE="1")
    return base, env


def run_as(user, argv):
    base, env = user
    return run_picotui(env, *argv, cwd=base)


@pytest.fixture(scope="module")
def generated(user):
    """The README's generate command, with tiny settings added so it takes seconds on a CPU."""
    command = next(c for c in RUN_HERE if c.startswith("picotui generate "))
    result = run_as(user, shlex.split(command)[1:] + TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return shlex.split(command)[2], result


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN_HERE, ids=RUN_HERE)
def test_readme_picotui_command_runs(command, user, generated):
    from picotui.engine.recipes.metadata import read_recipe

    argv = shlex.split(command)[1:]
    if argv[0] == "generate":
        prompt, result = generated
        paths = [Path(line) for line in result.stdout.splitlines()]
        assert len(paths) == 1 and paths[0].is_file() and paths[0].is_relative_to(user[0] / "outputs")
        assert read_recipe(paths[0]).request.prompt == prompt
        return
    if argv[0] == "info":  # the README's example file name, swapped for the image generate just made
        argv = ["info", generated[1].stdout.strip()]
    result = run_as(user, argv)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    expect = {"info": generated[0], "models": "demo", "paths": str(user[0] / "models"), "--help": "usage: picotui"}
    assert expect[argv[0]] in result.stdout, result.stdout


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


def _declared_bindings(*nodes):
    """The key bindings picotui itself declares on these nodes' classes (Textual's own defaults left out)."""
    from textual.binding import Binding

    found = []
    for node in nodes:
        for cls in type(node).__mro__:
            if cls.__module__.startswith("picotui"):
                for item in cls.__dict__.get("BINDINGS", []):
                    binding = item if isinstance(item, Binding) else Binding(*item)
                    found += [(key.strip(), binding) for key in binding.key.split(",")]
    return found


async def test_keys_table_is_the_apps_own_main_screen_keys(tmp_path):
    """The README's keys table against the bindings the running app has on its main screen, both ways."""
    from paths_support import make_paths

    from picotui.ui.app import PicoApp

    section = README.split("## Keys", 1)[1].split("\n## ", 1)[0]
    documented = {key.strip() for row in re.findall(r"^\| ([^|]+) \|", section, flags=re.M)[2:]
                  for key in row.split(" or ")}
    app = PicoApp(make_paths(tmp_path), graphics_choice="none", start_engine=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        declared = _declared_bindings(app, app.screen, app.screen.query_one("#form"))  # the form's F6 too
        active = app.active_bindings  # what a key press on the main screen reaches now
        keys = {binding.key_display or (key.upper() if re.fullmatch(r"f\d+", key) else key)
                for key, binding in declared}
        assert keys == documented
        for key, binding in declared:
            printable = len(key) == 1 or len(binding.key_display or "") == 1  # a text field takes those
            if not printable:
                assert key in active and active[key].binding.action == binding.action, key


def test_docker_run_mounts_match_the_image_volumes():
    run = next(c for c in COMMANDS if c.startswith("docker run"))
    mounts = [shlex.split(run)[i + 1] for i, a in enumerate(shlex.split(run)) if a == "-v"]
    targets = {m.split(":")[1] for m in mounts}
    dockerfile = (ROOT / "Dockerfile").read_text()
    volume = re.search(r"^VOLUME (.+)$", dockerfile, flags=re.M).group(1)
    assert targets == {"/models", "/outputs"} and all(t in volume for t in targets)
    assert "-it" in run.split() and "--gpus" in run.split()
