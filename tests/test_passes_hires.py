"""Hires fix through the real Worker on the tiny checkpoint (64x64 first pass, 96-128 hires): A1111's target
size rule (by scale, by "Hires resize" with its crop), its step rule per pass and the Step events that show it,
the picture against diffusers' own img2img pipeline run on the upscaled first pass, out of memory in the
hires pass retried alone, and cancel in or between the passes leaving no PNG.

The worker believes in an 8 GiB sm_61 card (made-up VRAM numbers, everything stays on the CPU) so the memory
policy has plans to step up to after an out-of-memory error."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from generation_support import encoder_for, plain_pipeline
from passes_support import (  # noqa: F401  (paths is a fixture)
    NEGATIVE,
    PROMPT,
    a1111_8bit,
    assert_same_picture,
    diffusers_encode,
    diffusers_hires_pass,
    paths,
    pngs,
    request,
    steps_by_pass,
)
from PIL import Image
from worker_support import run, start_worker

from picotui.engine.events import Cancelled, EngineStatus, Failed, Finished, Notice, Step
from picotui.engine.hardware import memory
from picotui.engine.recipes import output

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
GIB = 1024**3


@pytest.fixture(scope="module")
def worker(paths):
    from upscaler_support import build_models

    build_models(paths.models)  # tiny random-weight upscalers from spandrel's classes in models/upscalers
    mp = pytest.MonkeyPatch()
    mp.setattr(memory, "vram_info", lambda device: (8 * GIB, 8 * GIB, 0))
    w = start_worker(paths)
    w._engine.choice = replace(w._engine.choice, capability=(6, 1))
    yield w
    w.shutdown()
    mp.undo()


def hires(**kw):
    return request(**{"hires": True, "denoising_strength": 0.75, **kw})


def finished(w, req):
    job = run(w, req)
    assert not w.events.of(Failed, job), w.events.of(Failed, job)
    (done,) = w.events.of(Finished, job)
    return job, done


def first_pass_latents(components, width, height, seed):
    """The first pass as our engine samples it (Euler, 3 steps, CPU noise), from the same weights."""
    from picotui.engine.sampling.generate import denoise

    pipe = plain_pipeline(*components)
    cond, uncond = encoder_for(pipe)(PROMPT, NEGATIVE)
    return denoise(pipe, cond, uncond, sampler="Euler", steps=3, cfg=6.0, width=width, height=height, seed=seed)


@pytest.mark.parametrize("first, hires_kw, crop", [
    ((64, 64), dict(hires_scale=2.0), (0, 0)),  # 128x128: nothing to crop
    # "Hires resize" 128x128 from 64x96: the upscale covers it (128x192), then 8 latent rows off top and bottom
    ((64, 96), dict(hires_resize=(128, 128)), (0, 8)),
    # other prompts for the hires pass, and a batch: each picture's hires noise from its own seed
    ((64, 64), dict(hires_scale=2.0, hires_prompt="a castle at night", hires_negative_prompt="fog", batch_count=2),
     (0, 0)),
])
def test_a_latent_hires_pass_is_diffusers_img2img_on_the_upscaled_first_pass(worker, paths, tiny_components, first,
                                                                             hires_kw, crop):
    width, height = first
    job = run(worker, hires(width=width, height=height, hires_steps=3, **hires_kw))
    done = worker.events.of(Finished, job)
    assert [d.request.seed for d in done] == [7, 8][:hires_kw.get("batch_count", 1)]
    for d in done:
        assert d.image.size == (128, 128) and d.path.is_file()
        assert (d.request.width, d.request.height) == first  # the recipe's Size is the first pass's (A1111)
        # independently: interpolate as A1111 does (bilinear, to the uncropped hires size), crop centred, denoise
        latents = first_pass_latents(tiny_components, width, height, seed=d.request.seed)
        up_w, up_h = (128, 128) if crop == (0, 0) else (128, 192)
        up = torch.nn.functional.interpolate(latents, size=(up_h // 8, up_w // 8), mode="bilinear")
        ty = crop[1]
        up = up[:, :, ty // 2:up.shape[2] - (ty + 1) // 2, :]
        expected = diffusers_hires_pass(tiny_components, up, prompt=hires_kw.get("hires_prompt", PROMPT),
                                        negative=hires_kw.get("hires_negative_prompt", NEGATIVE), seed=d.request.seed,
                                        steps=3, strength=0.75, cfg=6.0)
        assert_same_picture(d.image, expected)


def test_a_lanczos_hires_pass_decodes_upscales_the_8bit_picture_and_encodes_it(worker, tiny_components):
    """A1111's picture route: the first pass decoded to 8 bits, resize_image(0, ..., "Lanczos") (its Lanczos
    upscaler then LANCZOS to the size: one LANCZOS resize here), VAE-encoded, then the hires pass."""
    import torch

    _job, done = finished(worker, hires(hires_upscaler="Lanczos", hires_steps=3))
    assert done.image.size == (128, 128)
    latents = first_pass_latents(tiny_components, 64, 64, seed=7)
    with torch.no_grad():
        decoded = tiny_components[1].decode(latents / tiny_components[1].config.scaling_factor, return_dict=False)[0]
    big = Image.fromarray(a1111_8bit(decoded)).resize((128, 128), Image.Resampling.LANCZOS)
    expected = diffusers_hires_pass(tiny_components, diffusers_encode(tiny_components, big), prompt=PROMPT,
                                    negative=NEGATIVE, seed=7, steps=3, strength=0.75, cfg=6.0)
    assert_same_picture(done.image, expected)


def test_a_model_upscaler_runs_in_the_hires_pass_and_a_missing_one_fails_before_the_first(worker):
    engine = worker._engine
    _job, done = finished(worker, hires(hires_upscaler="tiny-compact-2x", hires_scale=1.5, hires_steps=1))
    assert done.image.size == (96, 96) and engine.upscalers().runs == 1  # a 2x model once, then LANCZOS to 96
    assert engine.plan_size.upscaler and engine.plan_size.encode == (96, 96)
    assert engine.plan.reason.endswith("; for 96x96, a VAE encode at 96x96, an upscaler model")  # what F3 shows
    job = run(worker, hires(hires_upscaler="4x-missing"))
    (failed,) = worker.events.of(Failed, job)
    assert "4x-missing" in failed.message and "\n" not in failed.message
    assert not steps_by_pass(worker.events, job)  # refused before the first pass ran


def test_each_pass_has_its_own_step_events_and_a1111s_step_counts(worker):
    """A1111: the first pass runs `steps`; the hires pass runs hires steps (or steps when 0) whatever the
    strength (its schedule is stretched to int(steps / strength) instead)."""
    job, done = finished(worker, hires(hires_scale=1.5, hires_steps=2, denoising_strength=0.5,
                                       hires_upscaler="Latent (nearest)"))
    assert done.image.size == (96, 96)  # int(64 * 1.5)
    by_pass = steps_by_pass(worker.events, job)
    assert by_pass == {"first pass": [(1, 3, 1, 2), (2, 3, 1, 2), (3, 3, 1, 2)],
                       "hires pass": [(1, 2, 2, 2), (2, 2, 2, 2)]}
    eta = [(e.pass_label, e.eta_s > 0) for e in worker.events.of(Step, job)]  # each pass counts down to 0
    assert eta == [("first pass", True), ("first pass", True), ("first pass", False), ("hires pass", True),
                   ("hires pass", False)]
    # hires steps 0: as many as the first pass; another sampler for the hires pass (diffusers' DDIM loop)
    job, _done = finished(worker, hires(hires_scale=1.5, denoising_strength=0.3, hires_sampler="DDIM"))
    assert [s[:2] for s in steps_by_pass(worker.events, job)["hires pass"]] == [(1, 3), (2, 3), (3, 3)]


def test_a_hires_fix_to_the_first_pass_size_is_dropped_as_a1111_drops_it(worker):
    """A1111 (calculate_target_resolution): a target equal to the first pass's size turns hires fix off, and the
    picture and its recipe are the first pass's. Upscale by 1 and "resize to" the same size both do."""
    for kw in (dict(hires_scale=1.0), dict(hires_resize=(64, 0))):
        job, done = finished(worker, hires(**kw))
        assert done.image.size == (64, 64)
        assert list(steps_by_pass(worker.events, job)) == [""]  # one pass, unlabelled
        (notice,) = [n.message for n in worker.events.of(Notice, job) if "first pass's own size" in n.message]
        assert "A1111" in notice and "\n" not in notice
        assert not done.request.hires
        assert "Hires" not in done.parameters and "Denoising strength" not in done.parameters
    plain_job, plain = finished(worker, request(seed=done.request.seed))
    assert np.array_equal(np.asarray(plain.image), np.asarray(done.image))


