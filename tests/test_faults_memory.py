"""Out of GPU memory, injected on CPU wherever it can happen (load, placing on the GPU, prompt encode,
LoRA load, a step, decode): reported in one line, memory freed, the rest of the job retried with a
leaner memory plan, and a smaller job succeeds."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import KOHYA_LORA
from fault_support import (  # noqa: F401  (paths, worker are fixtures)
    CKPT_A,
    CKPT_B,
    OOM_TEXT,
    assert_next_job_works,
    assert_nothing_written,
    patch_once,
    paths,
    pngs,
    request,
    worker,
)
from worker_support import run, start_worker

from picotui.engine.errors import OutOfMemory
from picotui.engine.events import EngineStatus, Failed, Finished, Notice
from picotui.engine.hardware import memory
from picotui.engine.models.loading import ModelManager
from picotui.engine.request import LoraSpec
from picotui.engine.sampling import generate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---- 2. out of memory, wherever it happens -------------------------------------------------------

def _oom_at(where, monkeypatch):
    """Patch one place to raise a GPU out-of-memory error once; returns the state of the patch."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    from picotui.engine.prompting.conditioning import PromptEncoder

    fault = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 4.00 GiB total)")
    if where == "load":  # half-loaded: the UNet is built, the text encoder runs out
        return patch_once(monkeypatch, ModelManager, "_build_text_encoder", fault)
    if where == "load-to-gpu":  # older torch / cuBLAS spell it as a plain RuntimeError
        return patch_once(monkeypatch, StableDiffusionPipeline, "to",
                          RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"))
    if where == "encode":
        return patch_once(monkeypatch, PromptEncoder, "encode", fault)
    if where == "lora":
        return patch_once(monkeypatch, StableDiffusionPipeline, "load_lora_weights", fault)
    if where == "step":
        return patch_once(monkeypatch, UNet2DConditionModel, "forward",
                          RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    if where == "decode":
        return patch_once(monkeypatch, AutoencoderKL, "decode", fault)
    raise AssertionError(where)


@pytest.mark.parametrize("where", ["load", "load-to-gpu", "encode", "lora", "step", "decode"])
def test_out_of_memory_anywhere_is_reported_memory_is_freed_and_a_smaller_job_succeeds(
        worker, paths, monkeypatch, where):
    engine = worker._engine
    run(worker, request(checkpoint=CKPT_A, seed=10))  # a known state: checkpoint A loaded, no LoRA
    loads = engine.manager.load_count
    freed = []
    real_free = memory.free_memory
    monkeypatch.setattr(memory, "free_memory", lambda: freed.append(1) or real_free())
    state = _oom_at(where, monkeypatch)
    big = request(checkpoint=CKPT_B if where.startswith("load") else CKPT_A, width=128, height=128, seed=11,
                  prompt=f"a corgi, out of memory at {where}",  # not in the prompt cache: the encoder runs
                  loras=(LoraSpec(KOHYA_LORA.removesuffix(".safetensors"), 0.8),) if where == "lora" else ())
    before = pngs(paths)
    job = run(worker, big)
    assert state["fired"] == 1
    (failed,) = worker.events.of(Failed, job)
    assert failed.kind == "out-of-memory", failed.message
    assert failed.message.startswith(OOM_TEXT) and "\n" not in failed.message
    assert not worker.events.of(Finished, job)
    assert_nothing_written(paths, before)
    assert freed  # gc + the CUDA cache, after the failed call's frames were dropped
    if where in ("load", "load-to-gpu", "lora"):  # a half-loaded pipeline is not kept
        assert engine.manager.pipe is None
    else:
        assert engine.manager.pipe is not None and engine.manager.load_count == loads
    smaller = replace(big, width=64, height=64, seed=12)
    done = assert_next_job_works(worker, **{k: getattr(smaller, k) for k in
                                            ("checkpoint", "width", "height", "seed", "prompt", "loras")})
    assert done.image.size == (64, 64)


def test_free_memory_empties_the_cuda_cache_when_there_is_one(monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    memory.free_memory()
    assert emptied == [1]


def test_an_out_of_memory_error_lets_go_of_the_failed_calls_tensors():
    """A traceback keeps every frame's locals alive; the handler clears them so gc can give the memory back."""
    import gc
    import weakref

    class Activation:
        pass

    def step():
        activation = Activation()
        ref.append(weakref.ref(activation))
        raise torch.OutOfMemoryError("CUDA out of memory.")

    ref = []
    try:
        step()
    except torch.OutOfMemoryError as exc:
        memory.clear_frames(exc)  # what the worker does with every out-of-memory error
        error = OutOfMemory(memory.out_of_memory_message(64, 64))
        gc.collect()
        assert ref[0]() is None  # cleared while the exception is still being handled
    assert "64x64" in str(error)


@pytest.fixture
def fake_gpu(paths, monkeypatch):
    """A fresh worker whose memory policy believes in an 8 GiB sm_61 card (the pipeline stays on the CPU):
    the full-gpu and text-encoder-offload plans run for real, only the numbers are made up."""
    gib = 1024**3
    monkeypatch.setattr(memory, "vram_info", lambda device: (8 * gib, 8 * gib, 0))
    w = start_worker(paths)
    w._engine.choice = replace(w._engine.choice, capability=(6, 1))
    yield w
    w.shutdown()


def test_out_of_memory_retries_the_job_with_a_leaner_plan_and_keeps_it(fake_gpu, monkeypatch):
    from diffusers import UNet2DConditionModel

    w = fake_gpu
    assert w.events.of(EngineStatus, run(w, request(seed=20)))[-1].memory_mode == "full gpu"
    patch_once(monkeypatch, UNet2DConditionModel, "forward", torch.OutOfMemoryError("CUDA out of memory."))
    job = run(w, request(width=128, height=128, seed=21))
    assert not w.events.of(Failed, job)
    (notice,) = [n for n in w.events.of(Notice, job) if "trying again" in n.message]
    assert notice.message == "Out of GPU memory at 128x128: trying again with text encoder offload."
    (done,) = w.events.of(Finished, job)
    assert done.request.seed == 21 and done.path.is_file()
    assert w.events.of(EngineStatus, job)[-1].memory_mode == "text encoder offload"
    job = run(w, request(seed=22))  # and the leaner plan stays for the jobs that follow
    assert w.events.of(EngineStatus, job)[-1].memory_mode == "text encoder offload"


def test_out_of_memory_mid_batch_retries_only_the_images_not_made(fake_gpu, monkeypatch, paths):
    from picotui.engine.sampling import generate as gen

    real, calls = gen.decode, {"n": 0}

    def decode(*args, **kwargs):  # the second image's decode runs out of memory once
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory.")
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "decode", decode)
    job = run(fake_gpu, request(seed=30, batch_count=3))
    done = fake_gpu.events.of(Finished, job)
    assert [f.request.seed for f in done] == [30, 31, 32]  # none made twice, none skipped
    assert [(f.image_index, f.batch_count) for f in done] == [(0, 3), (1, 3), (2, 3)]
    assert len({f.path for f in done}) == 3


def test_out_of_memory_that_persists_is_retried_exactly_three_times_each_leaner(fake_gpu, monkeypatch, paths):
    """The README's promise: up to three retries, each with a leaner plan, then one Failed with advice."""
    from dataclasses import replace as with_fields

    # Offload hooks need a real GPU (accelerate moves weights to it); on this CPU posing as one, the plan
    # chosen is recorded and laid out without hooks. The choice of plan is what is under test here.
    chosen = []
    real_apply = memory.apply_plan

    def apply_plan(pipe, plan, device):
        chosen.append(plan.mode)
        real_apply(pipe, with_fields(plan, model_offload=False, sequential_offload=False), device)

    monkeypatch.setattr(memory, "apply_plan", apply_plan)

    def always(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory.")

    real = generate.denoise
    monkeypatch.setattr(generate, "denoise", always)
    before = pngs(paths)
    job = run(fake_gpu, request(width=128, height=128, seed=40))
    tries = [n.message for n in fake_gpu.events.of(Notice, job) if "trying again" in n.message]
    assert tries == [f"Out of GPU memory at 128x128: trying again with {mode}." for mode in
                     ("text encoder offload", "model offload", "sequential offload")]
    assert chosen == ["full-gpu", "text-encoder-offload", "model-offload", "sequential-offload"]
    (failed,) = fake_gpu.events.of(Failed, job)
    assert failed.kind == "out-of-memory" and failed.message.startswith(OOM_TEXT)
    assert failed.message.endswith("The next job uses at least attention slicing to need less memory.")
    assert_nothing_written(paths, before)
    monkeypatch.setattr(generate, "denoise", real)
    assert_next_job_works(fake_gpu, seed=41)


def test_with_a_fixed_memory_mode_the_message_does_not_promise_a_step_up(fake_gpu, monkeypatch):
    from diffusers import UNet2DConditionModel

    w = fake_gpu
    w._engine.memory_mode = "full-gpu"  # as --memory-mode full-gpu / PICOTUI_MEMORY_MODE would set it
    patch_once(monkeypatch, UNet2DConditionModel, "forward", torch.OutOfMemoryError("CUDA out of memory."))
    (failed,) = w.events.of(Failed, run(w, request(width=128, height=128, seed=23)))
    assert "next job uses at least" not in failed.message
    assert "fixed to full-gpu" in failed.message and "set it to text-encoder-offload or auto" in failed.message
    job = run(w, request(seed=24))
    assert w.events.of(Finished, job)
    assert w.events.of(EngineStatus, job)[-1].memory_mode == "full gpu"  # indeed the same mode again
