"""Device and precision choice, and the low-VRAM policy.

The policy is a pure function of numbers (free/total VRAM, image size, compute capability), so its
decisions are tested on CPU; `apply_plan` is the only part that touches a pipeline.

The estimates come from measurements of full-size SD1.5 in fp16 with SDPA (DESIGN.md): weights take
~2.0 GiB (UNet 1.60, text encoder 0.23, VAE 0.16); at 512x512 the peak *reserved* memory is 3.19 GiB and
at 768x768 4.58 GiB, i.e. ~1.2 GiB of working memory per 512x512 of pixels, growing linearly with the
pixel count (SDPA's memory-efficient kernel keeps attention linear). The peak is the VAE decode of the
full image; the UNet's share is smaller. Reserved (not allocated) memory is what runs out, so that is
what is estimated. Constants are in one place so a benchmark can retune them.

A job with a second pass (issue 13) touches more than one size: the plan is chosen for the biggest of them
(`JobSize`): hires fix denoises and decodes at the hires target, img2img and a model-upscaled hires pass run
the VAE *encoder* too (at the source's own size for "Just resize (latent upscale)"), and a model upscaler
(ESRGAN-family, run in tiles) needs its weights and one tile's working memory. VAE tiling covers the encoder
as well (diffusers' tiled_encode), so under a tiling plan the encode costs one tile too.

Order of measures, cheapest first (each only when the previous plan does not fit):
  1. everything on the GPU (fastest);
  2. text encoder off the GPU while denoising (costs nothing per image: prompts are cached);
  3. + VAE tiling, when the image is larger than one VAE tile (decode memory stops growing with size;
     tiles are blended, so the image can differ very slightly from an untiled decode);
  4. model offload: UNet, VAE, text encoder take turns on the GPU (~0.2-0.5 s per image on PCIe,
     small next to a Pascal card's 20-40 s image);
  5. sequential offload: weights stream to the GPU layer by layer (several times slower; last resort);
  6. + attention slicing, only if even that does not fit (slicing costs ~40% speed and saves nothing
     while memory is not short).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace

from picotui.engine.errors import PicoError

log = logging.getLogger("picotui.memory")

GIB = 1024**3

# fp16 weights of full-size SD1.5 (parameters x 2 bytes).
UNET_WEIGHTS = 1.60 * GIB
TEXT_ENCODER_WEIGHTS = 0.23 * GIB
VAE_WEIGHTS = 0.16 * GIB
# Working memory (reserved) per 512x512 pixels of image, batch 2 for classifier-free guidance.
UNET_WORK_512 = 0.45 * GIB
VAE_WORK_512 = 1.20 * GIB
VAE_TILE_PIXELS = 512 * 512  # SD1.5 VAE tile (its config's sample_size)
LARGEST_LAYER = 0.10 * GIB  # what sequential offload keeps resident at once, roughly
# The VAE encoder per 512x512 of pixels: the decoder's full-resolution blocks without its upsampling convs
# (a 256-channel conv at full size) and with a narrower mid block: about 60% of the decoder's working memory.
# An estimate from the architecture, not a measurement yet (benchmarks/bench.py's img2img row checks it).
VAE_ENCODE_WORK_512 = 0.70 * GIB
# A model upscaler (ESRGAN/RRDBNet ~17M parameters; SwinIR, DAT, HAT up to ~40M) in fp16, and the working
# memory of one tile: run in tiles, its peak does not grow with the picture.
UPSCALER_WEIGHTS = 0.10 * GIB
UPSCALER_TILE_WORK = 0.50 * GIB
# What a plan may use of the VRAM free to us: the CUDA context, other programs (a desktop on the
# same card) and allocator fragmentation need room, and a 4 GB card must not live on the edge.
CONTEXT_RESERVE = 0.35 * GIB
USABLE_FRACTION = 0.80

MODES = ("full-gpu", "text-encoder-offload", "vae-tiling", "model-offload", "sequential-offload",
         "attention-slicing", "cpu")


@dataclass(frozen=True)
class MemoryPlan:
    mode: str  # the strongest measure in use (one of MODES)
    vae_tiling: bool = False
    text_encoder_offload: bool = False
    model_offload: bool = False
    sequential_offload: bool = False
    attention_slicing: bool = False
    reason: str = ""
    estimate_bytes: int = 0  # estimated peak reserved VRAM under this plan

    @property
    def label(self) -> str:
        """Short text for the status line, e.g. "model offload + VAE tiling"."""
        parts = [self.mode.replace("-", " ")]
        if self.vae_tiling and self.mode != "vae-tiling":
            parts.append("VAE tiling")
        return " + ".join(parts)


def _pixels(width: int, height: int) -> float:
    return width * height / (512 * 512)


@dataclass(frozen=True)
class JobSize:
    """The sizes one job touches, for the memory plan: the biggest picture denoised and decoded (a hires
    target), the biggest VAE encode (an img2img source, a model-upscaled hires picture) and whether a model
    upscaler runs."""

    width: int
    height: int
    encode: tuple[int, int] | None = None
    upscaler: bool = False

    def largest(self) -> tuple[int, int]:
        """The biggest picture the VAE sees (decode or encode): what decides whether tiling changes anything."""
        if self.encode and self.encode[0] * self.encode[1] > self.width * self.height:
            return self.encode
        return self.width, self.height


def estimate_peak(width: int, height: int, *, text_encoder_offload=False, vae_tiling=False,
                  model_offload=False, sequential_offload=False, attention_slicing=False,
                  encode: tuple[int, int] | None = None, upscaler: bool = False) -> float:
    """Estimated peak reserved VRAM (bytes) of one image under the given measures; `encode`: the size of the
    biggest VAE encode of the job (img2img, hires with a model upscaler), `upscaler`: a model upscaler runs."""
    scale = _pixels(width, height)
    unet_work = UNET_WORK_512 * scale
    if attention_slicing:
        unet_work *= 0.6
    vae_work = VAE_WORK_512 * scale
    if vae_tiling and width * height > VAE_TILE_PIXELS:
        vae_work = VAE_WORK_512  # one tile at a time
    if encode:
        encode_work = VAE_ENCODE_WORK_512 * _pixels(*encode)
        if vae_tiling and encode[0] * encode[1] > VAE_TILE_PIXELS:
            encode_work = VAE_ENCODE_WORK_512
        vae_work = max(vae_work, encode_work)
    # An upscaler model stays loaded for the next picture (upscaling.Upscalers keeps it): resident throughout,
    # its tile's working memory only while it runs.
    upscaler_weights = UPSCALER_WEIGHTS if upscaler else 0.0
    upscale_work = UPSCALER_TILE_WORK if upscaler else 0.0
    if sequential_offload:
        return LARGEST_LAYER + upscaler_weights + max(unet_work, vae_work, upscale_work)
    if model_offload:  # one model resident at a time
        return upscaler_weights + max(UNET_WEIGHTS + unet_work, VAE_WEIGHTS + vae_work,
                                      TEXT_ENCODER_WEIGHTS + 0.05 * GIB, upscale_work)
    weights = UNET_WEIGHTS + VAE_WEIGHTS + (0 if text_encoder_offload else TEXT_ENCODER_WEIGHTS)
    return weights + upscaler_weights + max(unet_work, vae_work, upscale_work)


def _candidates(width: int, height: int) -> list[MemoryPlan]:
    big = width * height > VAE_TILE_PIXELS  # tiling changes nothing for one tile or less
    plans = [
        MemoryPlan("full-gpu", reason="everything fits on the GPU"),
        MemoryPlan("text-encoder-offload", text_encoder_offload=True,
                   reason="text encoder moved off the GPU while denoising"),
    ]
    if big:
        plans.append(MemoryPlan("vae-tiling", vae_tiling=True, text_encoder_offload=True,
                                reason="VAE decodes in tiles; text encoder off the GPU"))
    plans.append(MemoryPlan("model-offload", model_offload=True, text_encoder_offload=True,
                            reason="models take turns on the GPU"))
    if big:
        plans.append(MemoryPlan("model-offload", model_offload=True, text_encoder_offload=True,
                                vae_tiling=True, reason="models take turns on the GPU; VAE decodes in tiles"))
    plans.append(MemoryPlan("sequential-offload", sequential_offload=True, text_encoder_offload=True,
                            vae_tiling=big, reason="weights stream to the GPU layer by layer (slow)"))
    plans.append(MemoryPlan("attention-slicing", sequential_offload=True, text_encoder_offload=True,
                            vae_tiling=big, attention_slicing=True,
                            reason="weights stream layer by layer and attention runs in slices (very slow)"))
    return plans


def _fields(plan: MemoryPlan) -> dict:
    return dict(text_encoder_offload=plan.text_encoder_offload, vae_tiling=plan.vae_tiling,
                model_offload=plan.model_offload, sequential_offload=plan.sequential_offload,
                attention_slicing=plan.attention_slicing)


def usable_vram(free_vram_bytes: float, total_vram_bytes: float) -> float:
    """How much of the free VRAM a plan may fill."""
    free = min(free_vram_bytes, total_vram_bytes)
    return max(0.0, (free - CONTEXT_RESERVE) * USABLE_FRACTION)


def choose_memory_plan(free_vram_bytes: float | None, total_vram_bytes: float | None, width: int, height: int,
                       capability: tuple[int, int] | None, *, override: str | None = None,
                       at_least: str | None = None, encode: tuple[int, int] | None = None,
                       upscaler: bool = False) -> MemoryPlan:
    """The cheapest plan whose estimated peak fits the VRAM free to picotui.

    `free_vram_bytes` must count memory our own loaded pipeline holds as free (it is ours to use);
    None (or capability None) means no GPU: the CPU plan. `override` forces a mode by name (from the
    config / PICOTUI_MEMORY_MODE); `at_least` skips plans weaker than that mode (after an out-of-memory
    error the next job steps up). `width` x `height` is the biggest picture denoised and decoded; `encode`
    and `upscaler` as in estimate_peak (a JobSize's fields).
    """
    if capability is None or free_vram_bytes is None or total_vram_bytes is None:
        return MemoryPlan("cpu", reason="no GPU: running on the CPU")
    budget = usable_vram(free_vram_bytes, total_vram_bytes)
    size = JobSize(width, height, encode, upscaler)
    candidates = _candidates(*size.largest())
    extra = dict(encode=encode, upscaler=upscaler)
    gib = f"{budget / GIB:.1f} GiB usable of {free_vram_bytes / GIB:.1f} GiB free"
    if override and override not in ("auto", ""):
        matching = [p for p in candidates if p.mode == override]
        if not matching:
            raise PicoError(f"Unknown memory mode {override!r}: use auto or one of "
                            f"{', '.join(m for m in MODES if m != 'cpu')}.", kind="config")
        plan = matching[-1] if override == "model-offload" and len(matching) > 1 else matching[0]
        est = estimate_peak(width, height, **_fields(plan), **extra)
        return replace(plan, reason=f"set by you ({gib}, needs ~{est / GIB:.1f} GiB)", estimate_bytes=int(est))
    if at_least in MODES:  # by the canonical order: vae-tiling does not exist at 512², the step still counts
        candidates = [p for p in candidates if MODES.index(p.mode) >= MODES.index(at_least)]
    for plan in candidates:
        est = estimate_peak(width, height, **_fields(plan), **extra)
        if est <= budget:
            return replace(plan, reason=f"{plan.reason} (~{est / GIB:.1f} GiB needed, {gib})",
                           estimate_bytes=int(est))
    plan = candidates[-1]  # nothing fits by the estimate: the leanest plan still has a chance
    est = estimate_peak(width, height, **_fields(plan), **extra)
    return replace(plan, reason=f"{plan.reason}; even this may not fit ({gib})", estimate_bytes=int(est))


def next_mode(plan: MemoryPlan, width: int | None = None, height: int | None = None) -> str | None:
    """The mode one step leaner than `plan` (what the next job uses after an out-of-memory error).

    With the size that failed, modes that do not exist at that size are skipped (VAE tiling changes
    nothing for one tile), so the mode named is the one that runs."""
    order = [m for m in MODES if m != "cpu"]
    if width and height and width * height <= VAE_TILE_PIXELS:
        order.remove("vae-tiling")
    if plan.mode not in order or plan.mode == order[-1]:
        return None
    return order[order.index(plan.mode) + 1]


# ---- after an out-of-memory error -----------------------------------------------------------------

def out_of_memory_message(width: int, height: int) -> str:
    return f"Out of GPU memory at {width}x{height}: try a smaller size, or close other programs using the GPU."


def free_memory() -> None:
    """Give back what a failed job held: Python garbage first (it owns CUDA tensors), then the CUDA cache."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        try:
            torch.cuda.empty_cache()
        except RuntimeError:  # a CUDA error state: nothing more to free here, the next job will say so
            log.debug("empty_cache failed", exc_info=True)


def clear_frames(exc: BaseException) -> None:
    """Drop the local variables of the finished frames in `exc`'s traceback (and its causes): a tensor kept
    alive by a traceback is memory that gc.collect() cannot give back."""
    import traceback

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__



# ---- device ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceChoice:
    device: object  # torch.device
    dtype: object  # torch.dtype
    name: str  # for the status line: "cuda:0 NVIDIA GeForce GTX 1060 6GB" or "cpu"
    capability: tuple[int, int] | None
    notice: str | None = None  # say this to the user (CPU fallback)


CPU_NOTICE = "no GPU found: running on CPU in fp32, this will be slow"


def choose_device(requested: str = "auto") -> DeviceChoice:
    """cuda when available (fp16), else CPU in fp32 with a notice. `requested`: auto, cpu, cuda, cuda:N.

    An explicit cuda request on a machine without one is an error rather than a silent crawl on the CPU.
    """
    import torch

    requested = (requested or "auto").strip().lower()
    if requested == "cpu":
        return DeviceChoice(torch.device("cpu"), torch.float32, "cpu", None)
    if requested != "auto" and not re.fullmatch(r"cuda(:\d+)?", requested):
        raise PicoError(f"Unknown device {requested!r}: use auto, cuda, cuda:N or cpu.", kind="config")
    if not torch.cuda.is_available():
        if requested != "auto":
            raise PicoError(f"Device {requested} was asked for but no CUDA GPU is available: check the NVIDIA "
                            f"driver, or use --device auto or cpu.", kind="config")
        return DeviceChoice(torch.device("cpu"), torch.float32, "cpu", None, CPU_NOTICE)
    index = int(requested.partition(":")[2] or torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        raise PicoError(f"There is no GPU {requested}: this machine has {torch.cuda.device_count()}; "
                        f"use --device cuda:0 or auto.", kind="config")
    capability = torch.cuda.get_device_capability(index)
    name = torch.cuda.get_device_name(index)
    refusal = unsupported_card(capability, torch.cuda.get_arch_list(), name, torch.__version__)
    if refusal:
        raise PicoError(refusal, kind="config")
    return DeviceChoice(torch.device("cuda", index), torch.float16, f"cuda:{index} {name}", capability)


# The README's Pascal install: PyTorch's CUDA 12.6 builds are the last with sm_50/sm_6x kernels.
LEGACY_CUDA_INDEX = "https://download.pytorch.org/whl/cu126"


def unsupported_card(capability: tuple[int, int], arch_list: list[str], name: str, torch_version: str) -> str | None:
    """Why this torch build cannot run kernels on this card (one line, with the fix), or None when it can.

    A build runs a card when it ships kernels for the same major architecture at or below the card's minor
    (sm_60 kernels run on sm_61), or PTX (compute_XY) at or below the card, which the driver compiles. PyPI's
    default CUDA 13 build starts at Turing, so on a GTX 10xx the first kernel would fail with "no kernel
    image is available", far from the cause."""
    if not arch_list:  # a build that does not say: let the first kernel speak
        return None
    major, minor = capability
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        if not digits.isdigit() or len(digits) < 2:
            continue
        a_major, a_minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and a_major == major and a_minor <= minor:
            return None
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return None
    sm = f"sm_{major}{minor}"
    built = ", ".join(a for a in arch_list if a.startswith("sm_")) or ", ".join(arch_list)
    if (major, minor) < (5, 0):
        return (f"{name} ({sm}) is older than any current PyTorch build supports (this one has {built}): "
                f"picotui needs a GTX 9xx (sm_50) or newer, or use --device cpu.")
    version = torch_version.split("+")[0]
    return (f"This PyTorch build ({torch_version}, kernels for {built}) cannot run on {name} ({sm}): install "
            f"the CUDA 12.6 build, pip install \"torch=={version}+cu126\" --extra-index-url {LEGACY_CUDA_INDEX} "
            f"(README, Install), or use --device cpu.")


def use_device(choice: DeviceChoice) -> None:
    """Make the chosen card the thread's current CUDA device (call in the worker thread): streams, CUDA graph
    capture, torch.cuda.mem_get_info() and the memory statistics all follow the current device, so on
    --device cuda:1 they would otherwise use or measure card 0."""
    if getattr(choice.device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.set_device(choice.device)


def vram_info(device) -> tuple[int, int, int] | None:
    """(free for picotui, total, used by picotui) in bytes, honouring a per-process memory cap.

    Free counts what our own allocator already reserved (our pipeline may use it again). With
    `torch.cuda.set_per_process_memory_fraction` set (the 4 GiB benchmark), total and free shrink to it.
    """
    import torch

    if getattr(device, "type", "cpu") != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    ours = torch.cuda.memory_reserved(device)
    fraction = 1.0
    try:
        fraction = float(torch.cuda.get_per_process_memory_fraction(device))
    except (AttributeError, RuntimeError):  # older torch: no getter, assume no cap
        pass
    cap = int(total * fraction)
    available = min(free + ours, cap)
    return available, cap, ours


def memory_mode_setting() -> str | None:
    """A user override of the policy (PICOTUI_MEMORY_MODE), e.g. "model-offload"; None = automatic."""
    value = os.environ.get("PICOTUI_MEMORY_MODE", "").strip()
    return value or None


# ---- applying a plan -------------------------------------------------------------------------------

def same_layout(pipe, plan: MemoryPlan) -> bool:
    """Whether the pipeline is already laid out as `plan` asks (then applying it costs nothing)."""
    current: MemoryPlan | None = getattr(pipe, "_picotui_plan", None)
    return current is not None and not getattr(pipe, "_picotui_stale", False) and _fields(current) == _fields(plan)


def layout_changed(pipe) -> None:
    """A component was swapped in (a VAE): the next `apply_plan` lays the whole pipeline out again, so the
    newcomer gets the plan's placement, offload hooks and tiling like the rest."""
    pipe._picotui_stale = True


def release_component(module) -> None:
    """Take a component out of an offloaded pipeline: its accelerate hooks come off and its weights come back
    from where the hooks keep them (sequential offload leaves parameters on "meta"), on the CPU."""
    if hasattr(module, "_hf_hook") or any(hasattr(m, "_hf_hook") for m in module.modules()):
        from accelerate.hooks import remove_hook_from_module

        remove_hook_from_module(module, recurse=True)
    module.to("cpu")


def sliced_attention_helps() -> bool:
    """Whether attention slicing saves memory here. It replaces SDPA with a processor that materialises
    N x N attention scores per slice: more memory than SDPA's memory-efficient kernels at 768² and above.
    Only a torch without SDPA (before 2.0) is better off sliced."""
    import torch.nn.functional as F

    return not hasattr(F, "scaled_dot_product_attention")


def apply_plan(pipe, plan: MemoryPlan, device) -> None:
    """Put the pipeline in the shape `plan` asks for. Idempotent: an unchanged plan costs nothing.

    Never via everything on the card: into an offload mode the weights go through the CPU (diffusers'
    enable_*_offload start from there), out of one the placement below moves each model once."""
    current: MemoryPlan | None = getattr(pipe, "_picotui_plan", None)
    if same_layout(pipe, plan):
        return
    stale = getattr(pipe, "_picotui_stale", False)
    offload = plan.model_offload or plan.sequential_offload
    was_offloaded = current is not None and (current.model_offload or current.sequential_offload)
    if was_offloaded and (stale or not offload or current.model_offload != plan.model_offload):
        pipe.remove_all_hooks()  # accelerate puts the weights back where they were: the CPU
        current = None
    if plan.sequential_offload and not (current and current.sequential_offload):
        pipe.enable_sequential_cpu_offload(device=device)
    elif plan.model_offload and not (current and current.model_offload):
        pipe.enable_model_cpu_offload(device=device)
    elif not offload:
        # The text encoder lives on the CPU between prompts when offloaded (generate moves it for encoding).
        target = "cpu" if plan.text_encoder_offload else device
        pipe.text_encoder.to(target)
        pipe.unet.to(device)
        pipe.vae.to(device)
    if plan.vae_tiling:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()
    sliced = plan.attention_slicing and sliced_attention_helps()
    if sliced:
        pipe.enable_attention_slicing()
    elif getattr(pipe, "_picotui_sliced", False):
        pipe.disable_attention_slicing()
    pipe._picotui_sliced = sliced
    pipe._picotui_plan = plan
    pipe._picotui_stale = False
    log.info("memory plan: %s (%s)", plan.label, plan.reason)
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.empty_cache()  # give back what the previous layout reserved
