"""`picotui grid` as a user runs it: a real process on the demo model, the grid path last on stdout, and one
line for a malformed axis before anything loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import picotui_env, run_picotui
from PIL import Image


@pytest.fixture(scope="module")
def env(tmp_path_factory, cache_dir, demo_checkpoint):
    home = tmp_path_factory.mktemp("grid-user")
    (home / "models").mkdir()
    return picotui_env(home, inherit=True, PICOTUI_CONFIG=str(home / "config.toml"),
                       PICOTUI_STATE=str(home / "state"), PICOTUI_CACHE=str(cache_dir),
                       PICOTUI_MODELS=str(home / "models"), PICOTUI_DEVICE="cpu", HF_HUB_OFFLINE="1",
                       TRANSFORMERS_OFFLINE="1")


def test_grid_prints_every_cell_then_the_grid(env, tmp_path):
    from picotui.engine.recipes.metadata import parse_parameters, read_recipe

    out = run_picotui(env, "grid", "--x", "CFG scale: 4-12 [3]", "--y", "Sampler: Euler a, DPM++ 2M",
                      "--steps", "2", "--width", "64", "--height", "64", "--seed", "7", "--outdir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = [Path(line) for line in out.stdout.strip().splitlines()]
    assert len(lines) == 7 and all(p.is_file() for p in lines)
    grid = lines[-1]
    assert grid.parent.parent == tmp_path / "grids"
    assert "6 images on a 3x2 grid" in out.stderr
    cells = [read_recipe(p).request for p in lines[:-1]]
    assert sorted((r.cfg, r.sampler) for r in cells) == sorted(
        (c, s) for c in (4.0, 8.0, 12.0) for s in ("Euler a", "DPM++ 2M"))
    assert {r.seed for r in cells} == {7}
    with Image.open(grid) as image:
        params = parse_parameters(image.text["parameters"])
    assert (params["X Type"], params["X Values"], params["Y Type"]) == ("CFG Scale", "4-12 [3]", "Sampler")


@pytest.mark.parametrize("axis, message", [
    ("CFG scale: 4-", "X axis: '4-' is not a range A1111 understands"),
    ("Colour: red", "X axis: Unknown axis type 'Colour'"),
])
def test_a_bad_axis_is_one_line_and_status_2(env, tmp_path, axis, message):
    out = run_picotui(env, "grid", "--x", axis, "--outdir", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and message in out.stderr, out.stderr
    assert not any(tmp_path.iterdir())
