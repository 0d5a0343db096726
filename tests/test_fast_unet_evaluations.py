"""What a setting costs, counted through the public job path (JobRunner.run_job), so the rule holds whichever
denoising loop is in place: the test hooks the loaded UNet itself and counts latents through it.

* CFG above 1: the prompt and the negative prompt, 2 evaluations a step (one batched call).
* CFG 1: the negative prompt changes nothing (uncond + (cond - uncond) * 1 = cond), so 1 a step.
* A1111's NGMS (modules/sd_samplers_cfg_denoiser.py): on odd steps (`self.step % 2`) whose sigma is below NGMS,
  the negative prompt's pass is skipped. With NGMS above SD1.5's sigma_max (14.61) every odd step skips.
"""

from __future__ import annotations

import itertools

import pytest
from conftest import TINY_CHECKPOINT
from paths_support import make_paths

from picotui.engine.events import Finished
from picotui.engine.jobs.runner import JobRunner
from picotui.engine.request import GenerationRequest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STEPS = 4


class Counted:
    """A JobRunner on the tiny checkpoint; `job` returns (latents through the UNet, the Finished event)."""

    def __init__(self, models_root, base):
        self.events = []
        self.runner = JobRunner(make_paths(base, models=models_root), "cpu", False, None, self.events.append)
        self.ids = itertools.count(1)

    def job(self, **kw):
        job_id = next(self.ids)
        request = GenerationRequest(prompt="a corgi", negative_prompt="blurry", checkpoint=TINY_CHECKPOINT,
                                    width=64, height=64, seed=3, **{"sampler": "Euler", "steps": STEPS, **kw})
        rows = []
        pipe = self.runner.manager.pipe
        if pipe is None:  # the first job loads the pipeline: load it first so the hook sits on the UNet in use
            self.runner.run_job(job_id, request, lambda: False)
            job_id, pipe = next(self.ids), self.runner.manager.pipe
        handle = pipe.unet.register_forward_pre_hook(
            lambda module, args, kwargs: rows.append((args[0] if args else kwargs["sample"]).shape[0]),
            with_kwargs=True)
        try:
            self.runner.run_job(job_id, request, lambda: False)
        finally:
            handle.remove()
        finished = [e for e in self.events if isinstance(e, Finished) and e.job_id == job_id]
        assert len(finished) == 1 and finished[0].path is not None
        return sum(rows), finished[0]


@pytest.fixture(scope="module")
def counted(models_root, tmp_path_factory):
    return Counted(models_root, tmp_path_factory.mktemp("counted"))


def test_cfg_above_one_evaluates_prompt_and_negative(counted):
    evaluations, finished = counted.job(cfg=7.0)
    assert evaluations == 2 * STEPS
    assert finished.unet_evaluations == evaluations  # what the status line and F3 report


def test_cfg_one_runs_one_unet_pass_per_step(counted):
    evaluations, finished = counted.job(cfg=1.0)
    assert evaluations == STEPS
    assert finished.unet_evaluations == evaluations


def test_heun_costs_two_model_calls_per_step_but_the_last(counted):
    # Heun: a second-order correction each step except the last (k-diffusion sample_heun; diffusers 2N-1 timesteps)
    evaluations, _ = counted.job(sampler="Heun", cfg=1.0)
    assert evaluations == 2 * STEPS - 1


def test_ngms_below_every_sigma_changes_nothing(counted):
    evaluations, _ = counted.job(cfg=7.0, ngms=0.01)  # below SD1.5's sigma_min (0.029): never skips
    assert evaluations == 2 * STEPS


def test_ngms_above_sigma_max_skips_the_negative_pass_on_odd_steps(counted):
    evaluations, _ = counted.job(cfg=7.0, ngms=15.0)
    assert evaluations == 2 * STEPS - STEPS // 2  # steps 1, 3 (0-based) run the prompt alone
