"""Few-step LoRAs: recognised by their header's description, else by their file name, or marked by the user (kept in
the state folder); each says the settings it needs. The TCD sampler is diffusers' own TCDScheduler pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from generation_support import encode, plain_pipeline, render, tiny_pipe  # noqa: F401  (fixtures)

from picotui.engine.models.few_step import FewStepMarks, job_profile, profile_from_text, recognise
from picotui.engine.request import GenerationRequest, LoraSpec
from picotui.engine.sampling.samplers import SAMPLER_NAMES

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("name, kind, steps, cfg", [
    ("lcm-lora-sdv1-5", "LCM-LoRA", (4, 8), (1.0, 2.0)),  # the name latent-consistency's card suggests
    ("LCM_LoRA_Weights_SD15", "LCM-LoRA", (4, 8), (1.0, 2.0)),  # civitai's upload
    ("TCD-SD15-LoRA", "TCD", (4, 8), (1.0, 1.0)),  # h1t/TCD-SD15
    ("Hyper-SD15-8steps-lora", "Hyper-SD", (8, 8), (1.0, 1.0)),  # ByteDance/Hyper-SD
    ("Hyper-SD15-4steps-lora", "Hyper-SD", (4, 4), (1.0, 1.0)),
    ("Hyper-SD15-8steps-CFG-lora", "Hyper-SD", (8, 8), (5.0, 8.0)),
    ("pcm_sd15_smallcfg_4step_converted", "PCM", (4, 4), (1.0, 2.0)),  # wangfuyun/PCM_Weights
])
def test_names_of_the_distillations_users_download(name, kind, steps, cfg):
    found = profile_from_text(name, "name")
    assert (found.kind, found.steps, found.cfg) == (kind, steps, cfg)
    assert found.sampler in SAMPLER_NAMES
    assert found.steps[0] <= found.best_steps <= found.steps[1]


@pytest.mark.parametrize("name", ["add_detail", "blcmaster_style", "tcdrive_car", "hypersonic", "epiCRealism"])
def test_ordinary_loras_are_not_few_step(name):
    assert profile_from_text(name, "name") is None


def write_lora(path, metadata=None):
    import torch
    from safetensors.torch import save_file

    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32)}, str(path),
              metadata=metadata)
    return path


def test_header_metadata_wins_over_a_renamed_file(tmp_path):
    # kohya writes ss_output_name; a user renames the download to something meaningless
    lora = write_lora(tmp_path / "my_fav_3.safetensors", {"ss_output_name": "lcm-lora-sdv1-5"})
    found = recognise(lora)
    assert (found.kind, found.source) == ("LCM-LoRA", "metadata")
    titled = write_lora(tmp_path / "x.safetensors", {"modelspec.title": "Hyper-SD 1.5 4 steps"})
    assert recognise(titled).kind == "Hyper-SD"
    assert recognise(write_lora(tmp_path / "plain.safetensors", {"ss_output_name": "plain"})) is None
    assert recognise(write_lora(tmp_path / "TCD-SD15-LoRA.safetensors")).source == "name"


def test_marks_persist_in_the_state_folder_and_override_names(tmp_path):
    state = tmp_path / "state"
    marks = FewStepMarks(state)
    assert marks.profile("style.safetensors") is None
    assert marks.toggle("style.safetensors").kind == "few-step"  # marked by the user
    assert marks.toggle("lcm-lora-sdv1-5.safetensors") is None  # unmarked although its name says LCM
    again = FewStepMarks(state)  # a new session reads the file
    assert again.profile("style.safetensors").source == "marked"
    assert again.profile("lcm-lora-sdv1-5.safetensors") is None
    request = GenerationRequest(loras=(LoraSpec("other"), LoraSpec("TCD-SD15-LoRA")))
    assert job_profile(request.loras, again)[0] == "TCD-SD15-LoRA"


def test_unreadable_marks_say_so_in_one_line(tmp_path):
    (tmp_path / "few-step-loras.json").write_text("{not json")
    marks = FewStepMarks(tmp_path)
    assert marks.problem and "\n" not in marks.problem and "mark them again" in marks.problem
    assert marks.profile("lcm-lora") is not None  # names still tell


def test_tcd_is_diffusers_own_tcd_pipeline(tiny_components, tiny_pipe, encode):
    # diffusers' TCD docs: TCDScheduler.from_config(pipe.scheduler.config), eta (gamma) 0.3, few steps, low CFG
    import torch
    from diffusers import TCDScheduler

    prompt, negative = "a corgi on a wooden floor", "blurry"
    ours = render(tiny_pipe, encode, prompt, negative, sampler="TCD", steps=4, cfg=1.5, seed=9)
    pipe = plain_pipeline(*tiny_components)
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    reference = np.asarray(pipe(prompt, negative_prompt=negative, num_inference_steps=4, guidance_scale=1.5,
                                eta=0.3, width=64, height=64,
                                generator=torch.Generator("cpu").manual_seed(9)).images[0])
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1
    assert reference.std() > 5
    # gamma 0.3 draws fresh noise: a deterministic (eta 0) run differs, so the eta really reaches the scheduler
    pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
    deterministic = np.asarray(pipe(prompt, negative_prompt=negative, num_inference_steps=4, guidance_scale=1.5,
                                    eta=0.0, width=64, height=64,
                                    generator=torch.Generator("cpu").manual_seed(9)).images[0])
    assert np.abs(ours.astype(int) - deterministic.astype(int)).max() > 1


def test_the_done_line_says_what_a_few_step_lora_would_cost():
    from PIL import Image

    from picotui.engine.events import Finished
    from picotui.engine.models.few_step import faster_setting
    from picotui.ui.engine_link import done_cost

    lcm = profile_from_text("lcm-lora-sdv1-5", "name")
    available = {"lcm-lora-sdv1-5.safetensors": lcm, "Hyper-SD15-8steps-lora.safetensors":
                 profile_from_text("Hyper-SD15-8steps-lora", "name")}
    request = GenerationRequest(steps=24, cfg=7.0, seed=1)
    timings = {"denoise": 24.0, "decode": 1.0, "total": 26.0}
    # 24 s for 48 evaluations is 0.5 s each; LCM-LoRA: 6 steps at CFG 1, one evaluation a step -> 3 s + 1 s decode
    assert faster_setting(request, timings, 48, available) == "6 steps with LCM-LoRA: about 4.0 s"
    assert faster_setting(request, timings, 48, {}) is None
    fitting = GenerationRequest(steps=6, cfg=1.0, sampler=lcm.sampler, loras=(LoraSpec("lcm-lora-sdv1-5"),))
    assert faster_setting(fitting, {"denoise": 3.0, "decode": 1.0}, 6, available) is None  # already fast
    in_job = GenerationRequest(steps=24, cfg=7.0, loras=(LoraSpec("Hyper-SD15-8steps-lora.safetensors"),))
    assert faster_setting(in_job, timings, 48, available) == "8 steps with Hyper-SD: about 5.0 s"  # the one in use
    event = Finished(1, Image.new("RGB", (8, 8)), None, request, "", timings, unet_evaluations=48)
    assert done_cost(event, available) == " · 1.00 s/step, 48 UNet evals · faster: 6 steps with LCM-LoRA: about 4.0 s"
