"""`picotui generate` and `picotui --check` as a user runs them: a real process, real files, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import ROOT, picotui_env, run_picotui


@pytest.fixture(scope="module")
def env(tmp_path_factory, cache_dir, demo_checkpoint):
    """An isolated user: its own config, state and models; the session's cache (the demo model is built once)."""
    home = tmp_path_factory.mktemp("cli-user")
    (home / "models").mkdir()
    return picotui_env(home, inherit=True, PICOTUI_CONFIG=str(home / "config.toml"),
                       PICOTUI_STATE=str(home / "state"), PICOTUI_CACHE=str(cache_dir),
                       PICOTUI_MODELS=str(home / "models"), PICOTUI_DEVICE="cpu", HF_HUB_OFFLINE="1",
                       TRANSFORMERS_OFFLINE="1")


def test_generate_the_demo_prints_the_path_and_the_recipe_reads_back(env, tmp_path):
    from picotui.engine.recipes.metadata import read_recipe

    out = run_picotui(env, "generate", "--checkpoint", "demo", "--steps", "4", "--width", "64", "--height", "64",
                      "--seed", "1", "--outdir", str(tmp_path), "--batch-count", "2", "--sampler", "Euler a")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in out.stderr
    paths = [Path(line) for line in lines]
    assert all(p.is_file() and p.is_relative_to(tmp_path) for p in paths)
    recipes = [read_recipe(p) for p in paths]
    assert [r.request.seed for r in recipes] == [1, 2]
    first = recipes[0].request
    assert (first.steps, first.width, first.height, first.sampler, first.checkpoint) == (4, 64, 64, "Euler a", "demo")
    assert "Steps: 4" in recipes[0].parameters and "Seed: 1" in recipes[0].parameters
    assert "abstract noise" in out.stderr  # the demo says what it is


@pytest.mark.parametrize("args,expect", [
    (["--steps", "0"], "Steps"),
    (["--sampler", "Euler b"], "sampler"),
    (["--schedule-type", "Beta"], "schedule type"),
    (["--width", "100"], "multiple of 8"),
    (["--lora", "style:lots"], "NAME:WEIGHT"),
    (["--lora", "style:3"], "out of range: use 0 to 2"),
    (["--bogus"], "picotui generate: unrecognized arguments: --bogus"),
    (["--checkpoint", "missingModel_v1.safetensors"], "missingModel"),
    (["--steps"], "expected one argument"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(env, tmp_path, args, expect):
    out = run_picotui(env, "generate", "--outdir", str(tmp_path), *args)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], out.stderr
    assert out.stdout == ""
    assert not list(tmp_path.rglob("*.png"))


def test_check_makes_one_tiny_image_and_says_ok(env):
    out = run_picotui(env, "--check")
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("picotui check ok: cpu, ") and line.endswith(" s")
    # what the terminal is and how pictures would be drawn (no tty here: plain characters)
    assert "terminal: unknown terminal" in out.stderr and "graphics: unicode (not connected to a terminal" in out.stderr


@pytest.mark.slow
def test_generate_into_a_closed_pipe_exits_quietly(env, tmp_path):
    # `picotui generate ... | head -0`: the reader is gone before the first path is printed.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        out = subprocess.run([sys.executable, "-m", "picotui", "generate", "--checkpoint", "demo", "--steps", "2",
                              "--width", "64", "--height", "64", "--seed", "1", "--batch-count", "2",
                              "--outdir", str(tmp_path), "--quiet"], stdout=write_end, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=ROOT, timeout=300)
    finally:
        os.close(write_end)
    assert out.returncode == 141, out.stderr
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


@pytest.mark.slow
def test_generate_takes_path_flags_after_the_subcommand(env, tmp_path):
    """--outputs/--state/--cache after `generate` reach the engine (an image lands in --outputs, the log
    in --state)."""
    out = run_picotui(env, "generate", "--checkpoint", "demo", "--steps", "2", "--width", "64", "--height", "64",
                      "--seed", "3", "--outputs", str(tmp_path / "outs"), "--state", str(tmp_path / "state"), "--quiet")
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path.is_file() and path.is_relative_to(tmp_path / "outs")
    assert (tmp_path / "state" / "picotui.log").is_file()


@pytest.mark.parametrize("args, expected", [
    ([], ("DPM++ 2M SDE", "Karras")),  # the default: DPM++ 2M SDE Karras
    (["--sampler", "DPM++ 2M Karras"], ("DPM++ 2M", "Karras")),  # an old combined name
    (["--sampler", "DPM++ 2M"], ("DPM++ 2M", "Karras")),  # A1111's Automatic for DPM++ 2M
    (["--sampler", "Euler", "--schedule-type", "SGM Uniform"], ("Euler", "SGM Uniform")),
    (["--schedule-type", "Exponential"], ("DPM++ 2M SDE", "Exponential")),
])
def test_sampler_and_schedule_type_options(args, expected):
    import argparse

    from picotui.cli.generate import build_request, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    request = build_request(parser.parse_args(["generate", *args]))
    assert (request.sampler, request.schedule_type) == expected
