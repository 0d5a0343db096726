"""GPU smoke test: the paths only a CUDA card exercises, end to end through the real worker, on the demo model
(tiny SD1.5 architecture, random weights: seconds per image on any card). Skipped without CUDA.

Run it on your own GPU box after installing (README, "Checking your GPU"):

    pip install ".[test]" && python -m pytest -q tests/test_gpu_smoke.py
    PICOTUI_SMOKE_DEVICE=cuda:1 python -m pytest -q tests/test_gpu_smoke.py   # another card

What it checks (issue 11.10): every sampler with CUDA graphs on and off gives the same image within fp16
noise; every memory mode under a 4 GiB cap, with a VAE switch and back; an out-of-memory retry at 1024x1024
under a 3 GiB cap; a LoRA replaced in place (new graphs, the new weights' image). Under 5 minutes.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from paths_support import make_paths
from worker_support import Events, run

from picotui.engine.events import EngineStatus, Failed, Finished, Notice
from picotui.engine.request import GenerationRequest, LoraSpec

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

DEVICE = os.environ.get("PICOTUI_SMOKE_DEVICE", "cuda")
GIB = 1024**3
VAE, LORA = "smoke-vae.safetensors", "smokeStyle.safetensors"


@pytest.fixture(scope="module")
def gpu_paths(tmp_path_factory):
    from picotui.engine.models.demo import build_tiny_components
    from picotui.engine.models.ldm_layout import write_ldm_vae
    from picotui.engine.models.synthetic import write_kohya_lora

    root = tmp_path_factory.mktemp("gpu-smoke")
    paths = make_paths(root)
    unet, _vae, text_encoder = build_tiny_components(seed=0)  # the demo model's architecture
    write_ldm_vae(paths.models / "vae" / VAE, build_tiny_components(seed=1)[1])
    write_kohya_lora(paths.models / "loras" / LORA, unet, text_encoder, seed=1)
    write_kohya_lora(root / "other-lora.safetensors", unet, text_encoder, seed=2)  # same size, other weights
    return paths


@pytest.fixture(scope="module")
def gpu(gpu_paths):
    from picotui.engine.jobs.worker import Worker

    events = Events()
    w = Worker(gpu_paths, events, device=DEVICE).start()
    w.events = events
    events.wait(lambda items: any(isinstance(e, (EngineStatus, Failed)) and e.job_id == 0 for e in items), 300)
    assert not events.of(Failed), [e.message for e in events.of(Failed)]
    yield w
    w.shutdown()


@pytest.fixture(autouse=True)
def fresh_settings(gpu):
    engine = gpu._engine
    yield
    engine.memory_mode, engine.speed_setting, engine.min_mode = None, "auto", None


@contextmanager
def capped(gib: float):
    """The card as if it had `gib` GiB (torch's per-process cap), for this block."""
    card = torch.device(DEVICE)
    total = torch.cuda.get_device_properties(card).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, gib * GIB / total), card)
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, card)


def request(**kw):
    base = dict(prompt="a corgi on a wooden floor", negative_prompt="blurry", checkpoint="demo", sampler="Euler",
                steps=6, width=256, height=256, seed=1)
    return GenerationRequest(**{**base, **kw})


def image(w, **kw):
    job = run(w, request(**kw), timeout=300)
    failed = w.events.of(Failed, job)
    assert not failed, failed[0].message
    (done,) = w.events.of(Finished, job)
    return np.asarray(done.image).astype(int)


def assert_close(a, b, what):
    """Equal within fp16 noise: the same kernels on the same inputs, only scheduling order may differ."""
    diff = np.abs(a - b)
    assert diff.mean() <= 2.0 and (diff > 24).mean() <= 0.01, f"{what}: mean {diff.mean():.2f}, max {diff.max()}"


