"""One image: prompt embeddings -> diffusers' denoising loop -> our VAE decode -> PIL image.

The denoising is diffusers' own `StableDiffusionPipeline.__call__` (given our prompt embeddings, our
scheduler and a CPU generator, `output_type="latent"`), so the maths is exactly diffusers' and a test
can hold the two to equality. We decode ourselves to catch the fp16 VAE's NaN/black failure and retry
in fp32, and we hook `callback_on_step_end` for progress, previews and cancellation.

Runs in the worker thread; torch is imported inside functions.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from picotui.engine.errors import JobCancelled, OutOfMemory, PicoError, is_out_of_memory
from picotui.engine.hardware.memory import out_of_memory_message
from picotui.engine.sampling.preview import latents_to_preview
from picotui.engine.sampling.samplers import STEP_ETA, make_scheduler

log = logging.getLogger("picotui.generate")

# numpy 2 complains about how diffusers' schedulers build arrays from torch tensors; harmless noise.
warnings.filterwarnings("ignore", message=r"__array(_wrap)?__", category=DeprecationWarning)

NAN_RETRY_NOTICE = ("The VAE produced an empty (NaN) image in fp16, a known SD1.5 VAE problem: "
                    "decoded again in fp32. A VAE such as vae-ft-mse avoids it.")


@dataclass(frozen=True)
class StepReport:
    index: int  # 1-based sampler step just finished
    total: int
    it_per_s: float
    eta_s: float
    preview: object  # PIL image or None


StepFn = Callable[[StepReport], None]


class PromptCache:
    """Prompt embeddings by (model state, prompt, negative, clip skip): an unchanged prompt is not re-encoded.

    The key must name everything that changes the text encoder's output: the loaded checkpoint, the
    LoRAs and weights applied to it (kohya LoRAs patch the text encoder) and the embeddings folder.
    """

    def __init__(self, size: int = 16):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key, compute):
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        value = compute()
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()


def encode_prompts(pipe, encoder, prompt: str, negative: str, clip_skip: int, *, text_encoder_offload: bool,
                   device):
    """(cond, uncond) from the PromptEncoder; with text-encoder offload the encoder visits the GPU only
    for this call (model/sequential offload hooks move it themselves)."""
    import torch

    offloaded = getattr(pipe, "_picotui_plan", None)
    hooks = offloaded is not None and (offloaded.model_offload or offloaded.sequential_offload)
    visit = text_encoder_offload and not hooks and getattr(device, "type", "cpu") == "cuda"
    if visit:
        pipe.text_encoder.to(device)
    try:
        with torch.no_grad():
            return encoder.encode(prompt, negative, clip_skip)
    finally:
        if visit:
            pipe.text_encoder.to("cpu")


def base_scheduler_config(pipe) -> dict:
    """The checkpoint's own scheduler config, remembered before the first sampler replaces it (otherwise
    one sampler's overrides, e.g. timestep spacing, would leak into the next)."""
    base = getattr(pipe, "_picotui_base_scheduler", None)
    if base is None:
        base = dict(pipe.scheduler.config)
        pipe._picotui_base_scheduler = base
    return base


