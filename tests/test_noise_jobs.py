"""A job's pictures start from A1111's noise: the JobRunner (from the tiny checkpoint file) against plain
diffusers given the starting latents A1111 would draw, computed here independently (torch's CPU generator,
A1111's slerp written per column, its seed-resize placement; the NV source from a scalar Philox)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_CHECKPOINT
from generation_support import plain_pipeline
from noise_support import cuda_randn_element, slerp_per_column
from paths_support import make_paths

from picotui.engine.events import Finished
from picotui.engine.jobs import runner as jobs
from picotui.engine.request import GenerationRequest
from picotui.engine.sampling.samplers import make_scheduler

PROMPT, NEGATIVE = "a lighthouse on a cliff", "blurry"
# DDIM: a sampler diffusers runs in every version of the engine; it adds no noise after the start.
BASE = dict(prompt=PROMPT, negative_prompt=NEGATIVE, checkpoint=TINY_CHECKPOINT, sampler="DDIM", steps=3, cfg=6.0,
            width=80, height=64, seed=5)


@pytest.fixture(scope="module")
def runner(models_root, tmp_path_factory):
    events = []
    job_runner = jobs.JobRunner(make_paths(tmp_path_factory.mktemp("noise-jobs"), models=models_root), "cpu", False,
                                None, events.append)
    return job_runner, events


def run(runner, request):
    job_runner, events = runner
    start = len(events)
    job_runner.run_job(1, request, lambda: False)
    return [e for e in events[start:] if isinstance(e, Finished)]


def cpu_randn(seed, shape):
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))


def plain_from_latents(components, latents):
    pipe = plain_pipeline(*components)
    pipe.scheduler = make_scheduler("DDIM", pipe.scheduler.config)
    image = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=3, guidance_scale=6.0, width=80, height=64,
                 latents=latents.unsqueeze(0).float()).images[0]
    return np.asarray(image).astype(int)


def test_variation_and_seed_resize_in_a_batch_start_from_a1111s_noise(runner, tiny_components):
    request = GenerationRequest(**BASE, rng="CPU", variation_seed=9, variation_strength=0.4,
                                seed_resize_from=(64, 96), batch_count=2)
    finished = run(runner, request)
    assert [(f.request.seed, f.request.variation_seed) for f in finished] == [(5, 9), (5, 10)]
    for f, variation in zip(finished, (9, 10)):
        own = torch.from_numpy(slerp_per_column(0.4, cpu_randn(5, (4, 12, 8)), cpu_randn(variation, (4, 12, 8))))
        start = cpu_randn(5, (4, 8, 10)).double()
        start[:, 0:8, 1:9] = own[:, 2:10, 0:8]  # 8x12 noise centred in 10x8: columns padded, rows cropped
        ours = np.asarray(f.image).astype(int)
        assert np.abs(ours - plain_from_latents(tiny_components, start)).max() <= 1
    assert np.abs(np.asarray(finished[0].image).astype(int) - np.asarray(finished[1].image).astype(int)).mean() > 1


@pytest.mark.parametrize("rng", ["NV", "GPU"])  # on the CPU, GPU noise is the emulation of the GPU's
def test_nv_and_gpu_noise_on_the_cpu_start_from_the_gpus_numbers(runner, tiny_components, rng):
    (finished,) = run(runner, GenerationRequest(**BASE, rng=rng))
    start = torch.tensor([cuda_randn_element(5, 0, i) for i in range(4 * 8 * 10)]).reshape(4, 8, 10)
    assert np.abs(np.asarray(finished.image).astype(int) - plain_from_latents(tiny_components, start)).max() <= 1
