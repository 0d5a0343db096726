"""A failed save (disk full, no permission, read-only) keeps the image and "save again" works; model
files whose names are not valid UTF-8 load, generate, save and log."""

from __future__ import annotations

import errno
import shutil

import numpy as np
import pytest
import torch
from conftest import KOHYA_LORA, TINY_CHECKPOINT, TINY_VAE
from fault_support import assert_next_job_works, assert_nothing_written, paths, pngs, request, worker  # noqa: F401  (paths, worker are fixtures)
from paths_support import make_paths
from PIL import Image
from worker_support import run, start_worker

from picotui.engine.events import Failed, Finished
from picotui.engine.models.loading import ModelManager
from picotui.engine.recipes import output
from picotui.engine.request import GenerationRequest, LoraSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---- 6. a failed save keeps the image, and saving again works ------------------------------------

def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _eacces(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


def _erofs(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


@pytest.mark.parametrize("fault, where, words", [
    (_enospc, "fsync", "disk is full"),  # the write itself fails
    (_eacces, "mkstemp", "no permission"),  # the folder cannot be written
    (_erofs, "link", "read-only"),  # the temp file is written, publishing it fails
])
def test_a_failed_save_keeps_the_image_and_save_again_works(worker, paths, monkeypatch, fault, where, words):
    from picotui.engine.recipes.metadata import read_recipe
    from picotui.engine.recipes.png_text import read_png_text

    owner = output.tempfile if where == "mkstemp" else output.os
    monkeypatch.setattr(owner, where, fault)
    before = pngs(paths)
    job = run(worker, request(seed=60))
    monkeypatch.undo()
    (done,) = worker.events.of(Finished, job)
    assert done.path is None and done.save_error and not worker.events.of(Failed, job)
    assert words in done.save_error and "save again" in done.save_error and "\n" not in done.save_error
    assert isinstance(done.image, Image.Image) and done.image.size == (64, 64)  # kept for "save again"
    assert "Seed: 60" in done.parameters
    assert_nothing_written(paths, before)
    # the fault is gone (space freed, folder fixed): the UI's "save again"
    path = output.save_again(done, paths.outputs)
    assert path.is_file() and path.name.endswith("-60.png")
    assert read_recipe(path).request == done.request
    assert read_png_text(path)["parameters"] == done.parameters
    with Image.open(path) as saved:
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(done.image.convert("RGB")))
    assert output.partial_files(paths.outputs) == []
    assert_next_job_works(worker, seed=61)


def test_save_again_that_fails_again_is_one_clear_line(worker, paths, monkeypatch):
    from picotui.engine.errors import SaveError

    monkeypatch.setattr(output.os, "fsync", _enospc)
    job = run(worker, request(seed=62))
    (done,) = worker.events.of(Finished, job)
    with pytest.raises(SaveError, match="disk is full.*save again"):
        output.save_again(done, paths.outputs)
    assert output.partial_files(paths.outputs) == []


# ---- 5. file names that are not valid UTF-8 --------------------------------------------------------

@pytest.fixture
def latin1_paths(models_root, tmp_path):
    """A models folder whose files came out of a Windows zip: Latin-1 names, not valid UTF-8 on Linux."""
    import os

    paths = make_paths(tmp_path)
    root = os.fsencode(paths.models)
    for sub, src, name in ((b"checkpoints", models_root / "checkpoints" / TINY_CHECKPOINT, b"caf\xe9.safetensors"),
                           (b"loras", models_root / "loras" / KOHYA_LORA, b"styl\xe9.safetensors"),
                           (b"vae", models_root / "vae" / TINY_VAE, b"v\xe6-ft.safetensors")):
        shutil.copyfile(src, root + b"/" + sub + b"/" + name)
    return paths


def test_models_with_non_utf8_names_load_generate_save_and_log(latin1_paths, capsys, restore_logger):
    from picotui import logs
    from picotui.engine.recipes.metadata import read_recipe
    from picotui.engine.recipes.png_text import read_png_text

    log_file = logs.setup_logging(latin1_paths)
    w = start_worker(latin1_paths)
    try:
        req = GenerationRequest(prompt="a corgi", checkpoint="caf\udce9.safetensors", vae="v\udce6-ft.safetensors",
                                loras=(LoraSpec("styl\udce9", 0.8),), sampler="Euler", steps=2, width=64,
                                height=64, seed=70)
        job = run(w, req)
        assert not w.events.of(Failed, job), w.events.of(Failed, job)
        (done,) = w.events.of(Finished, job)
    finally:
        w.shutdown()
    assert done.path is not None and done.path.is_file() and done.save_error is None
    assert "Model: caf\\xe9" in read_png_text(done.path)["parameters"]  # the raw byte, escaped, not a crash
    assert read_recipe(done.path).request.seed == 70
    text = log_file.read_text(encoding="utf-8")
    assert "caf\\udce9" in text and f"job {job}" in text  # the job's parameters line, escaped
    assert "Logging error" not in capsys.readouterr().err


def test_a_non_utf8_name_without_proc_fd_says_rename_it(latin1_paths, monkeypatch):
    """Where /proc/self/fd does not exist the file cannot be handed to safetensors: the message says why."""
    import os

    from picotui.engine.errors import ModelError
    from picotui.engine.models.library import sniff

    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: False if str(p).startswith("/proc/self/fd/") else real_exists(p))
    mf = sniff(latin1_paths.models / "checkpoints" / "caf\udce9.safetensors")
    assert mf.usable  # the header is read through Python's own open(), which takes any name
    with pytest.raises(ModelError) as info:
        ModelManager(None, "cpu", torch.float32).pipeline_for(mf)
    assert "not valid UTF-8" in str(info.value) and "rename it" in str(info.value)
    assert "download" not in str(info.value)
