"""Metadata read from files is untrusted: nothing in it may drive the terminal, and any bytes, any text,
any valid JSON or A1111-looking text gives a recipe or one clean error, never a crash or a hang."""

from __future__ import annotations

import pytest
from hang_guard import finishes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metadata_support import A1111_SAMPLE, metadata_png

from picotui.engine.errors import PicoError
from picotui.engine.recipes.metadata import (
    parse_parameters,
    read_recipe,
    request_from_parameters,
    sanitize_for_terminal,
)
from picotui.engine.request import GenerationRequest
from picotui.engine.sampling.samplers import SAMPLERS

# ---- terminal safety -------------------------------------------------------------------------------------------

def test_sanitize_removes_every_way_to_drive_the_terminal():
    hostile = "red\x1b[31m clear\x1b[2J bell\x07 cr\r osc\x1b]0;title\x07 c1\x9b2J bidi\u202e nul\x00 bad\udcff"
    safe = sanitize_for_terminal(hostile)
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7f <= ord(c) <= 0x9f for c in safe)
    assert "\u202e" not in safe and "\udcff" not in safe
    assert "\\x1b[31m" in safe and "\\x07" in safe and "\\u202e" in safe
    safe.encode("utf-8")  # printable everywhere
    assert sanitize_for_terminal("a prompt,\n(with: weights) ünïcode 🐶") == "a prompt,\n(with: weights) ünïcode 🐶"
    assert sanitize_for_terminal("two\nlines", keep_newlines=False) == "two lines"


def test_info_command_prints_the_recipe_safely(tmp_path, monkeypatch, capsys):
    from picotui.cli import main

    monkeypatch.setenv("PICOTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("PICOTUI_CACHE", str(tmp_path / "cache"))
    text = "evil \x1b[2J\x1b]0;pwned\x07 prompt [bold]markup[/bold]\n" + A1111_SAMPLE.split("\n", 2)[2]
    png = metadata_png(tmp_path / "evil.png", text.replace("Negative prompt: ", "Negative prompt: x").strip())
    assert main(["--models", str(tmp_path / "models"), "info", str(png)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and "[bold]markup[/bold]" in out and "Steps: 30" in out
    assert "Not reproduced:" in out and "easynegative" in out.split("Not reproduced:")[1]  # the unmatched list
    bad = tmp_path / "random.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no generation settings" in err[0]


# ---- fuzzing the reader -------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), as_png=st.booleans())
def test_any_bytes_give_a_recipe_or_a_clean_error(tmp_path, data, as_png):
    path = tmp_path / "fuzz.png"
    path.write_bytes((b"\x89PNG\r\n\x1a\n" if as_png else b"") + data)
    try:
        recipe = read_recipe(path)
    except PicoError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(recipe.request, GenerationRequest)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from([b"parameters", b"picotui", b"Comment"]), body=st.binary(max_size=1024),
       kind=st.sampled_from([b"tEXt", b"iTXt", b"zTXt"]))
def test_any_text_chunk_gives_a_recipe_or_a_clean_error(tmp_path, key, body, kind):
    path = tmp_path / "fuzz.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(kind, key + b"\0" + body) + _chunk(b"IEND", b""))
    try:
        read_recipe(path)
    except PicoError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_any_text_parses(text):
    params = parse_parameters(text)
    request, notes = request_from_parameters(params)
    assert isinstance(request, GenerationRequest) and all(isinstance(n, str) for n in notes)


@pytest.mark.parametrize("line", ["word " * 40_000, "a," * 50_000 + ":x", "k: v, " * 30_000, '"' * 100_000,
                                  'k: "' + "\\" * 99_999])
def test_pathological_lines_do_not_hang_the_parser(line):
    # Only a hang guard (see hang_guard.py): how the parse time grows is measured in benchmarks/parsers.py.
    params = finishes(parse_parameters, "prompt\n" + line)
    assert params["Prompt"].startswith("prompt")


# ---- hostile and well-formed-but-odd metadata -------------------------------------------------------------

@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000,
                                  '{"request": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001,
                                  '{"request": {"steps": 9, "refiner": ' + "[" * 950 + "]" * 950 + "}}"])
