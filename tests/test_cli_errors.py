"""The command line's manners: every parser's errors are one line, flags work before or after the
subcommand, nothing it prints can drive the terminal, and a closed pipe ends it quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import picotui_env, run_picotui

from picotui.cli import build_parser, main
from picotui.cli.common import PATH_FLAGS
from picotui.cli.generate import parse_lora
from picotui.engine.errors import RequestError


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    for name in ("PICOTUI_MODELS", "PICOTUI_OUTPUTS", "PICOTUI_STATE", "PICOTUI_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))
    for xdg in ("DATA", "STATE", "CACHE"):
        monkeypatch.setenv(f"XDG_{xdg}_HOME", str(tmp_path / "xdg" / xdg.lower()))


def env_for(tmp_path: Path) -> dict:
    return picotui_env(tmp_path, PICOTUI_CONFIG=str(tmp_path / "config.toml"), PICOTUI_STATE=str(tmp_path / "state"),
                       PICOTUI_CACHE=str(tmp_path / "cache"))


# Every parser: the main one and each subcommand's.
BAD = [
    (["--bogus"], "picotui: unrecognized arguments: --bogus (see picotui --help)"),
    (["bogus"], "picotui: argument COMMAND: invalid choice: 'bogus'"),
    (["--graphics", "retina"], "picotui: argument --graphics: invalid choice: 'retina'"),
    (["--memory-mode", "tiny"], "picotui: argument --memory-mode: invalid choice: 'tiny'"),
    (["--models"], "picotui: argument --models: expected one argument"),
    (["generate", "--bogus"], "picotui generate: unrecognized arguments: --bogus (see picotui generate --help)"),
    (["generate", "--steps"], "picotui generate: argument --steps: expected one argument"),
    (["generate", "a", "b"], "picotui generate: unrecognized arguments: b"),
    (["info"], "picotui info: the following arguments are required: FILE.png (see picotui info --help)"),
    (["info", "x.png", "--bogus"], "picotui info: unrecognized arguments: --bogus"),
    (["models", "--kind", "x"], "picotui models: argument --kind: invalid choice: 'x'"),
    (["models", "extra"], "picotui models: unrecognized arguments: extra"),
    (["paths", "--bogus"], "picotui paths: unrecognized arguments: --bogus (see picotui paths --help)"),
    (["paths", "--state"], "picotui paths: argument --state: expected one argument"),
]


@pytest.mark.parametrize("argv, expect", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, expect):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expect), captured.err


@pytest.mark.parametrize("argv, expect", [(["generate", "--bogus"], "picotui generate: unrecognized"),
                                          (["info"], "picotui info: the following")])
def test_bad_arguments_in_a_real_process(tmp_path, argv, expect):
    result = run_picotui(env_for(tmp_path), *argv, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(expect), result.stderr
    assert result.stdout == ""


def test_help_still_prints_the_whole_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: picotui generate") and "--checkpoint" in out and "--models" in out


# ---- flags before or after the subcommand ---------------------------------------------------------------

SUBCOMMANDS = {"generate": [], "info": ["x.png"], "models": [], "paths": []}


@pytest.mark.parametrize("command", SUBCOMMANDS)
@pytest.mark.parametrize("flag", PATH_FLAGS)
def test_path_flags_work_before_and_after_the_subcommand(command, flag):
    rest = SUBCOMMANDS[command]
    before = build_parser().parse_args([f"--{flag}", "/a", command, *rest])
    after = build_parser().parse_args([command, *rest, f"--{flag}", "/b"])
    neither = build_parser().parse_args([command, *rest])
    assert getattr(before, flag) == "/a"  # the subcommand's unset flag did not overwrite it
    assert getattr(after, flag) == "/b"
    assert not hasattr(neither, flag)
    both = build_parser().parse_args([f"--{flag}", "/a", command, *rest, f"--{flag}", "/b"])
    assert getattr(both, flag) == "/b"  # the later one wins


def test_allow_pickle_before_models_is_kept():
    assert build_parser().parse_args(["--allow-pickle", "models"]).allow_pickle is True
    assert build_parser().parse_args(["models", "--allow-pickle"]).allow_pickle is True
    assert not hasattr(build_parser().parse_args(["models"]), "allow_pickle")


def test_models_command_takes_models_after_the_subcommand(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    root = tmp_path / "my-models"
    (root / "checkpoints").mkdir(parents=True)
    for argv in (["models", "--models", str(root), "--no-hash"], ["--models", str(root), "models", "--no-hash"]):
        assert main(argv) == 0
        assert f"Models in {root}" in capsys.readouterr().out


# ---- LoRA flag messages --------------------------------------------------------------------------------------

def test_lora_weight_out_of_range_says_so():
    with pytest.raises(RequestError) as exc:
        parse_lora("foo:3")
    assert "out of range" in str(exc.value) and "NAME:WEIGHT" not in str(exc.value)


def test_lora_weight_that_is_not_a_number_gets_the_format_message():
    with pytest.raises(RequestError, match="write NAME:WEIGHT"):
        parse_lora("foo:lots")
    assert parse_lora("foo:1.5").weight == 1.5
    assert parse_lora("foo").name == "foo"


def test_lora_range_error_through_main_is_one_line(capsys):
    assert main(["generate", "--lora", "foo:3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "out of range" in err[0] and "0 to 2" in err[0]


# ---- control characters ----------------------------------------------------------------------------------

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m"


def assert_clean(text: str):
    assert not any(ord(c) < 32 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in text), repr(text)


def test_argparse_errors_escape_control_characters(capsys):
    with pytest.raises(SystemExit):
        main(["generate", f"--bogus{HOSTILE}"])
    err = capsys.readouterr().err
    assert_clean(err)
    assert "\\x1b]0;pwned\\x07" in err


def test_request_errors_escape_control_characters(capsys):
    assert main(["generate", "--sampler", f"Euler{HOSTILE}"]) == 2
    err = capsys.readouterr().err
    assert_clean(err)
    assert err.count("\n") == 1 and "\\x1b[2J" in err


def test_missing_file_errors_escape_control_characters(capsys, tmp_path):
    assert main(["info", str(tmp_path / f"x{HOSTILE}\nline.png")]) == 2
    err = capsys.readouterr().err
    assert_clean(err)
    assert err.count("\n") == 1


# ---- closed pipes ------------------------------------------------------------------------------------------

def run_into_closed_pipe(argv, env, cwd, timeout=120):
    """Run picotui with stdout a pipe whose reading end is already closed (`picotui ... | head -0`,
    deterministic: the first write fails)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "picotui", *argv], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, timeout=timeout)
    finally:
        os.close(write_end)
    return result


def test_paths_into_a_closed_pipe_exits_quietly(tmp_path):
    result = run_into_closed_pipe(["paths"], env_for(tmp_path), tmp_path)
    assert result.returncode == 141
    assert result.stderr == ""


def test_paths_piped_to_head_in_a_shell(tmp_path):
    result = subprocess.run(["bash", "-c", f"{sys.executable} -m picotui paths | head -1; "
                                           "echo \"status ${PIPESTATUS[0]}\" >&2"],
                            capture_output=True, text=True, env=env_for(tmp_path), cwd=tmp_path, timeout=60)
    assert result.stdout.startswith("models ") and result.stdout.count("\n") == 1
    assert result.stderr.strip() in ("status 0", "status 141")  # 0 when all rows fit before head exits
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["generate", "--help"]])
def test_help_into_a_closed_pipe_exits_quietly(tmp_path, argv):
    result = run_into_closed_pipe(argv, env_for(tmp_path), tmp_path)
    assert result.returncode == 141
    assert result.stderr == ""
