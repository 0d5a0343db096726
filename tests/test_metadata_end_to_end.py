"""A real job (JobRunner, tiny SD1.5 checkpoint in the civitai layout, a VAE, a kohya LoRA, an embedding) writes
the A1111 "parameters" text A1111 would write, with hashes anyone can recompute from the files, and reads back
as the same request."""

from __future__ import annotations

import threading

import pytest
from conftest import EMBEDDING, KOHYA_LORA, TINY_CHECKPOINT, TINY_VAE
from library_support import addnet, sha256
from paths_support import copy_models, make_paths

from picotui import __version__
from picotui.engine.events import Finished, Notice, Step
from picotui.engine.recipes.metadata import parse_parameters, read_recipe, request_from_parameters
from picotui.engine.request import GenerationRequest, LoraSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LORA_STEM = KOHYA_LORA.removesuffix(".safetensors")
EMBEDDING_STEM = EMBEDDING.removesuffix(".safetensors")


@pytest.fixture
def paths(models_root, tmp_path):
    """A private copy of the models tree (files may be deleted) and an empty hash cache."""
    paths = make_paths(tmp_path)
    copy_models(models_root, paths.models)
    return paths


def run_job(paths, request, on_check=lambda events: None):
    from picotui.engine.jobs.runner import JobRunner

    events = []
    runner = JobRunner(paths, "cpu", False, None, events.append)

    def is_cancelled():  # the engine polls this during loading and between steps
        on_check(events)
        return False

    runner.run_job(1, request, is_cancelled)
    (finished,) = [e for e in events if isinstance(e, Finished)]
    return finished, events


REQUEST = GenerationRequest(prompt=f"a corgi in a {EMBEDDING_STEM} style, warm light", negative_prompt="blurry",
                            checkpoint=TINY_CHECKPOINT, vae=TINY_VAE, loras=(LoraSpec(LORA_STEM, 0.7),),
                            sampler="DPM++ SDE Karras", steps=3, cfg=6.5, width=64, height=64, seed=5, clip_skip=2,
                            rng="CPU")


def test_a_job_writes_a1111s_parameters_with_recomputable_hashes_and_reads_back(paths, monkeypatch):
    from picotui.engine.models import hashing

    hashed_by = {}
    real = hashing.sha256_file

    def recording(path, *args):
        hashed_by[path.name] = threading.current_thread().name
        return real(path, *args)

    monkeypatch.setattr(hashing, "sha256_file", recording)
    finished, events = run_job(paths, REQUEST)
    assert finished.path is not None and finished.save_error is None
    ckpt = paths.models / "checkpoints" / TINY_CHECKPOINT
    vae = paths.models / "vae" / TINY_VAE
    lora = paths.models / "loras" / KOHYA_LORA
    embedding = paths.models / "embeddings" / EMBEDDING
    settings = finished.parameters.split("\n")[-1]
    assert settings == (
        f"Steps: 3, Sampler: DPM++ SDE, Schedule type: Karras, CFG scale: 6.5, Seed: 5, Size: 64x64, "
        f"Model hash: {sha256(ckpt)[:10]}, Model: {TINY_CHECKPOINT.removesuffix('.safetensors')}, "
        f"VAE hash: {sha256(vae)[:10]}, VAE: {TINY_VAE}, Clip skip: 2, RNG: CPU, "
        f"Lora hashes: \"{LORA_STEM}: {addnet(lora)[:12]}\", "
        f"TI hashes: \"{EMBEDDING_STEM}: {sha256(embedding)[:12]}\", "
        f"Version: picotui {__version__}")
    assert finished.parameters.startswith(f"{REQUEST.prompt} <lora:{LORA_STEM}:0.7>\nNegative prompt: blurry\n")
    # the checkpoint was hashed in the background while the job loaded and denoised, not at save time
    assert hashed_by[TINY_CHECKPOINT] == "picotui-hashing"
    assert not [e for e in events if isinstance(e, Notice) and "hash" in e.message.lower()]

    from picotui.engine.models.library import Library

    library = Library(paths.models, paths.cache)
    recipe = read_recipe(finished.path, library)  # the picotui chunk: the exact request
    assert recipe.source == "picotui" and recipe.request == finished.request and recipe.unmatched == []
    assert finished.request == REQUEST  # nothing about the request changed on the way

    # A1111's text alone (what civitai and A1111 read) gives the same picture's settings back
    back, notes = request_from_parameters(parse_parameters(finished.parameters))
    assert notes == []
    assert (back.steps, back.sampler, back.schedule_type, back.cfg, back.seed, back.width, back.height,
            back.clip_skip, back.vae) == (3, "DPM++ SDE", "Karras", 6.5, 5, 64, 64, 2, TINY_VAE)
    assert back.prompt == f"{REQUEST.prompt} <lora:{LORA_STEM}:0.7>" and back.negative_prompt == "blurry"
    assert library.resolve(back.checkpoint, "checkpoint").name == TINY_CHECKPOINT


def test_a_model_deleted_mid_job_still_saves_the_image_without_its_hash(paths):
    lora = paths.models / "loras" / KOHYA_LORA

    def delete_lora(events):  # once denoising runs, the LoRA is loaded into the pipeline
        if lora.exists() and any(isinstance(e, Step) for e in events):
            lora.unlink()

    finished, events = run_job(paths, REQUEST, delete_lora)
    assert finished.path is not None and finished.path.is_file() and finished.save_error is None
    assert "Lora hashes" not in finished.parameters
    assert f"Model hash: {sha256(paths.models / 'checkpoints' / TINY_CHECKPOINT)[:10]}" in finished.parameters
    notices = [e for e in events if isinstance(e, Notice) and KOHYA_LORA in e.message]
    assert len(notices) == 1 and notices[0].level == "warning" and "\n" not in notices[0].message
    assert "saved without this hash" in notices[0].message
