"""The Extras job: `picotui upscale` end to end (a model from the library, the recipe kept, A1111's keys added),
and the same job through the worker, with its events."""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from upscaler_support import build_models, reference

from picotui.cli import main
from picotui.engine.events import Cancelled, Failed, Finished


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("extras")
    nets = build_models(base / "models")
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a corgi\nNegative prompt: blurry\nSteps: 4, Sampler: Euler, Seed: 7, Size: 48x40")
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(base / "draft.png", pnginfo=info)
    return base, nets


def run_cli(base, monkeypatch, capsys, *argv):
    monkeypatch.setenv("PICOTUI_MODELS", str(base / "models"))
    monkeypatch.setenv("PICOTUI_OUTPUTS", str(base / "outputs"))
    monkeypatch.setenv("PICOTUI_CACHE", str(base / "cache"))
    monkeypatch.setenv("PICOTUI_CONFIG", str(base / "none.toml"))
    code = main(["upscale", *argv])
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_picotui_upscale_with_a_model_keeps_the_recipe(setup, monkeypatch, capsys):
    base, nets = setup
    code, out, err = run_cli(base, monkeypatch, capsys, str(base / "draft.png"), "--upscaler", "tiny-esrgan-4x",
                             "--device", "cpu")
    assert code == 0, err
    with Image.open(out) as saved:
        texts, pixels = dict(saved.text), np.asarray(saved.convert("RGB"), np.float32)
    assert pixels.shape == (160, 192, 3)
    with Image.open(base / "draft.png") as source:
        assert np.abs(pixels - reference(nets["tiny-esrgan-4x"], source.convert("RGB"))).max() <= 0.51
    assert texts["parameters"].startswith("a corgi\nNegative prompt: blurry\nSteps: 4")
    assert texts["postprocessing"] == "Postprocess upscale by: 4, Postprocess upscaler: tiny-esrgan-4x"
    assert texts["extras"] == texts["postprocessing"]


def test_picotui_upscale_to_a_size_crops_to_fit(setup, monkeypatch, capsys, tmp_path):
    base, _nets = setup
    code, out, err = run_cli(base, monkeypatch, capsys, str(base / "draft.png"), "--resize", "96x96",
                             "--output", str(tmp_path))
    assert code == 0, err
    with Image.open(out) as saved:
        assert saved.size == (96, 96)
        assert saved.text["postprocessing"] == ("Postprocess upscale to: 96x96, Postprocess crop to: 96x96, "
                                                "Postprocess upscaler: Lanczos")
    assert out.startswith(str(tmp_path))


@pytest.mark.parametrize("argv, words", [
    (["--upscaler", "style-lora"], "is a LoRA, not an upscaler: move it to models/loras"),
    (["--upscaler", "pickled-esrgan-4x", "--device", "cpu"], "--allow-pickle"),
    (["--scale", "20"], "out of range"),
])
def test_picotui_upscale_refuses_in_one_line(setup, monkeypatch, capsys, argv, words):
    base, _nets = setup
    code, out, err = run_cli(base, monkeypatch, capsys, str(base / "draft.png"), *argv)
    assert code == 2 and out == ""
    assert words in err and len(err.splitlines()) == 1


def test_the_worker_runs_the_extras_job(setup, tmp_path):
    from picotui.engine.jobs.worker import Worker
    from picotui.engine.upscaling.request import UpscaleRequest
    from picotui.paths import resolve_paths

    base, _nets = setup
    paths = resolve_paths(models=str(base / "models"), outputs=str(tmp_path / "out"), cache=str(base / "cache"),
                          state=str(tmp_path / "state"), config_file=str(tmp_path / "none.toml"))
    events: queue.SimpleQueue = queue.SimpleQueue()
    worker = Worker(paths, events.put, device="cpu", preview=False).start()
    try:
        good = worker.submit(UpscaleRequest(base / "draft.png", "tiny-compact-2x", scale=2))
        bad = worker.submit(UpscaleRequest(base / "missing.png", "Lanczos"))
        ended: dict = {}
        while len(ended) < 2:
            event = events.get(timeout=120)
            if isinstance(event, (Finished, Failed, Cancelled)) and event.job_id in (good, bad):
                ended[event.job_id] = event
    finally:
        worker.shutdown(timeout=10)
    finished = ended[good]
    assert isinstance(finished, Finished) and finished.image.size == (96, 80) and finished.path.is_file()
    assert finished.parameters == "Postprocess upscale by: 2, Postprocess upscaler: tiny-compact-2x"
    assert isinstance(ended[bad], Failed) and "missing.png does not exist" in ended[bad].message


def test_picotui_upscale_takes_several_files_and_goes_on_past_a_bad_one(setup, monkeypatch, capsys, tmp_path):
    base, _nets = setup
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    code, out, err = run_cli(base, monkeypatch, capsys, str(base / "draft.png"), str(tmp_path / "dot.png"),
                             str(base / "draft.png"), "--scale", "2", "--output", str(tmp_path / "out"))
    assert code == 2
    assert [Path(p).name for p in out.splitlines()] == ["draft-Lanczos.png", "draft-Lanczos-1.png"]
    assert err.splitlines() == ["picotui: dot.png is only 1x1 pixels: a source picture needs at least 16 pixels a "
                                "side."]


def test_a_jpeg_recipe_moves_into_the_png(setup, monkeypatch, capsys, tmp_path):
    base, _nets = setup
    text = "a corgi\nSteps: 4, Sampler: Euler, Seed: 7, Size: 48x40"
    exif = Image.Exif()  # A1111's JPEG: piexif's UserComment, "UNICODE\0" then big-endian UTF-16
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode("utf-16-be")
    Image.new("RGB", (48, 40), (30, 60, 90)).save(tmp_path / "draft.jpg", exif=exif)
    code, out, err = run_cli(base, monkeypatch, capsys, str(tmp_path / "draft.jpg"), "--scale", "2",
                             "--output", str(tmp_path))
    assert code == 0, err
    with Image.open(out) as saved:
        assert saved.text["parameters"] == text