def test_every_sampler_gives_the_same_image_with_cuda_graphs_and_eager(gpu):
    from picotui.engine.sampling.samplers import SAMPLER_NAMES

    engine = gpu._engine
    engine.memory_mode = "full-gpu"  # graphs need resident weights, whatever the card's size
    for sampler in SAMPLER_NAMES:
        engine.speed_setting = "cuda-graphs"
        graphed = image(gpu, sampler=sampler)
        assert engine.speed.name == "cuda-graphs" and engine.graphs.broken is None, (sampler, engine.graphs.broken)
        engine.speed_setting = "eager"
        eager = image(gpu, sampler=sampler)
        assert engine.speed.name == "eager"
        assert_close(graphed, eager, sampler)
    assert engine.graphs.captures >= 1 and engine.graphs.replays > 0


def test_every_memory_mode_under_a_4_gib_cap_with_a_vae_switch_and_back(gpu):
    """768x768, so VAE tiling exists as a mode; images are compared among modes that tile alike (tiles are
    blended, so a tiled decode may differ slightly from an untiled one)."""
    from picotui.engine.hardware.memory import MODES

    engine = gpu._engine
    reference = {}
    with capped(4):
        for mode in [m for m in MODES if m != "cpu"]:
            engine.memory_mode = mode
            for vae in (None, VAE, None):
                picture = image(gpu, vae=vae, width=768, height=768, seed=2)
                assert engine.plan.mode == mode
                key = (vae or "own", engine.plan.vae_tiling)
                if key in reference:
                    assert_close(picture, reference[key], f"{mode}, VAE {key}")
                reference.setdefault(key, picture)
    assert np.abs(reference[("own", False)] - reference[(VAE, False)]).mean() > 1, "the VAE switch changed nothing"


def test_a_lora_replaced_in_place_gets_new_graphs_and_its_own_image(gpu, gpu_paths):
    engine = gpu._engine
    engine.memory_mode, engine.speed_setting = "full-gpu", "cuda-graphs"
    path = gpu_paths.models / "loras" / LORA
    original = path.read_bytes()
    other = gpu_paths.models.parent / "other-lora.safetensors"
    try:
        image(gpu, loras=(LoraSpec(LORA.removesuffix(".safetensors"), 1.0),), seed=3)
        captures = engine.graphs.captures
        shutil.copyfile(other, path)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime, whatever the clock
        replaced = image(gpu, loras=(LoraSpec(LORA.removesuffix(".safetensors"), 1.0),), seed=3)
        assert engine.graphs.captures > captures, "the replaced LoRA replayed the old weights' graphs"
        shutil.copyfile(other, gpu_paths.models / "loras" / "freshName.safetensors")
        engine.speed_setting = "eager"
        fresh = image(gpu, loras=(LoraSpec("freshName", 1.0),), seed=3)
        assert_close(replaced, fresh, "LoRA replaced in place vs the same file loaded fresh")
    finally:
        path.write_bytes(original)


def test_out_of_memory_at_1024_under_a_3_gib_cap_is_retried_leaner(gpu):
    """Everything but a sliver of the 3 GiB is taken by ballast (counted by the policy as picotui's own, so it
    plans full-gpu); the 1024x1024 decode runs out, and the retry with a leaner plan finishes the image."""
    card = torch.device(DEVICE)
    engine = gpu._engine
    image(gpu, width=512, height=512, seed=4)  # loaded, and the allocator warm
    with capped(3):
        torch.cuda.empty_cache()
        room = int(3 * GIB - torch.cuda.memory_reserved(card) - 96 * 1024**2)
        ballast = torch.empty(max(room, 0), dtype=torch.uint8, device=card)
        try:
            job = run(gpu, request(width=1024, height=1024, seed=5), timeout=300)
        finally:
            del ballast
            torch.cuda.empty_cache()
    retries = [n.message for n in gpu.events.of(Notice, job) if "trying again" in n.message]
    failed = gpu.events.of(Failed, job)
    assert retries, "no out-of-memory happened: the ballast left too much room (nothing was tested)"
    assert not failed, f"{failed[0].kind}: {failed[0].message} after {retries}"
    assert gpu.events.of(Finished, job) and engine.min_mode is not None
