"""Faults injected into a real Worker on CPU: the worker never dies, out-of-memory anywhere is reported and
recovered from, cancel works at every phase and never spills onto the next job, a failed save keeps the
image for "save again", and no PNG or temp file is left where none should be.

Faults are injected by patching the piece that would fail on a real machine (a CUDA error in the status
read, torch.OutOfMemoryError from the UNet / VAE / text encoder / LoRA loader / checkpoint builder,
ENOSPC/EACCES from the file system); everything else is the real engine on the tiny SD1.5 checkpoint.
"""

from __future__ import annotations

import errno
import logging
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import KOHYA_LORA, TINY_CHECKPOINT, TINY_VAE
from PIL import Image
from worker_support import Events

from picotui.engine import generate, jobs, memory, output
from picotui.engine.errors import OutOfMemory
from picotui.engine.events import Cancelled, EngineStatus, Failed, Finished, Loading, Notice, Step
from picotui.engine.loading import ModelManager
from picotui.engine.request import GenerationRequest, LoraSpec
from picotui.paths import Paths

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CKPT_A, CKPT_B = "tinyA.safetensors", "tinyB.safetensors"  # two copies: switching between them forces a load
OOM_TEXT = "Out of GPU memory at 128x128: try a smaller size"


@pytest.fixture(scope="module")
def paths(models_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    root = base / "models"
    for sub in ("checkpoints", "vae", "loras", "embeddings"):
        (root / sub).mkdir(parents=True)
    for name in (CKPT_A, CKPT_B):
        shutil.copyfile(models_root / "checkpoints" / TINY_CHECKPOINT, root / "checkpoints" / name)
    shutil.copyfile(models_root / "loras" / KOHYA_LORA, root / "loras" / KOHYA_LORA)
    shutil.copyfile(models_root / "vae" / TINY_VAE, root / "vae" / TINY_VAE)
    return Paths(models=root, outputs=base / "outputs", config_file=base / "config.toml", state=base / "state",
                 cache=base / "cache")


def start_worker(paths, **kw):
    from picotui.engine.worker import Worker

    events = Events()
    w = Worker(paths, events, device="cpu", **kw).start()
    w.events = events
    events.wait(lambda items: any(isinstance(e, (EngineStatus, Failed)) and e.job_id == 0 for e in items), 120)
    return w


@pytest.fixture(scope="module")
def worker(paths):
    w = start_worker(paths)
    yield w
    w.shutdown()


@pytest.fixture
def log_records():
    records = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append
    logger = logging.getLogger("picotui")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def request(**kw):
    base = dict(prompt="a corgi on a wooden floor", negative_prompt="blurry", checkpoint=CKPT_A, sampler="Euler",
                steps=3, width=64, height=64, seed=5)
    return GenerationRequest(**{**base, **kw})


def run(worker, req, timeout=120):
    job = worker.submit(req)
    worker.events.wait(worker.events.done(job), timeout)
    return job


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


# ---- 1. the worker never dies -------------------------------------------------------------------

def test_status_failing_after_a_job_does_not_kill_the_worker(worker, paths, monkeypatch, log_records):
    """The idle status after a job reads the GPU; a CUDA error there used to kill the worker thread."""
    real = jobs.JobRunner.status
    calls = []

    def status(self, job_id, state):
        if state == "idle" and not calls:
            calls.append(job_id)
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(self, job_id, state)

    monkeypatch.setattr(jobs.JobRunner, "status", status)
    job = run(worker, request(seed=1))
    worker.events.wait(lambda items: any(isinstance(e, EngineStatus) and e.job_id == job and e.state == "idle"
                                         for e in items))
    assert worker.events.of(Finished, job) and not worker.events.of(Failed, job)
    (notice,) = worker.events.of(Notice, job)
    assert "GPU status" in notice.message and "\n" not in notice.message and notice.level == "warning"
    assert worker.events.of(EngineStatus, job)[-1].state == "idle"  # the last known status, marked idle
    assert any(r.exc_info and "illegal memory access" in str(r.exc_info[1]) for r in log_records)
    assert calls == [job]
    assert_next_job_works(worker, seed=2)


def test_a_cuda_error_in_vram_info_mid_job_is_a_failed_event_and_the_next_job_runs(worker, monkeypatch,
                                                                                   log_records):
    def broken(device):
        raise RuntimeError("CUDA error: unspecified launch failure\nCUDA kernel errors might be reported late")

    monkeypatch.setattr(memory, "vram_info", broken)
    jobs = [run(worker, request(seed=s)) for s in (3, 4)]  # a lasting fault: every job fails, none hangs
    for job in jobs:
        (failed,) = worker.events.of(Failed, job)
        assert failed.kind == "internal" and "unspecified launch failure" in failed.message
        assert failed.message.endswith("(details in the log)") and "\n" not in failed.message
    assert any(r.exc_info and "launch failure" in str(r.exc_info[1]) for r in log_records)
    monkeypatch.undo()
    assert_next_job_works(worker, seed=5)


def test_a_failing_event_handler_does_not_stop_the_events_or_the_worker(worker, log_records):
    """The UI's handler raising (even SystemExit) is logged; the events after it still arrive."""
    seen = []

    def broken_handler(event):
        seen.append(event)
        if isinstance(event, Step):
            raise ValueError("widget gone")
        if isinstance(event, Finished):
            raise SystemExit("handler exited")

    worker.events.after = broken_handler
    try:
        job = run(worker, request(seed=6))
        nxt = run(worker, request(seed=7))
    finally:
        worker.events.after = None
    assert [s.index for s in worker.events.of(Step, job)] == [1, 2, 3]
    assert worker.events.of(Finished, job) and worker.events.of(Finished, nxt)
    assert sum(isinstance(e, Step) for e in seen) == 6
    assert any(r.exc_info and "widget gone" in str(r.exc_info[1]) for r in log_records)


def test_a_fault_inside_the_error_handling_still_ends_the_job_and_the_next_runs(worker, paths, monkeypatch):
    """Out of memory at decode, and then freeing memory fails too: still one Failed, the worker goes on."""
    from diffusers import AutoencoderKL

    def cannot_free(self):
        raise RuntimeError("CUDA error: device-side assert triggered")

    patch_once(monkeypatch, AutoencoderKL, "decode", torch.OutOfMemoryError("CUDA out of memory."))
    monkeypatch.setattr(jobs.JobRunner, "on_out_of_memory", cannot_free)
    before = pngs(paths)
    job = run(worker, request(width=128, height=128, seed=8))
    (failed,) = worker.events.of(Failed, job)
    assert failed.kind == "out-of-memory" and failed.message.startswith(OOM_TEXT)
    assert_nothing_written(paths, before)
    monkeypatch.undo()
    assert_next_job_works(worker, seed=9)


# ---- 2. out of memory, wherever it happens -------------------------------------------------------

def _oom_at(where, monkeypatch):
    """Patch one place to raise a GPU out-of-memory error once; returns the state of the patch."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    from picotui.engine.conditioning import PromptEncoder

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
    from picotui.engine import generate as gen

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


def test_out_of_memory_that_persists_stops_after_a_few_leaner_tries(fake_gpu, monkeypatch, paths):
    from picotui.engine import worker as worker_module

    # One leaner try here (the real limit is higher): on this CPU posing as a GPU, sequential offload,
    # which more tries would reach, cannot run at all.
    monkeypatch.setattr(worker_module, "MAX_OOM_RETRIES", 1)

    def always(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory.")

    real = generate.denoise
    monkeypatch.setattr(generate, "denoise", always)
    before = pngs(paths)
    job = run(fake_gpu, request(width=128, height=128, seed=40))
    tries = [n for n in fake_gpu.events.of(Notice, job) if "trying again" in n.message]
    assert len(tries) == 1
    (failed,) = fake_gpu.events.of(Failed, job)
    assert failed.kind == "out-of-memory" and failed.message.startswith(OOM_TEXT)
    assert failed.message.endswith("The next job uses at least model offload to need less memory.")
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


# ---- 3. cancel ------------------------------------------------------------------------------------

def _cancel_inside(worker, monkeypatch, owner, name, *, when=lambda n: n == 1, after=False):
    """Wrap owner.name so that on the call where when(call number) is true, the running job is cancelled
    (by its id, as the UI does) before (or after) the real call."""
    real = getattr(owner, name)
    calls = {"n": 0, "cancelled": None}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        hit = when(calls["n"]) and calls["cancelled"] is None
        if hit and not after:
            calls["cancelled"] = worker.cancel(worker.running_job)
        result = real(*args, **kwargs)
        if hit and after:
            calls["cancelled"] = worker.cancel(worker.running_job)
        return result

    monkeypatch.setattr(owner, name, wrapped)
    return calls


PHASES = ["loading", "step 0", "last step", "decode", "before save", "saving"]


@pytest.mark.parametrize("phase", PHASES)
def test_cancel_at_each_phase_leaves_no_image_and_the_next_job_works(worker, paths, monkeypatch, phase):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    engine = worker._engine
    run(worker, request(checkpoint=CKPT_A, seed=30))
    steps = 4
    req = request(checkpoint=CKPT_B if phase == "loading" else CKPT_A, steps=steps, seed=31)
    if phase == "loading":  # while the checkpoint is being read: the UNet is built, the rest is not
        calls = _cancel_inside(worker, monkeypatch, ModelManager, "_build_unet", after=True)
    elif phase == "step 0":  # during the first UNet call
        calls = _cancel_inside(worker, monkeypatch, UNet2DConditionModel, "forward")
    elif phase == "last step":
        calls = _cancel_inside(worker, monkeypatch, UNet2DConditionModel, "forward", when=lambda n: n == steps)
    elif phase == "decode":
        calls = _cancel_inside(worker, monkeypatch, AutoencoderKL, "decode")
    elif phase == "before save":  # while the A1111 text is being made, before the save starts
        calls = _cancel_inside(worker, monkeypatch, jobs.JobRunner, "_parameters")
    else:  # the PNG is encoded and being written; its final name is not claimed yet
        calls = _cancel_inside(worker, monkeypatch, output, "encode_png")
    before = pngs(paths)
    job = run(worker, req)
    assert calls["cancelled"] is True
    assert len(worker.events.of(Cancelled, job)) == 1
    assert not worker.events.of(Finished, job) and not worker.events.of(Failed, job)
    assert_nothing_written(paths, before)
    step_indices = [s.index for s in worker.events.of(Step, job)]
    if phase in ("loading", "step 0"):
        assert step_indices == []
    elif phase == "last step":
        assert step_indices == list(range(1, steps))
    else:
        assert step_indices == list(range(1, steps + 1))
    if phase == "loading":
        assert engine.manager.pipe is None  # nothing half-built is kept
        assert not [e for e in worker.events.of(Loading, job) if e.stage.startswith("building VAE")]
    monkeypatch.undo()
    assert_next_job_works(worker, checkpoint=req.checkpoint, seed=32)


def test_cancel_once_the_png_has_its_name_completes_the_save(worker, paths, monkeypatch):
    """The rule's other side: a cancel after the final name was claimed keeps the finished PNG."""
    calls = _cancel_inside(worker, monkeypatch, output, "_claim", after=True)
    before = pngs(paths)
    job = run(worker, request(seed=33))
    assert calls["cancelled"] is True
    (done,) = worker.events.of(Finished, job)
    assert done.path is not None and done.path.is_file() and not worker.events.of(Cancelled, job)
    assert set(pngs(paths)) - set(before) == {done.path}
    assert output.partial_files(paths.outputs) == []


def test_cancel_pressed_many_times_stops_only_the_job_it_was_meant_for(worker, paths):
    events = worker.events
    state = {"first": [], "late": []}

    def press(event):
        if isinstance(event, Step) and event.job_id == state.get("a") and event.index == 2 and not state["first"]:
            state["first"] = [worker.cancel(state["a"]) for _ in range(25)]  # escape held down
        if isinstance(event, Step) and event.job_id == state.get("b") and not state["late"]:
            state["late"] = [worker.cancel(state["a"]) for _ in range(25)]  # presses that arrive late

    events.hook = press
    try:
        state["a"] = a = worker.submit(request(steps=40, width=128, height=128, seed=40))
        state["b"] = b = worker.submit(request(steps=4, seed=41))
        events.wait(events.done(a))
        events.wait(events.done(b))
    finally:
        events.hook = None
    assert state["first"][0] is True  # the first press stops A (the rest find it already stopping)
    assert state["late"] and not any(state["late"])  # once A is over, its id matches nothing
    assert len(events.of(Cancelled, a)) == 1 and not events.of(Finished, a)
    assert events.of(Finished, b) and not events.of(Cancelled, b)
    assert worker.cancel(a) is False and worker.cancel(b) is False  # both over
    assert worker.cancel() is False  # nothing runs


def test_quitting_mid_job_cancels_it_and_the_queue_and_stops_cleanly(paths):
    w = start_worker(paths)
    events = w.events
    before = pngs(paths)
    running = w.submit(request(steps=60, width=128, height=128, seed=50))
    queued = w.submit(request(seed=51))
    events.wait(lambda items: any(isinstance(e, Step) and e.job_id == running for e in items), 120)
    w.shutdown(timeout=60)
    assert events.of(Cancelled, running) and events.of(Cancelled, queued)
    assert not events.of(Finished, running) and not events.of(Step, queued)
    assert events.of(EngineStatus)[-1].state == "stopped"
    assert not w._thread.is_alive() and not w._dispatcher.is_alive()
    assert_nothing_written(paths, before)
    from picotui.engine.errors import PicoError

    with pytest.raises(PicoError, match="shutting down"):
        w.submit(request())


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
    from picotui.engine.metadata import read_recipe
    from picotui.engine.png_text import read_png_text

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

    root = os.fsencode(tmp_path) + b"/models"
    for sub, src, name in ((b"checkpoints", models_root / "checkpoints" / TINY_CHECKPOINT, b"caf\xe9.safetensors"),
                           (b"loras", models_root / "loras" / KOHYA_LORA, b"styl\xe9.safetensors"),
                           (b"vae", models_root / "vae" / TINY_VAE, b"v\xe6-ft.safetensors")):
        os.makedirs(root + b"/" + sub)
        shutil.copyfile(src, root + b"/" + sub + b"/" + name)
    os.makedirs(root + b"/embeddings")
    from pathlib import Path

    return Paths(models=Path(os.fsdecode(root)), outputs=tmp_path / "outputs", config_file=tmp_path / "c.toml",
                 state=tmp_path / "state", cache=tmp_path / "cache")


def test_models_with_non_utf8_names_load_generate_save_and_log(latin1_paths, capsys):
    from picotui import logs
    from picotui.engine.metadata import read_recipe
    from picotui.engine.png_text import read_png_text

    logger = logging.getLogger("picotui")
    saved = (list(logger.handlers), logger.level, logger.propagate)
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
        logger.removeHandler(logs._handler)  # restore the logger as it was
        logs._handler.close()
        logs._handler = None
        logger.handlers[:], logger.level, logger.propagate = saved
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
    from picotui.engine.library import sniff

    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: False if str(p).startswith("/proc/self/fd/") else real_exists(p))
    mf = sniff(latin1_paths.models / "checkpoints" / "caf\udce9.safetensors")
    assert mf.usable  # the header is read through Python's own open(), which takes any name
    with pytest.raises(ModelError) as info:
        ModelManager(None, "cpu", torch.float32).pipeline_for(mf)
    assert "not valid UTF-8" in str(info.value) and "rename it" in str(info.value)
    assert "download" not in str(info.value)