def test_deeply_nested_picotui_json_is_a_clean_error_or_a_note(tmp_path, body):
    try:
        recipe = read_recipe(metadata_png(tmp_path / "deep.png", None, picotui=body))
    except PicoError as exc:
        assert "\n" not in str(exc) and "nested too deeply" in str(exc)
    else:  # parsed: the odd value is an unknown setting, shown short
        assert recipe.request.steps == 9 and all(len(line) < 200 for line in recipe.unmatched)
    fallback = "a fox\nSteps: 9, Sampler: Euler, CFG scale: 5, Seed: 3, Size: 64x64, Model: m"
    recipe = read_recipe(metadata_png(tmp_path / "deep2.png", fallback, picotui=body))
    assert recipe.request.steps == 9 and recipe.request.prompt in ("a fox", GenerationRequest().prompt)


def _json_values():
    scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=25)


def _request_bodies():
    import dataclasses

    names = [f.name for f in dataclasses.fields(GenerationRequest)] + ["hires", "version", ""]
    plausible = st.one_of(_json_values(), st.integers(0, 2**33), st.sampled_from(list(SAMPLERS)),
                          st.lists(st.fixed_dictionaries({"name": st.text(max_size=12), "weight": _json_values()}),
                                   max_size=3))
    request = st.dictionaries(st.sampled_from(names), plausible, max_size=10)
    wrapped = st.fixed_dictionaries({"version": st.text(max_size=8), "request": request})
    return st.one_of(_json_values(), request, wrapped)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_request_bodies(), with_text=st.booleans())
def test_any_valid_json_in_the_picotui_chunk_gives_a_recipe_or_a_clean_error(tmp_path, body, with_text):
    import json

    path = metadata_png(tmp_path / "json.png",
                        "a fox\nSteps: 9, Sampler: Euler, CFG scale: 5, Seed: 3, Size: 64x64" if with_text else None,
                        picotui=json.dumps(body))
    try:
        recipe = read_recipe(path)
    except PicoError as exc:
        assert "\n" not in str(exc) and not with_text
    else:
        assert isinstance(recipe.request, GenerationRequest)
        assert all(isinstance(n, str) and "\n" not in n for n in recipe.unmatched)


_KEYS = ["Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model", "VAE hash", "VAE",
         "Clip skip", "RNG", "Lora hashes", "TI hashes", "Version", "Denoising strength", "Hires upscale", "ENSD"]


def _a1111_values():
    hexes = st.text("0123456789abcdef", min_size=0, max_size=14)
    names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=15)
    return st.one_of(
        st.integers(-5, 2**40).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["DPM++ 2M", "DPM++ 2M SDE", "Euler a", "DDIM", "Restart", "Automatic", "Karras",
                         "Exponential", "CPU", "GPU", "NV", "None"]),
        st.tuples(st.integers(0, 5000), st.integers(0, 5000)).map(lambda wh: f"{wh[0]}x{wh[1]}"),
        hexes, st.lists(st.tuples(names, hexes), max_size=3).map(lambda p: ", ".join(f"{n}: {h}" for n, h in p)),
        names)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.text(max_size=200), negative=st.one_of(st.none(), st.text(max_size=100)),
       pairs=st.lists(st.tuples(st.sampled_from(_KEYS) | st.from_regex(r"[A-Za-z][\w \-/]{0,12}", fullmatch=True),
                                _a1111_values()), max_size=16),
       tags=st.lists(st.tuples(st.text("abc_-XYZ019", min_size=1, max_size=8), st.floats(-3, 3)), max_size=3))
def test_any_valid_looking_a1111_text_gives_a_recipe_or_a_clean_error(tmp_path, prompt, negative, pairs, tags):
    from picotui.engine.models.library import Library
    from picotui.engine.recipes.infotext import quote

    prompt = " ".join([prompt, *(f"<lora:{n}:{w:.2f}>" for n, w in tags)])
    settings_line = ", ".join(f"{k}: {quote(v)}" for k, v in pairs)
    text = prompt + (f"\nNegative prompt: {negative}" if negative is not None else "") + "\n" + settings_line
    params = parse_parameters(text)
    request, notes = request_from_parameters(params)
    assert isinstance(request, GenerationRequest) and all(isinstance(n, str) for n in notes)
    path = metadata_png(tmp_path / "a1111.png", text) if text.strip() else None
    if path is None:
        return
    library = Library(tmp_path / "models", tmp_path / "cache")  # empty: every named file is "missing"
    try:
        recipe = read_recipe(path, library)
    except PicoError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(recipe.request, GenerationRequest)
        assert all(isinstance(n, str) and "\n" not in n for n in recipe.unmatched)
