"""Plots through the real Worker on CPU with the tiny checkpoint: every cell saved with its own recipe, the grid
PNG with A1111's plot keys, models loaded once over a 5x5 grid (LoRA weight axes re-weight, never reload),
cancel mid-grid keeps the finished cells, and the grid's geometry and labels."""

from __future__ import annotations

import pytest
from conftest import KOHYA_LORA, TINY_CHECKPOINT
from paths_support import make_paths
from PIL import Image
from worker_support import start_worker

from picotui.engine.events import Finished
from picotui.engine.plots.drawing import draw_grid, font, font_size
from picotui.engine.plots.plan import build_plan
from picotui.engine.plots.run import GridRun, plot_parameters
from picotui.engine.recipes.metadata import parse_parameters, read_recipe
from picotui.engine.request import GenerationRequest, LoraSpec

LORA = KOHYA_LORA.removesuffix(".safetensors")


@pytest.fixture(scope="module")
def paths(models_root, cache_dir, tmp_path_factory):
    return make_paths(tmp_path_factory.mktemp("plots"), models=models_root, cache=cache_dir)


@pytest.fixture(scope="module")
def worker(paths):
    w = start_worker(paths, preview=False)
    yield w
    w.shutdown()


def base(**kw):
    kw = {"prompt": "a corgi", "negative_prompt": "", "checkpoint": TINY_CHECKPOINT, "steps": 2, "width": 64,
          "height": 64, "seed": 11, "sampler": "Euler", **kw}
    return GenerationRequest(**kw)


def run_grid(worker, plan, on_event=None, timeout=300):
    grid = GridRun(plan)
    worker.events.hook = lambda e: (grid.on_event(e), on_event and on_event(e, grid))
    try:
        grid.submit(worker)
        worker.events.wait(lambda _items: grid.done, timeout)
    finally:
        worker.events.hook = None
    return grid


def test_cells_are_saved_with_their_recipes_and_the_grid_with_the_axes(worker, paths):
    plan = build_plan(base(), "CFG scale: 3, 6, 9", "Steps: 2, 3")
    grid = run_grid(worker, plan)
    assert grid.finished == 6
    for cell in plan.cells:
        result = grid.results[cell.index]
        recipe = read_recipe(result.path)
        assert recipe.request == cell.request  # restoring a cell gives back exactly its settings
        assert (recipe.request.cfg, recipe.request.steps) == ((3.0, 6.0, 9.0)[cell.ix], (2, 3)[cell.iy])
    path = grid.save_grid(paths.outputs)
    assert path.parent.parent.name == "grids"
    with Image.open(path) as image:
        params = parse_parameters(image.text["parameters"])
        assert image.size[0] > 3 * 64 and image.size[1] > 2 * 64
    assert params["Script"] == "X/Y/Z plot" and params["X Type"] == "CFG Scale" and params["X Values"] == "3, 6, 9"
    assert params["Y Type"] == "Steps" and params["CFG scale"] == "3" and params["Steps"] == "2"
    assert params["Version"].startswith("picotui")  # A1111 keeps Version last; the plot keys go before it
    assert read_recipe(path).request == plan.cells[0].request


def test_a_5x5_grid_loads_the_checkpoint_once_and_lora_weights_do_not_reload(worker, monkeypatch):
    from picotui.engine.models.loading import ModelManager

    loads = []
    original = ModelManager._load_lora
    monkeypatch.setattr(ModelManager, "_load_lora", lambda self, mf, name: (loads.append(name), original(self, mf, name)))
    manager = worker._engine.manager
    before = manager.load_count
    plan = build_plan(base(loras=(LoraSpec(LORA, 0.5),)), f"LoRA weight ({LORA}): 0-1 [5]", "CFG scale: 2-10 [5]")
    grid = run_grid(worker, plan)
    assert grid.finished == 25
    assert manager.load_count - before <= 1  # 0 when an earlier test already loaded it
    assert len(loads) == 1  # the LoRA file read once; 24 weight changes re-weight the loaded adapter
    assert [r.request.loras[0].weight for _i, r in sorted(grid.results.items())[:5]] == [0, 0.25, 0.5, 0.75, 1.0]
    first, last = grid.results[0].image, grid.results[4].image
    assert first.tobytes() != last.tobytes()  # the weight did change the picture


