"""The speed path: replay the UNet from captured CUDA graphs where that pays, plain eager elsewhere.

Why CUDA graphs: on a modern GPU one SD1.5 UNet call at 512x512 is launch-bound, not compute-bound
(DESIGN.md, H100: 27.5 ms eager, 10.5 ms replayed from a graph, same output within fp16 noise), while
torch.compile needs a minute of compiling per shape for less gain. A graph replays the very kernels
eager mode launched, so the maths and the image stay the same.

Where it does not pay, eager it is:
* Pascal and older (compute capability < 7.0): the step is compute-bound (fp16 maths runs at fp32
  speed or worse), so a graph saves nothing and its memory pool costs VRAM a 4 GB card lacks;
* memory plans that move weights during a step (model/sequential offload, attention slicing): a graph
  needs every weight resident at a fixed address;
* too little free VRAM for one more UNet's working memory (the graph's private pool).

The choice is a pure function of numbers, tested on CPU. `UNetGraphs` does the capturing; its capture
backend is a parameter so the CPU tests drive the same bookkeeping (static buffers, keys, output copies,
fallback) through an exact emulation of replay.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from picotui.engine.errors import PicoError, is_out_of_memory, one_line
from picotui.engine.hardware.memory import GIB, UNET_WORK_512, MemoryPlan, usable_vram

log = logging.getLogger("picotui.speed")

SPEED_SETTINGS = ("auto", "eager", "cuda-graphs")
GRAPHS_MIN_CAPABILITY = (7, 0)
MAX_GRAPHS = 3  # captured shapes kept at once (each holds a UNet's working memory)
# Replay must reproduce eager: outputs are compared at the capture and on the first replay of a new step;
# beyond this (relative to the output's scale) the graph is distrusted and eager is used for the session.
REPLAY_TOLERANCE = 1e-2


@dataclass(frozen=True)
class SpeedPath:
    name: str  # "cuda-graphs" | "eager"
    reason: str

    @property
    def label(self) -> str:
        return "CUDA graphs" if self.name == "cuda-graphs" else "eager"


def check_speed_setting(setting: str | None) -> str:
    value = (setting or "auto").strip().lower()
    if value not in SPEED_SETTINGS:
        raise PicoError(f"Unknown speed setting {setting!r}: use {', '.join(SPEED_SETTINGS)}.", kind="config")
    return value


def graph_pool_bytes(width: int, height: int) -> float:
    """Extra VRAM a captured UNet holds: one call's working memory (batch 2 for CFG)."""
    return UNET_WORK_512 * width * height / (512 * 512)


def choose_speed_path(capability: tuple[int, int] | None, plan: MemoryPlan, width: int, height: int, *,
                      free_vram_bytes: float | None = None, total_vram_bytes: float | None = None,
                      setting: str | None = "auto", broken: str | None = None) -> SpeedPath:
    """CUDA graphs or eager, with the reason in words. `broken`: why graphs failed earlier this session."""
    setting = check_speed_setting(setting)
    if capability is None:
        return SpeedPath("eager", "CPU: no GPU in use")
    if setting == "eager":
        return SpeedPath("eager", "set by you")
    if broken:
        return SpeedPath("eager", f"CUDA graphs turned off this session: {broken}")
    if plan.model_offload or plan.sequential_offload or plan.attention_slicing:
        return SpeedPath("eager", f"memory mode {plan.label} moves weights during a step; graphs need them resident")
    sm = f"sm_{capability[0]}{capability[1]}"
    if setting == "cuda-graphs":
        return SpeedPath("cuda-graphs", f"set by you ({sm})")
    if tuple(capability) < GRAPHS_MIN_CAPABILITY:
        return SpeedPath("eager", f"{sm} is compute-bound in fp16: graphs would save no time and cost VRAM")
    if free_vram_bytes is not None and total_vram_bytes is not None:
        spare = usable_vram(free_vram_bytes, total_vram_bytes) - plan.estimate_bytes
        if spare < graph_pool_bytes(width, height):
            return SpeedPath("eager", f"too little spare VRAM for a CUDA graph ({max(spare, 0) / GIB:.1f} GiB)")
    return SpeedPath("cuda-graphs", f"{sm}: the UNet replays from CUDA graphs (launch-bound steps)")


# ---- capture backends ------------------------------------------------------------------------------

def cuda_capture(fn: Callable, pool=None):
    """(replay, static_output, eager_output) for `fn` on the current CUDA device.

    Warm-up runs on a side stream first, as PyTorch's docs require (lazy init, cuBLAS workspaces,
    autotuning must not happen inside the capture); the last warm-up's output is the eager reference.
    """
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            reference = fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        static_output = fn()
    return graph.replay, static_output, reference.clone()


def emulated_capture(fn: Callable, pool=None):
    """Replay semantics without a GPU: every replay recomputes into the same static output tensor from
    the same static inputs, exactly what a graph does. For tests on CPU."""
    static_output = fn()
    return (lambda: static_output.copy_(fn())), static_output, static_output.clone()


def new_pool(backend: Callable):
    if backend is cuda_capture:
        import torch

        return torch.cuda.graph_pool_handle()
    return None


# ---- the runner --------------------------------------------------------------------------------

class _Captured:
    def __init__(self, replay, output, sample, timestep, context):
        self.replay, self.output = replay, output
        self.sample, self.timestep, self.context = sample, timestep, context
        # A replay of the capture's own inputs can agree with eager while new inputs are ignored (an input
        # baked in as a constant): the first replay of a new step is checked against eager too.
        self.verified = False


