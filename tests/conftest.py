"""Shared fixtures: tiny SD1.5-architecture models written at test time in the layouts users download.

Nothing here is a stub: the checkpoint is a real LDM single-file .safetensors, the VAE a real LDM VAE
file, the LoRAs real kohya/A1111 and diffusers/peft key layouts, the embedding a real A1111 TI file.
Costly things are session-scoped and built once.
"""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: the whole suite runs with the hub offline, as users do.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch thread: on CI's 2 cores torch's own pool fights the worker, the UI and pytest for them (the
# suite took a quarter longer with the default). Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import textual._wait  # noqa: E402

# Textual's pilot waits after each key press and pause until "the process is idle": its CPU time (every
# thread's) barely advancing over 20 ms, else up to 1 s. While the engine's worker thread computes, the
# process is never idle, so each key press in a test with a running job waited 2 s. What a key press waits
# for is the app's loop (the thread that runs it) having handled it: measure that thread's CPU time.
textual._wait.process_time = time.thread_time

TINY_CHECKPOINT = "tinySD15_v1.safetensors"
TINY_VAE = "tiny-vae-ft-mse.safetensors"
KOHYA_LORA = "tinyStyle_kohya.safetensors"
DIFFUSERS_LORA = "tinyStyle_diffusers.safetensors"
EMBEDDING = "tinyembed.safetensors"
EMBEDDING_VECTORS = 2


@pytest.fixture
def restore_logger():
    """For a test that calls logs.setup_logging: afterwards the "picotui" logger (and "textual_image", which
    graphics.route_library_logs hands its handlers) are as they were, and the log file the test opened is closed."""
    from picotui import logs

    loggers = [logging.getLogger(name) for name in ("picotui", "textual_image")]
    before = [(list(logger.handlers), logger.level, logger.propagate) for logger in loggers]
    handler = logs._handler
    yield
    if logs._handler is not None and logs._handler is not handler:
        logs._handler.close()
    logs._handler = handler
    for logger, (handlers, level, propagate) in zip(loggers, before):
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_components():
    """(unet, vae, text_encoder): the diffusers models the tiny checkpoint was written from (seed 0)."""
    from picotui.engine.models.demo import build_tiny_components

    return build_tiny_components(seed=0)


@pytest.fixture(scope="session")
def models_root(tmp_path_factory, tiny_components) -> Path:
    """A models/ tree as a user fills it from civitai: checkpoints/ vae/ loras/ embeddings/."""
    import torch
    from safetensors.torch import save_file

    from picotui.engine.models.demo import build_tiny_components
    from picotui.engine.models.ldm_layout import write_ldm_checkpoint, write_ldm_vae
    from picotui.engine.models.synthetic import write_diffusers_lora, write_kohya_lora

    root = tmp_path_factory.mktemp("models")
    for sub in ("checkpoints", "vae", "loras", "embeddings"):
        (root / sub).mkdir()
    unet, vae, text_encoder = tiny_components
    write_ldm_checkpoint(root / "checkpoints" / TINY_CHECKPOINT, unet, vae, text_encoder)
    other_vae = build_tiny_components(seed=1)[1]  # same shape, different weights
    write_ldm_vae(root / "vae" / TINY_VAE, other_vae)
    write_kohya_lora(root / "loras" / KOHYA_LORA, unet, text_encoder)
    write_diffusers_lora(root / "loras" / DIFFUSERS_LORA, unet)
    gen = torch.Generator().manual_seed(3)
    hidden = text_encoder.config.hidden_size
    save_file({"emb_params": torch.randn(EMBEDDING_VECTORS, hidden, generator=gen) * 0.02},
              str(root / "embeddings" / EMBEDDING))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(models_root) -> Path:
    """The tiny SD1.5 checkpoint in the LDM single-file layout (inside models_root/checkpoints)."""
    return models_root / "checkpoints" / TINY_CHECKPOINT


@pytest.fixture(scope="session")
def demo_checkpoint(cache_dir) -> Path:
    """The demo model as `--checkpoint demo` creates it: cache_dir/demo/picotui-demo-sd15-tiny.safetensors."""
    from picotui.engine.models.demo import ensure_demo_checkpoint

    return ensure_demo_checkpoint(cache_dir)