def denoise(pipe, cond, uncond, *, sampler: str, steps: int, cfg: float, width: int, height: int, seed: int,
            on_step: StepFn | None = None, is_cancelled: Callable[[], bool] = lambda: False,
            preview: bool = True, graphs=None, graph_state=None,
            on_notice: Callable[[str], None] = lambda message: None):
    """Latents for one image: diffusers' loop with our scheduler and a CPU generator seeded with `seed`.

    Noise comes from a CPU generator, so a seed gives the same picture on any GPU (A1111's "RNG: CPU").
    Cancellation is checked after every model evaluation and raises JobCancelled. With `graphs` (a
    speed.UNetGraphs), UNet calls replay captured CUDA graphs; `graph_state` names the weights' state.
    """
    from contextlib import nullcontext

    import torch

    pipe.scheduler = make_scheduler(sampler, base_scheduler_config(pipe), seed=seed)
    generator = torch.Generator("cpu").manual_seed(int(seed))
    start = time.perf_counter()
    last = [0]

    def callback(p, i, t, kwargs):
        if is_cancelled():
            raise JobCancelled()
        evaluations = max(1, len(p.scheduler.timesteps))
        # Heun/DPM2 run two model calls per step (2N-1 timesteps): report sampler steps, as A1111 does.
        step = min(steps, max(1, round((i + 1) * steps / evaluations)))
        if on_step is not None and step > last[0]:
            last[0] = step
            elapsed = max(time.perf_counter() - start, 1e-9)
            it_per_s = step / elapsed
            # `preview` may be a callable latents -> image (the TAESD preview, models/taesd.py)
            image = (preview if callable(preview) else latents_to_preview)(kwargs["latents"]) if preview else None
            on_step(StepReport(step, steps, it_per_s, (steps - step) / it_per_s, image))
        return kwargs

    if is_cancelled():
        raise JobCancelled()
    fast = graphs.active(pipe.unet, graph_state, on_notice) if graphs is not None else nullcontext()
    try:
        with torch.no_grad(), fast:
            out = pipe(prompt_embeds=cond, negative_prompt_embeds=uncond, num_inference_steps=steps,
                       guidance_scale=cfg, width=width, height=height, generator=generator,
                       eta=STEP_ETA.get(sampler, 0.0),
                       output_type="latent", callback_on_step_end=callback,
                       callback_on_step_end_tensor_inputs=["latents"], return_dict=True)
    except JobCancelled:
        _drop_hooks_state(pipe)
        raise
    except Exception as exc:
        if is_out_of_memory(exc):
            _drop_hooks_state(pipe)
            raise OutOfMemory(out_of_memory_message(width, height)) from None
        raise
    latents = out.images
    if not torch.isfinite(latents).all():
        raise PicoError("The model produced NaN values while denoising: try another sampler or checkpoint "
                        "(fp16 on this GPU may be the cause; --device cpu avoids it).", kind="nan")
    return latents


def _drop_hooks_state(pipe) -> None:
    """After an interrupted call, offload hooks may leave a model on the GPU; put things back in order."""
    try:
        pipe.maybe_free_model_hooks()
    except Exception:  # best effort: the next call re-establishes the layout anyway
        log.debug("maybe_free_model_hooks failed after cancel", exc_info=True)


def _bad_decode(decoded) -> bool:
    import torch

    return (not torch.isfinite(decoded).all()) or bool(decoded.max() <= -0.999)  # NaN or pure black


def decode(pipe, latents, *, on_notice: Callable[[str], None] = lambda message: None):
    """Latents -> PIL image with the pipeline's VAE; a NaN/black fp16 decode is retried once in fp32."""
    import torch

    vae = pipe.vae
    width, height = latents.shape[-1] * 8, latents.shape[-2] * 8
    try:
        with torch.no_grad():
            decoded = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
            if vae.dtype == torch.float16 and _bad_decode(decoded):
                log.warning("fp16 VAE decode gave NaN/black; retrying in fp32")
                on_notice(NAN_RETRY_NOTICE)
                vae.to(torch.float32)
                try:
                    decoded = vae.decode(latents.float() / vae.config.scaling_factor, return_dict=False)[0]
                finally:
                    vae.to(torch.float16)
            if not torch.isfinite(decoded).all():
                raise PicoError("The VAE produced NaN values even in fp32: pick another VAE (e.g. vae-ft-mse) "
                                "or the checkpoint's own.", kind="nan")
            return pipe.image_processor.postprocess(decoded, output_type="pil", do_denormalize=[True])[0]
    except PicoError:
        raise
    except Exception as exc:
        if is_out_of_memory(exc):
            raise OutOfMemory(out_of_memory_message(width, height)) from None
        raise
    finally:
        try:
            pipe.maybe_free_model_hooks()
        except Exception:
            log.debug("maybe_free_model_hooks failed after decode", exc_info=True)
