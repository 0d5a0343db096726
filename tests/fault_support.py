"""What the fault tests share: a models/ tree with two copies of the tiny checkpoint (switching forces a
load), its module-wide Worker (started by worker_support), requests, and the checks that nothing was written.

Faults are injected by patching the piece that would fail on a real machine (a CUDA error in the status
read, torch.OutOfMemoryError from the UNet / VAE / text encoder / LoRA loader / checkpoint builder,
ENOSPC/EACCES from the file system); everything else is the real engine on the tiny SD1.5 checkpoint.
"""

from __future__ import annotations

import shutil

import pytest
from conftest import KOHYA_LORA, TINY_CHECKPOINT, TINY_VAE
from paths_support import copy_models, make_paths
from worker_support import run, start_worker, worker  # noqa: F401  (worker is a fixture)

from picotui.engine.events import Finished
from picotui.engine.recipes import output
from picotui.engine.request import GenerationRequest

CKPT_A, CKPT_B = "tinyA.safetensors", "tinyB.safetensors"  # two copies: switching between them forces a load
OOM_TEXT = "Out of GPU memory at 128x128: try a smaller size"


@pytest.fixture(scope="module")
def paths(models_root, tmp_path_factory):
    paths = make_paths(tmp_path_factory.mktemp("faults"))
    copy_models(models_root, paths.models, names={KOHYA_LORA, TINY_VAE})
    for name in (CKPT_A, CKPT_B):
        shutil.copyfile(models_root / "checkpoints" / TINY_CHECKPOINT, paths.models / "checkpoints" / name)
    return paths


def request(**kw):
    base = dict(prompt="a corgi on a wooden floor", negative_prompt="blurry", checkpoint=CKPT_A, sampler="Euler",
                steps=3, width=64, height=64, seed=5)
    return GenerationRequest(**{**base, **kw})


def pngs(paths):
    return sorted(paths.outputs.rglob("*.png")) if paths.outputs.exists() else []


def assert_nothing_written(paths, before):
    assert pngs(paths) == before, "a PNG was written for an image that should not exist"
    assert output.partial_files(paths.outputs) == [], "a temp or marker file was left in outputs"


def assert_next_job_works(worker, **kw):
    job = run(worker, request(**kw))
    (done,) = worker.events.of(Finished, job)
    assert done.path is not None and done.path.is_file()
    return done


def once(fault):
    """A wrapper factory: the first call raises `fault`, later calls run the real function."""
    state = {"fired": 0}

    def wrap(real):
        def inner(*args, **kwargs):
            if not state["fired"]:
                state["fired"] += 1
                raise fault
            return real(*args, **kwargs)
        return inner
    wrap.state = state
    return wrap


def patch_once(monkeypatch, owner, name, fault):
    wrap = once(fault)
    monkeypatch.setattr(owner, name, wrap(getattr(owner, name)))
    return wrap.state