def test_cancel_mid_grid_keeps_finished_cells(worker, paths):
    plan = build_plan(base(seed=21), "Steps: 2, 3, 4", "CFG scale: 4, 5")

    def cancel_after_two(event, grid):
        if isinstance(event, Finished) and grid.finished == 2:
            grid.cancel(worker)

    grid = run_grid(worker, plan, cancel_after_two)
    made = grid.images()
    assert 2 <= len(made) < 6
    assert all(grid.results[i].path.is_file() for i in made)
    assert {r.error for i, r in grid.results.items() if i not in made} == {"cancelled"}
    path = grid.save_grid(paths.outputs)  # the grid of what was made, the rest grey
    with Image.open(path) as image:
        assert image.getpixel((image.width - 2, image.height - 2)) == (128, 128, 128)
    # the worker goes on: the next plot runs whole
    assert run_grid(worker, build_plan(base(), "Steps: 2")).finished == 1


def test_grid_geometry_and_labels():
    cells = [Image.new("RGB", (64, 64), (10 * i, 200, 40)) for i in range(6)]
    grid = draw_grid(cells, 3, 2, ["CFG Scale: 4", "CFG Scale: 8", "CFG Scale: 12"], ["Steps: 2", "Steps: 3"], (64, 64))
    face = font(font_size(64, 64))
    assert face.getname()[0] == "DejaVu Sans"  # the bundled font, not Pillow's bitmap fallback
    left, top = grid.width - 3 * 64, grid.height - 2 * 64
    assert left > face.getlength("Steps: 2") and top >= face.size * 2  # room for the captions
    for i, cell in enumerate(cells):  # each cell pasted at its place, unchanged
        ix, iy = i % 3, i // 3
        assert grid.crop((left + ix * 64, top + iy * 64, left + ix * 64 + 64, top + iy * 64 + 64)).tobytes() == cell.tobytes()

    def has_ink(box):
        return grid.crop(box).convert("L").getextrema()[0] < 100

    for ix in range(3):  # a caption over every column, one left of every row
        assert has_ink((left + ix * 64, 0, left + ix * 64 + 64, top))
    for iy in range(2):
        assert has_ink((0, top + iy * 64, left, top + iy * 64 + 64))


def test_plot_parameters_insert_the_keys_before_version_and_quote_values():
    plan = build_plan(base(), "Seed: -1, 3", "Sampler: Euler, Euler a")
    text = plot_parameters(plan, "a corgi\nSteps: 2, Sampler: Euler, Seed: 1, Version: picotui 0.1.0")
    params = parse_parameters(text)
    assert params["X Values"] == "-1, 3" and params["Fixed X Values"] == f"{plan.axes[0].values[0]}, 3"
    assert params["Y Type"] == "Sampler" and params["Y Values"] == "Euler, Euler a"
    assert text.splitlines()[-1].endswith("Version: picotui 0.1.0")


def test_prompt_matrix_runs_as_a_grid(worker, paths):
    plan = build_plan(base(prompt="a corgi | a hat | snow"), "Prompt matrix")
    grid = run_grid(worker, plan)
    assert [read_recipe(grid.results[i].path).request.prompt for i in range(4)] == [
        "a corgi", "a corgi, a hat", "a corgi, snow", "a corgi, a hat, snow"]
    with Image.open(grid.save_grid(paths.outputs)) as image:
        assert "Script" not in parse_parameters(image.text["parameters"])
        assert image.size[0] > 2 * 64 and image.size[1] > 2 * 64