class UNetGraphs:
    """Captured UNet calls keyed by input shapes + model state; LRU-bounded. One per loaded pipeline.

    `state` (from the caller) must change whenever the UNet's weights or their scales change: a graph
    bakes in pointers and scalars (e.g. a LoRA's weight), so a changed LoRA needs a new capture.
    """

    def __init__(self, backend: Callable = cuda_capture, max_graphs: int = MAX_GRAPHS):
        self.backend = backend
        self.max_graphs = max_graphs
        self._graphs: OrderedDict = OrderedDict()
        self._state = None
        self._pool = None
        self.broken: str | None = None  # set when a capture failed or replay disagreed with eager
        self.captures = 0
        self.replays = 0

    def clear(self) -> None:
        self._graphs.clear()
        self._pool = None

    @contextmanager
    def active(self, unet, state, on_notice: Callable[[str], None] = lambda message: None):
        """Within this block, calls of `unet` with known shapes replay graphs; anything else runs eagerly."""
        if state != self._state:
            self.clear()
            self._state = state
        eager = unet.forward

        def forward(sample, timestep, encoder_hidden_states, *args, **kwargs):
            if self.broken is None and not args and _plain_call(kwargs):
                result = self._run(eager, sample, timestep, encoder_hidden_states, on_notice)
                if result is not None:
                    return (result,) if kwargs.get("return_dict") is False else _unet_output(result)
            return eager(sample, timestep, encoder_hidden_states, *args, **kwargs)

        unet.forward = forward  # an instance attribute shadows the class's forward for nn.Module.__call__
        try:
            yield self
        finally:
            del unet.forward

    def _run(self, eager, sample, timestep, context, on_notice):
        import torch

        if not torch.is_tensor(timestep):
            timestep = torch.tensor(timestep, device=sample.device)
        key = (tuple(sample.shape), sample.dtype, tuple(timestep.shape), timestep.dtype, tuple(context.shape),
               context.dtype, str(sample.device))
        captured = self._graphs.get(key)
        new_step = captured is not None
        if captured is None:
            try:
                captured = self._capture(eager, sample, timestep, context)
            except Exception as exc:  # graphs are an optimisation: say so once, continue eagerly
                if is_out_of_memory(exc):  # but out of memory is the memory plan's business, as anywhere
                    self.clear()
                    raise
                return self._give_up(f"capture failed ({one_line(exc, 120)})", on_notice)
            if captured is None:
                return self._give_up("replay did not match eager output", on_notice)
            self._graphs[key] = captured
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        captured.sample.copy_(sample)
        captured.timestep.copy_(timestep)
        captured.context.copy_(context)
        captured.replay()
        self.replays += 1
        # A copy: the static output is overwritten by the next replay, and some samplers keep outputs.
        output = captured.output.clone()
        if new_step and not captured.verified:
            reference = eager(sample, timestep, context, return_dict=False)[0]
            verdict = replay_matches(output, reference)
            if verdict is None:  # eager itself is not finite here: no verdict on the graph, eager's answer
                return reference
            if not verdict:
                return self._give_up("replay of a new step did not match eager output", on_notice)
            captured.verified = True
        return output

    def _capture(self, eager, sample, timestep, context) -> _Captured | None:
        import torch

        static = (sample.clone(), timestep.clone(), context.clone())

        def call():
            return eager(static[0], static[1], static[2], return_dict=False)[0]

        if self._pool is None:
            self._pool = new_pool(self.backend)
        with torch.no_grad():
            replay, output, reference = self.backend(call, self._pool)
            replay()
        self.captures += 1
        if replay_matches(output, reference) is False:  # a non-finite eager reference is no verdict
            return None
        log.info("captured a UNet graph for %s (%d kept)", tuple(sample.shape), len(self._graphs) + 1)
        return _Captured(replay, output, *static)

    def _give_up(self, why: str, on_notice) -> None:
        log.warning("CUDA graphs off for this session: %s", why)
        self.broken = why
        self.clear()
        on_notice(f"CUDA graphs turned off ({why}); running eager, images are the same, only slower.")
        return None


def replay_matches(output, reference) -> bool | None:
    """Whether a replayed output reproduces eager's; None when eager's own output is not finite (NaN/inf
    from the model, not from the graph: nothing to judge the replay by)."""
    import torch

    if not torch.isfinite(reference).all():
        return None
    scale = float(reference.float().abs().max()) or 1.0
    error = float((output.float() - reference.float()).abs().max())
    if not error <= REPLAY_TOLERANCE * scale:  # a NaN in the replay fails too
        log.warning("graph replay differs from eager by %.3g (scale %.3g)", error, scale)
        return False
    return True


def _plain_call(kwargs: dict) -> bool:
    """Only SD1.5's plain call is captured; anything extra (ControlNet residuals, ...) runs eagerly."""
    allowed_none = ("timestep_cond", "cross_attention_kwargs", "added_cond_kwargs", "class_labels",
                    "attention_mask", "encoder_attention_mask", "down_block_additional_residuals",
                    "mid_block_additional_residual", "down_intrablock_additional_residuals")
    return all(kwargs.get(name) is None for name in allowed_none) and set(kwargs) <= {*allowed_none, "return_dict"}


def _unet_output(sample):
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    return UNet2DConditionOutput(sample=sample)