@pytest.mark.parametrize("where", ["hires", "first"])
def test_out_of_memory_in_the_hires_pass_retries_that_pass_only(worker, monkeypatch, where):
    """In the hires pass: that pass again, the first pass kept. In the first pass: the whole image again, as for
    any job. Either way the picture is the one a run without the error makes."""
    from diffusers import UNet2DConditionModel

    req = hires(seed=11)
    _job, clean = finished(worker, req)
    real = UNet2DConditionModel.forward
    calls = {"first": 0, "hires": 0, "fired": 0}

    def forward(self, sample, *args, **kwargs):
        which = "hires" if sample.shape[-1] == 16 else "first"  # 128 / 8: the hires pass
        calls[which] += 1
        if which == where and not calls["fired"]:
            calls["fired"] += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, sample, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", forward)
    try:
        job, done = finished(worker, req)
        notices = [n.message for n in worker.events.of(Notice, job) if "Out of GPU memory" in n.message]
        first_steps = [s[0] for s in steps_by_pass(worker.events, job)["first pass"]]
        if where == "hires":
            assert notices == ["Out of GPU memory in the hires pass at 128x128: trying that pass again with text "
                               "encoder offload (the first pass is kept)."]
            assert calls == {"first": 3, "hires": 1 + 3, "fired": 1} and first_steps == [1, 2, 3]  # first pass once
        else:
            assert notices == ["Out of GPU memory at 64x64: trying again with text encoder offload."]
            assert calls == {"first": 1 + 3, "hires": 3, "fired": 1} and first_steps == [1, 2, 3]
        worker.events.wait(lambda items: any(isinstance(e, EngineStatus) and e.job_id == job and e.state == "idle"
                                             for e in items))
        assert worker.events.of(EngineStatus, job)[-1].memory_mode == "text encoder offload"
        np.testing.assert_array_equal(np.asarray(done.image), np.asarray(clean.image))
    finally:
        worker._engine.min_mode = None


