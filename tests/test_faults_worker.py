"""Faults injected into a real Worker on CPU: it never dies (a fault in the status read, an event handler
or its own error handling ends the job, not the thread), and cancel works at every phase, never spills
onto the next job, and leaves no PNG or temp file."""

from __future__ import annotations

import pytest
import torch
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
from worker_support import log_records, run, start_worker  # noqa: F401  (log_records is a fixture)

from picotui.engine.events import Cancelled, EngineStatus, Failed, Finished, Loading, Notice, Step
from picotui.engine.hardware import memory
from picotui.engine.jobs import runner as jobs
from picotui.engine.jobs import saving
from picotui.engine.models.loading import ModelManager
from picotui.engine.recipes import output

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


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
        calls = _cancel_inside(worker, monkeypatch, saving, "recipe_text")
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
