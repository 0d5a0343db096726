"""One image: prompt embeddings -> A1111's sampling -> our VAE decode -> A1111's 8-bit picture.

The k-diffusion samplers run picotui's k-diffusion-equivalent loop (ksamplers.py over denoiser.py's CFG
denoiser, schedules.py's sigmas), A1111's timestep samplers (DDIM, PLMS, UniPC) diffusers' own
`StableDiffusionPipeline.__call__` with our prompt embeddings and starting noise. img2img (and the hires pass)
runs the same samplers from init latents (A1111's sample_img2img; the step rule and the latent upscale are in
img2img.py, the VAE encode in encode.py). We decode ourselves to catch the fp16 VAE's NaN/black failure and
retry in fp32, and convert to 8 bits as A1111 does.

Runs in the worker thread; torch is imported inside functions.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from picotui.engine.errors import JobCancelled, OutOfMemory, PicoError, is_out_of_memory
from picotui.engine.hardware.memory import out_of_memory_message
from picotui.engine.sampling.preview import latents_to_preview

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


class CpuNoise:
    """A1111's "CPU" noise stream for one image: torch's CPU generator seeded with the seed; the first draw is
    the starting noise, later draws feed the ancestral samplers. Used when the caller passes no ImageNoise."""

    def __init__(self, shape, seed: int, device=None):
        import torch

        self.shape, self.device = tuple(shape), device
        self.generator = torch.Generator("cpu").manual_seed(int(seed))

    def first(self):
        return self.next()

    def next(self):
        import torch

        return torch.randn(self.shape, generator=self.generator).to(self.device or "cpu")


def denoise(pipe, cond, uncond, *, sampler: str, steps: int, cfg: float, width: int, height: int, seed: int,
            schedule: str = "Automatic", noise=None, ngms: float = 0.0,
            on_step: StepFn | None = None, is_cancelled: Callable[[], bool] = lambda: False,
            preview: bool = True, graphs=None, graph_state=None,
            on_notice: Callable[[str], None] = lambda message: None,
            init_latents=None, denoising_strength: float = 0.75, fixed_steps: bool = False):
    """Latents for one image, sampled as A1111 samples it.

    `noise` is the image's noise stream (sampling.noise.ImageNoise: `first()` the starting noise, `next()`
    each later draw); without one, A1111's CPU source seeded with `seed`. k-diffusion samplers run
    ksamplers.py with A1111's schedule for `schedule`; the SDE samplers' Brownian tree is seeded with `seed`.
    DDIM, PLMS and UniPC run diffusers' loop with the same starting noise. Cancellation is checked after every
    model evaluation and raises JobCancelled. With `graphs` (a speed.UNetGraphs), UNet calls replay captured
    CUDA graphs; `graph_state` names the weights' state.

    img2img (A1111's sample_img2img): with `init_latents` ([1, 4, h, w], scaled; the noise stream must have
    their shape) the run starts from them noised to the level `denoising_strength` picks. The schedule and the
    steps run follow img2img.img2img_steps (`fixed_steps`: the hires pass's rule); t_enc + 1 steps run and
    step reports count those (their total is img2img.img2img_steps_run). k-diffusion samplers take the last
    t_enc + 2 sigmas of the full schedule, start from init + first noise * sigma, draw ancestral noise from the
    same stream and build the SDE Brownian tree over the full schedule, as A1111 does; the timestep samplers
    run diffusers' img2img (StableDiffusionImg2ImgPipeline on the same components) over the same last t_enc + 1
    timesteps, its add_noise applied to our first noise. A schedule of 0 steps (fixed rule at strength 0)
    returns `init_latents` unchanged with no step reports.
    """
    from contextlib import nullcontext

    import torch

    from picotui.engine.errors import RequestError
    from picotui.engine.sampling.samplers import SAMPLER_NAMES, SAMPLERS, split_sampler_name

    name, combined = split_sampler_name(sampler)
    if combined and schedule == "Automatic":  # an old combined name, e.g. "DPM++ 2M Karras"
        schedule = combined
    spec = SAMPLERS.get(name)
    if spec is None:
        raise RequestError(f"Unknown sampler {sampler!r}: choose one of {', '.join(SAMPLER_NAMES)}.")
    device = pipe._execution_device
    shape = (1, pipe.unet.config.in_channels, height // 8, width // 8)
    plan = None
    if init_latents is not None:
        from picotui.engine.sampling.img2img import img2img_steps, img2img_steps_run

        shape = tuple(init_latents.shape)
        noise_shape = tuple(getattr(noise, "shape", shape))[-3:]
        if noise is not None and noise_shape != shape[-3:]:
            raise ValueError(f"The noise stream's shape {noise_shape} is not the init latents' {shape[-3:]}: "
                             "make the noise at the latent size being denoised.")
        schedule_steps, _ = img2img_steps(steps, denoising_strength, fixed=fixed_steps)
        run = img2img_steps_run(steps, denoising_strength, fixed=fixed_steps)
        if run == 0:  # nothing to denoise: A1111's samplers loop over an empty schedule
            return init_latents.to(device, torch.float32)
        plan = _Img2Img(init_latents.to(device, torch.float32), schedule_steps, run)
        steps = run  # what the step reports count
    noise = noise if noise is not None else CpuNoise(shape, seed, device)
    start = time.perf_counter()
    last = [0]

    def report(step: int, latents) -> None:
        if is_cancelled():
            raise JobCancelled()
        step = min(steps, max(1, step))
        if on_step is not None and step > last[0]:
            last[0] = step
            elapsed = max(time.perf_counter() - start, 1e-9)
            it_per_s = step / elapsed
            # `preview` may be a callable latents -> image (the TAESD preview, models/taesd.py)
            image = (preview if callable(preview) else latents_to_preview)(latents) if preview else None
            on_step(StepReport(step, steps, it_per_s, (steps - step) / it_per_s, image))

    if is_cancelled():
        raise JobCancelled()
    fast = graphs.active(pipe.unet, graph_state, on_notice) if graphs is not None else nullcontext()
    try:
        with torch.no_grad(), fast:
            if spec.timestep:
                latents = _diffusers_loop(pipe, cond, uncond, spec.name, steps, cfg, width, height, noise, report,
                                          seed, plan)
            else:
                latents = _k_loop(pipe, cond, uncond, spec.name, schedule, steps, cfg, seed, noise, report,
                                  is_cancelled, device, ngms, plan)
    except JobCancelled:
        _drop_hooks_state(pipe)
        raise
    except Exception as exc:
        if is_out_of_memory(exc):
            _drop_hooks_state(pipe)
            raise OutOfMemory(out_of_memory_message(width, height)) from None
        raise
    if not torch.isfinite(latents).all():
        raise PicoError("The model produced NaN values while denoising: try another sampler or checkpoint "
                        "(fp16 on this GPU may be the cause; --device cpu avoids it).", kind="nan")
    return latents


def model_sigmas(pipe, lcm: bool = False):
    """The checkpoint's noise levels as A1111 computes them (LCM: its 50 distilled timesteps)."""
    from picotui.engine.sampling.schedules import LCMSigmas, ModelSigmas, ldm_alphas_cumprod

    config = base_scheduler_config(pipe)
    if config.get("beta_schedule", "scaled_linear") == "scaled_linear":
        alphas = ldm_alphas_cumprod(config.get("beta_start", 0.00085), config.get("beta_end", 0.012),
                                    config.get("num_train_timesteps", 1000))
    else:  # not an SD1.5 schedule: take the scheduler's own
        alphas = pipe.scheduler.alphas_cumprod.float()
    return (LCMSigmas if lcm else ModelSigmas)(alphas)


@dataclass(frozen=True)
class _Img2Img:
    init: object  # the init latents, float32 on the device
    schedule_steps: int  # the schedule's length in steps (img2img_steps)
    run: int  # the steps that run: the schedule's last ones


def _k_loop(pipe, cond, uncond, sampler, schedule, steps, cfg, seed, noise, report, is_cancelled, device, ngms,
            img2img=None):
    import torch

    from picotui.engine.sampling.denoiser import BrownianNoise, CFGDenoiser
    from picotui.engine.sampling.ksamplers import KSAMPLERS, Draws
    from picotui.engine.sampling.schedules import sigmas_for

    ks = KSAMPLERS[sampler]
    levels = model_sigmas(pipe, ks.lcm)
    length = img2img.schedule_steps if img2img is not None else steps
    sigmas = sigmas_for(schedule, length, levels, automatic=ks.automatic,
                        discard_next_to_last=ks.discard_next_to_last).to(device)

    def check():
        if is_cancelled():
            raise JobCancelled()

    model = CFGDenoiser(pipe.unet, levels, cond.to(device), uncond.to(device), cfg, ngms=ngms, after_call=check)
    if img2img is None:
        x = noise.first().to(device, torch.float32) * sigmas[0]
        run_sigmas = sigmas
    else:  # A1111's sigma_sched: the schedule's last `run` steps, from the init latents noised to their start
        run_sigmas = sigmas[len(sigmas) - 1 - img2img.run:]
        x = img2img.init + noise.first().to(device, torch.float32) * run_sigmas[0]
    # the tree spans the full schedule (A1111 builds it from `sigmas`, not the img2img slice)
    brownian = BrownianNoise(x, sigmas, [seed]) if ks.brownian else None
    draws = Draws(ancestral=lambda: noise.next().to(device, torch.float32),
                  brownian=brownian or (lambda s, s_next: None),
                  # the preview shows the denoised estimate, as A1111's live preview does
                  step=lambda i, latents, denoised: report(i + 1, denoised))
    return ks.run(model, x, run_sigmas, draws)


def _diffusers_loop(pipe, cond, uncond, sampler, steps, cfg, width, height, noise, report, seed, img2img=None):
    """DDIM, PLMS, UniPC, TCD: diffusers' own pipeline loop and scheduler, from our starting noise (img2img:
    diffusers' img2img pipeline over the schedule's last `img2img.run` timesteps)."""
    import torch

    from picotui.engine.sampling.samplers import STEP_ETA, make_scheduler

    pipe.scheduler = make_scheduler(sampler, base_scheduler_config(pipe))
    # img2img runs the scheduler's timesteps after the first (schedule - run) * order (diffusers' get_timesteps)
    skipped = 0 if img2img is None else (img2img.schedule_steps - img2img.run) * pipe.scheduler.order

    def callback(p, i, t, kwargs):
        evaluations = max(1, len(p.scheduler.timesteps) - skipped)  # PLMS repeats its first timestep
        report(round((i + 1) * steps / evaluations), kwargs["latents"])
        return kwargs

    first = noise.first().to(pipe._execution_device, torch.float32)
    # A scheduler that adds noise in its steps (TCD) draws it from this generator after the starting noise's
    # draw, in the order diffusers' own pipelines draw them from one generator.
    generator = torch.Generator("cpu").manual_seed(int(seed))
    torch.randn(tuple(first.shape), generator=generator)
    common = dict(prompt_embeds=cond, negative_prompt_embeds=uncond, guidance_scale=cfg,
                  eta=STEP_ETA.get(sampler, 0.0), generator=generator, output_type="latent",
                  callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"], return_dict=True)
    if img2img is None:
        return pipe(num_inference_steps=steps, width=width, height=height, latents=first.to(pipe.unet.dtype),
                    **common).images
    runner = _img2img_pipeline(pipe, first)
    # diffusers runs the last int(n * strength) timesteps: half a step over `run` makes the float product exact
    strength = min(1.0, (img2img.run + 0.5) / img2img.schedule_steps)
    return runner(image=img2img.init.to(pipe.unet.dtype), strength=strength,
                  num_inference_steps=img2img.schedule_steps, **common).images


def _img2img_pipeline(pipe, noise):
    """diffusers' StableDiffusionImg2ImgPipeline on `pipe`'s components, noising the init latents with our
    `noise` (the image's noise stream's first draw) where diffusers would draw from its generator.

    Built directly, not with from_pipe, which casts every component to float32."""
    from diffusers import StableDiffusionImg2ImgPipeline

    runner = StableDiffusionImg2ImgPipeline(
        vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, unet=pipe.unet,
        scheduler=pipe.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    runner.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {"disable": True}))

    def prepare_latents(image, timestep, batch_size, num_images_per_prompt, dtype, device, generator=None):
        init = image.to(device=device, dtype=dtype)
        return runner.scheduler.add_noise(init, noise.to(device=device, dtype=dtype), timestep)

    runner.prepare_latents = prepare_latents
    return runner


def _drop_hooks_state(pipe) -> None:
    """After an interrupted call, offload hooks may leave a model on the GPU; put things back in order."""
    try:
        pipe.maybe_free_model_hooks()
    except Exception:  # best effort: the next call re-establishes the layout anyway
        log.debug("maybe_free_model_hooks failed after cancel", exc_info=True)


def _bad_decode(decoded) -> bool:
    import torch

    return (not torch.isfinite(decoded).all()) or bool(decoded.max() <= -0.999)  # NaN or pure black


def to_8bit(decoded):
    """A1111's picture from the VAE's output: (x + 1) / 2 clamped to [0, 1], times 255, truncated to uint8
    (modules/processing.py; diffusers rounds instead, one level brighter on about half the pixels)."""
    import numpy as np
    import torch
    from PIL import Image

    unit = torch.clamp((decoded[0].float() + 1.0) / 2.0, min=0.0, max=1.0)
    return Image.fromarray((255.0 * np.moveaxis(unit.cpu().numpy(), 0, 2)).astype(np.uint8))


@contextmanager
def vae_guard(pipe, width: int, height: int, what: str):
    """Around a VAE call: out of memory becomes OutOfMemory for this size, and offload hooks are put back in
    order afterwards (a failed call may leave the VAE on the GPU)."""
    try:
        yield
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
            log.debug("maybe_free_model_hooks failed after %s", what, exc_info=True)


def decode(pipe, latents, *, on_notice: Callable[[str], None] = lambda message: None):
    """Latents -> PIL image with the pipeline's VAE; a NaN/black fp16 decode is retried once in fp32."""
    import torch

    from picotui.engine.hardware.precision import fp32_decoding, needs_fp32, remember_fp32

    vae = pipe.vae
    width, height = latents.shape[-1] * 8, latents.shape[-2] * 8
    with vae_guard(pipe, width, height, "decode"), torch.no_grad():
        fp16 = vae.dtype == torch.float16
        decoded = None if fp16 and needs_fp32(vae) else vae.decode(latents / vae.config.scaling_factor,
                                                                    return_dict=False)[0]
        if fp16 and (decoded is None or _bad_decode(decoded)):
            if decoded is not None:  # said once per VAE; later images go straight to fp32
                log.warning("fp16 VAE decode gave NaN/black; retrying in fp32")
                on_notice(NAN_RETRY_NOTICE)
                remember_fp32(vae)
            with fp32_decoding(vae, latents):
                decoded = vae.decode(latents.float() / vae.config.scaling_factor, return_dict=False)[0]
        if not torch.isfinite(decoded).all():
            raise PicoError("The VAE produced NaN values even in fp32: pick another VAE (e.g. vae-ft-mse) "
                            "or the checkpoint's own.", kind="nan")
        return to_8bit(decoded)