def test_out_of_memory_in_the_hires_pass_under_a_fixed_memory_mode_fails_in_one_line(worker, paths, monkeypatch):
    """The user's fixed mode is not stepped up: no retry, one line naming the hires size and the setting."""
    from picotui.engine.upscaling.upscalers import Upscalers

    def upscale(self, *args, **kwargs):  # the model's own error, as torch raises it
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")

    monkeypatch.setattr(Upscalers, "upscale", upscale)
    monkeypatch.setattr(worker._engine, "memory_mode", "full-gpu")
    before = pngs(paths)
    job = run(worker, hires(hires_upscaler="tiny-compact-2x", seed=14))
    (failed,) = worker.events.of(Failed, job)
    assert failed.kind == "out-of-memory" and "\n" not in failed.message
    assert failed.message.startswith("Out of GPU memory at 128x128: try a smaller size")
    assert "fixed to full-gpu by your settings" in failed.message
    assert not [n for n in worker.events.of(Notice, job) if "trying" in n.message] and pngs(paths) == before


@pytest.mark.parametrize("where", ["hires step", "between passes"])
def test_cancel_in_or_before_the_hires_pass_writes_no_png(worker, paths, monkeypatch, where):
    from diffusers import UNet2DConditionModel

    from picotui.engine.jobs.second_pass import HiresPass

    def cancel_then(real):
        def inner(*args, **kwargs):
            worker.cancel()  # from the worker thread itself: the next cancel check sees it
            return real(*args, **kwargs)
        return inner

    if where == "hires step":
        real_forward = UNet2DConditionModel.forward

        def forward(self, sample, *args, **kwargs):
            if sample.shape[-1] == 16:
                worker.cancel()
            return real_forward(self, sample, *args, **kwargs)
        monkeypatch.setattr(UNet2DConditionModel, "forward", forward)
    else:
        monkeypatch.setattr(HiresPass, "upscale", cancel_then(HiresPass.upscale))
    before = pngs(paths)
    job = run(worker, hires(seed=12))
    assert worker.events.of(Cancelled, job) and not worker.events.of(Finished, job)
    assert pngs(paths) == before and output.partial_files(paths.outputs) == []
    assert len(steps_by_pass(worker.events, job).get("hires pass", [])) <= (1 if where == "hires step" else 0)
    monkeypatch.undo()
    finished(worker, hires(seed=13))  # the worker goes on


def test_strength_0_is_refused_in_one_line_and_the_worker_goes_on(worker):
    job = run(worker, hires(denoising_strength=0))
    (failed,) = worker.events.of(Failed, job)
    assert failed.kind == "invalid-request" and "\n" not in failed.message
    assert failed.message.startswith("Denoising strength 0 would only enlarge the first pass")
    finished(worker, hires(denoising_strength=1.0, hires_steps=1))  # 1 is allowed: a full redraw at the new size
