"""The GPU path through real jobs on CPU: the worker believes in a big modern card (made-up VRAM numbers and
compute capability), so the memory and speed policies choose what they would on one, and the UNet's CUDA
graphs are captured through `emulated_capture` (replay recomputes into static buffers, as a graph does).
Everything else is the real engine on the tiny SD1.5 checkpoint and a real kohya LoRA.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
from conftest import KOHYA_LORA
from fault_support import paths, request  # noqa: F401  (paths is a fixture)
from worker_support import run, start_worker

from picotui.engine.events import Finished
from picotui.engine.hardware import memory
from picotui.engine.hardware.speed import UNetGraphs, emulated_capture
from picotui.engine.models.synthetic import write_kohya_lora
from picotui.engine.request import LoraSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
GIB = 1024**3
LORA = KOHYA_LORA.removesuffix(".safetensors")


@pytest.fixture(scope="module")
def big_gpu(paths):
    """A worker whose policies see an 80 GiB sm_90 card: full-gpu plan, CUDA graphs (emulated) chosen."""
    mp = pytest.MonkeyPatch()
    mp.setattr(memory, "vram_info", lambda device: (80 * GIB, 80 * GIB, 0))
    w = start_worker(paths)
    w._engine.choice = replace(w._engine.choice, capability=(9, 0))
    w._engine.graphs = UNetGraphs(backend=emulated_capture)
    yield w
    w.shutdown()
    mp.undo()


def image(w, **kw):
    job = run(w, request(**kw))
    (done,) = w.events.of(Finished, job)
    return np.asarray(done.image)


def eager_image(w, **kw):
    engine = w._engine
    engine.speed_setting = "eager"
    try:
        return image(w, **kw)
    finally:
        engine.speed_setting = "auto"


def lora(weight):
    return (LoraSpec(LORA, weight),)


def test_a_changed_lora_weight_captures_new_graphs_and_gives_the_eager_image(big_gpu):
    """Issue 17.2 / 11.1: a graph bakes the LoRA's scale in; a new weight must capture again."""
    engine = big_gpu._engine
    image(big_gpu, loras=lora(0.8))
    assert engine.speed.name == "cuda-graphs", engine.speed
    captures, replays = engine.graphs.captures, engine.graphs.replays
    graphed = image(big_gpu, loras=lora(1.5), seed=6)
    assert engine.speed.name == "cuda-graphs"
    assert engine.graphs.captures == captures + 1, "the new LoRA weight replayed the old weight's graph"
    assert engine.graphs.replays > replays
    np.testing.assert_array_equal(graphed, eager_image(big_gpu, loras=lora(1.5), seed=6))


def test_a_lora_replaced_in_place_is_new_weights_for_graphs_and_the_prompt_cache(big_gpu, paths, tiny_components):
    """Issue 11.1: same file name, same size, same weight, new contents: new graphs, new prompt embeddings."""
    engine = big_gpu._engine
    path = paths.models / "loras" / KOHYA_LORA
    original = path.read_bytes()
    unet, _vae, text_encoder = tiny_components
    other = paths.models / "loras" / "otherStyle.safetensors"
    write_kohya_lora(other, unet, text_encoder, seed=7)  # the same layout and size, other weights
    assert other.stat().st_size == len(original)
    try:
        image(big_gpu, loras=lora(1.0), seed=8)
        captures = engine.graphs.captures
        stat = path.stat()
        shutil.copyfile(other, path)  # overwritten in place, same size (mtime differs, as any copy makes it)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        replaced = image(big_gpu, loras=lora(1.0), seed=8)
        assert engine.graphs.captures == captures + 1, "the replaced LoRA replayed graphs of the old weights"
        # the independent reference: the same weights loaded under another name, never seen before
        np.testing.assert_array_equal(replaced, eager_image(big_gpu, loras=(LoraSpec("otherStyle", 1.0),), seed=8))
    finally:
        path.write_bytes(original)
        other.unlink()


def test_cudnn_finding_no_engine_is_out_of_memory_and_the_job_is_retried(big_gpu, monkeypatch):
    """Issue 11.9: cuDNN says "unable to find an engine" when no algorithm's workspace fits: a retry with a
    leaner plan, not an internal error."""
    from diffusers import UNet2DConditionModel
    from fault_support import patch_once

    from picotui.engine.events import Failed, Notice

    state = patch_once(monkeypatch, UNet2DConditionModel, "forward",
                       RuntimeError("GET was unable to find an engine to execute this computation"))
    try:
        job = run(big_gpu, request(seed=9, width=128, height=128))
        assert state["fired"] == 1 and not big_gpu.events.of(Failed, job)
        assert [n.message for n in big_gpu.events.of(Notice, job) if "trying again" in n.message] == [
            "Out of GPU memory at 128x128: trying again with text encoder offload."]
        assert big_gpu.events.of(Finished, job)
    finally:
        big_gpu._engine.min_mode = None
