"""The Worker: one thread owns the engine; jobs queue, events come out, nothing kills it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import KOHYA_LORA, TINY_CHECKPOINT
from generation_support import plain_image
from paths_support import make_paths
from worker_support import Events, log_records, run, start_worker, worker  # noqa: F401  (fixtures)

from picotui.engine.events import Cancelled, EngineStatus, Failed, Finished, Loading, Queued, Step
from picotui.engine.request import GenerationRequest, LoraSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROMPT = "welsh pembroke corgi, sitting on wooden floor, warm lighting"


@pytest.fixture(scope="module")
def paths(models_root, cache_dir, tmp_path_factory):
    return make_paths(tmp_path_factory.mktemp("worker"), models=models_root, cache=cache_dir)


def request(**kw):
    base = dict(prompt=PROMPT, negative_prompt="blurry", checkpoint=TINY_CHECKPOINT, sampler="Euler a", steps=4,
                width=64, height=64, seed=11)
    return GenerationRequest(**{**base, **kw})


def a1111_reference(components, sampler, schedule, **kw):
    """k-diffusion's sampler driven as A1111 drives it, on diffusers' own prompt encoding of the same weights."""
    import torch
    from generation_support import plain_pipeline
    from kdiffusion_reference import a1111_image

    pipe = plain_pipeline(*components)
    with torch.no_grad():
        cond, uncond = pipe.encode_prompt(PROMPT, "cpu", 1, True, "blurry")
    return a1111_image(pipe.unet, pipe.vae, cond, uncond, sampler=sampler, schedule=schedule, **kw)[0]


def test_engine_image_equals_plain_diffusers_from_the_same_weights(worker, tiny_components):
    """THE equivalence test: civitai-layout file -> Worker == the reference on the weights it was written from:
    diffusers' pipeline for the samplers diffusers runs (DDIM, PLMS), k-diffusion as A1111 drives it for the rest
    (diffusers' versions of those are not A1111's maths)."""
    for sampler, schedule in (("DPM++ 2M SDE", "Karras"), ("Euler a", "Automatic"), ("DDIM", "Automatic"),
                              ("PLMS", "Automatic")):
        req = request(sampler=sampler, schedule_type=schedule, steps=5, cfg=6.5, width=64, height=96, seed=1234,
                      rng="CPU")  # the references draw A1111's CPU noise
        job = run(worker, req)
        (finished,) = worker.events.of(Finished, job)
        if sampler in ("DDIM", "PLMS"):
            ref = plain_image(tiny_components, PROMPT, "blurry", sampler=sampler, steps=5, cfg=6.5, width=64,
                              height=96, seed=1234)
        else:
            ref = a1111_reference(tiny_components, sampler, schedule, steps=5, cfg=6.5, seeds=[1234], width=64,
                                  height=96)
        ours, ref = np.asarray(finished.image).astype(int), np.asarray(ref).astype(int)
        assert ours.shape == ref.shape == (96, 64, 3)
        assert np.abs(ours - ref).max() <= 1, sampler
        assert ours.std() > 5


def test_finished_carries_path_request_parameters_and_timings(worker, paths):
    from picotui.engine.recipes.metadata import read_recipe

    job = run(worker, request(seed=77, batch_count=1))
    (done,) = worker.events.of(Finished, job)
    assert done.path is not None and done.path.is_file() and done.save_error is None
    assert done.path.is_relative_to(paths.outputs) and done.path.name.endswith("-77.png")
    assert done.request.seed == 77 and done.request.batch_count == 1
    assert "Seed: 77" in done.parameters
    assert {"load", "encode", "denoise", "decode", "save", "total"} <= set(done.timings)
    recipe = read_recipe(done.path)
    assert recipe.request.seed == 77 and recipe.request.sampler == "Euler a" and recipe.request.prompt == PROMPT
    steps = worker.events.of(Step, job)
    assert [s.index for s in steps] == [1, 2, 3, 4] and steps[0].preview is not None


def test_batch_count_makes_consecutive_seeds_that_reproduce_alone(worker):
    job = run(worker, request(seed=500, batch_count=2))
    images = worker.events.of(Finished, job)
    assert [f.request.seed for f in images] == [500, 501] and [f.image_index for f in images] == [0, 1]
    assert all(f.batch_count == 2 for f in images)
    assert {s.image_index for s in worker.events.of(Step, job)} == {0, 1}
    again = run(worker, request(seed=501))
    (alone,) = worker.events.of(Finished, again)
    assert np.array_equal(np.asarray(alone.image), np.asarray(images[1].image))
    assert not np.array_equal(np.asarray(images[0].image), np.asarray(images[1].image))


def test_random_seed_is_made_concrete(worker):
    job = run(worker, request(seed=None))
    (done,) = worker.events.of(Finished, job)
    assert isinstance(done.request.seed, int)


def test_cancel_mid_run_stops_within_a_step_and_the_next_job_works(worker):
    events = worker.events
    state = {}

    def cancel_at_third_step(event):
        if isinstance(event, Step) and event.job_id == state.get("job") and event.index == 3 and "at" not in state:
            state["at"] = len(events.of(Step, event.job_id))
            worker.cancel(event.job_id)

    events.hook = cancel_at_third_step
    try:
        state["job"] = job = worker.submit(request(steps=60, width=128, height=128))
        events.wait(events.done(job))
    finally:
        events.hook = None
    assert events.of(Cancelled, job) and not events.of(Finished, job)
    assert len(events.of(Step, job)) <= state["at"] + 2  # what was already in flight, at most one more step
    nxt = run(worker, request(seed=3))
    assert events.of(Finished, nxt)


def test_three_jobs_queue_while_one_runs_and_a_queued_one_can_be_cancelled(worker):
    events = worker.events
    first = worker.submit(request(steps=30, width=128, height=128))
    events.wait(lambda items: any(isinstance(e, Step) and e.job_id == first for e in items))
    queued = [worker.submit(request(seed=s)) for s in (1, 2, 3)]
    events.wait(lambda items: all(any(isinstance(e, Queued) and e.job_id == j for e in items) for j in queued))
    positions = [events.of(Queued, j)[0].position for j in queued]
    assert positions == [0, 1, 2]
    assert worker.pending == 3
    assert worker.cancel(queued[1])  # remove the middle one before it starts
    for job in (first, queued[0], queued[2]):
        events.wait(events.done(job))
    assert events.of(Cancelled, queued[1]) and not events.of(Step, queued[1])
    assert events.of(Queued, queued[2])[-1].position == 0  # moved up as the others left
    order = [e.job_id for e in events.of(Finished) if e.job_id in (first, *queued)]
    assert order == [first, queued[0], queued[2]]


def test_an_internal_error_becomes_one_line_failed_and_the_worker_lives(worker, monkeypatch, log_records):
    import picotui.engine.sampling.generate as generate

    def broken_decode(*args, **kwargs):
        raise KeyError("vae_scaling\nsecond line")

    monkeypatch.setattr(generate, "decode", broken_decode)
    try:
        job = run(worker, request())
    finally:
        monkeypatch.undo()
    (failed,) = worker.events.of(Failed, job)
    assert failed.kind == "internal" and "\n" not in failed.message
    assert failed.message.endswith("(details in the log)") and "vae_scaling" in failed.message
    assert any(r.exc_info for r in log_records)  # the traceback went to the log
    assert worker.events.of(Finished, run(worker, request()))


def test_a_missing_model_is_a_model_failure_with_a_clear_message(worker):
    job = run(worker, request(checkpoint="noSuchModel_v2.safetensors"))
    (failed,) = worker.events.of(Failed, job)
    assert failed.kind == "model" and "noSuchModel" in failed.message and "\n" not in failed.message


def test_a_lora_tag_in_the_prompt_is_applied_like_the_panel_lora(worker):
    stem = KOHYA_LORA.removesuffix(".safetensors")
    tagged = run(worker, request(prompt=f"{PROMPT} <lora:{stem}:0.9>"))
    panel = run(worker, request(loras=(LoraSpec(stem, 0.9),)))
    plain = run(worker, request())
    a, b, c = (np.asarray(worker.events.of(Finished, j)[0].image).astype(int) for j in (tagged, panel, plain))
    assert np.abs(a - b).max() <= 1
    assert np.abs(a - c).mean() > 1
    assert worker.events.of(Finished, tagged)[0].request.prompt.endswith(f"<lora:{stem}:0.9>")


def test_status_and_threads(worker):
    statuses = worker.events.of(EngineStatus)
    idle = [s for s in statuses if s.state == "idle"]
    assert idle and idle[-1].device == "cpu" and idle[-1].dtype == "float32" and idle[-1].memory_mode == "cpu"
    assert idle[-1].checkpoint == TINY_CHECKPOINT
    assert worker.events.of(Loading)
    assert worker.events.threads == {"picotui-events"}  # never the caller's thread


def test_shutdown_stops_the_threads(paths):
    from picotui.engine.jobs.worker import Worker

    events = Events()
    w = Worker(paths, events, device="cpu").start()
    w.shutdown(timeout=30)
    assert events.of(EngineStatus)[-1].state == "stopped"
    assert not w._thread.is_alive() and not w._dispatcher.is_alive()


def test_importing_the_worker_does_not_import_torch():
    code = "import sys, picotui.engine.jobs.worker; print('torch' in sys.modules, 'diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False False", out.stderr
