"""The speed path: when CUDA graphs are chosen, and that graphed denoising gives the eager image.

The decisions are numbers in, words out (no GPU needed). The graph runner's bookkeeping (static
buffers, one capture per shape and weight state, output copies, giving up cleanly) runs on CPU
through `emulated_capture`, which recomputes into static tensors exactly as a graph replay would.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from generation_support import encode, render, tiny_pipe  # noqa: F401  (encode, tiny_pipe: fixtures)

from picotui.engine.errors import PicoError
from picotui.engine.hardware.memory import GIB, choose_memory_plan
from picotui.engine.hardware.speed import UNetGraphs, choose_speed_path, emulated_capture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PASCAL, TURING, HOPPER = (6, 1), (7, 5), (9, 0)


def speed(capability, free_gib, size=512, total_gib=None, **kw):
    total = (total_gib or free_gib) * GIB
    plan = choose_memory_plan(free_gib * GIB, total, size, size, capability)
    return choose_speed_path(capability, plan, size, size, free_vram_bytes=free_gib * GIB, total_vram_bytes=total,
                             **kw)


def test_modern_gpus_with_room_replay_graphs():
    for capability, free in ((TURING, 7.5), (HOPPER, 79)):
        path = speed(capability, free)
        assert path.name == "cuda-graphs", path
        assert "sm_" in path.reason and path.label == "CUDA graphs"


def test_pascal_and_the_cpu_stay_eager_and_say_why():
    path = speed(PASCAL, 7.5)
    assert path.name == "eager" and "sm_61" in path.reason and "compute-bound" in path.reason
    cpu_plan = choose_memory_plan(None, None, 512, 512, None)
    assert choose_speed_path(None, cpu_plan, 512, 512, setting="cuda-graphs").name == "eager"


def test_offloading_plans_and_a_tight_card_stay_eager():
    # 4 GB Turing card at 512: the memory policy offloads models, and graphs need resident weights
    path = speed(TURING, 3.9, total_gib=4)
    assert path.name == "eager" and "resident" in path.reason
    # everything fits on the GPU, but not a second copy of the UNet's working memory for the graph pool
    path = speed(TURING, 4.6, size=512, total_gib=6)
    assert path.name == "eager" and "spare VRAM" in path.reason


def test_the_user_setting_wins_where_it_can():
    assert speed(HOPPER, 79, setting="eager").reason == "set by you"
    assert speed(PASCAL, 7.5, setting="cuda-graphs").name == "cuda-graphs"
    assert speed(HOPPER, 79, broken="capture failed").name == "eager"
    with pytest.raises(PicoError, match="Unknown speed setting 'turbo'"):
        speed(HOPPER, 79, setting="turbo")


def _image(pipe, encode, graphs=None, state=0, size=64, sampler="DPM++ 2M SDE Karras", cfg=7.0, **kw):
    return render(pipe, encode, sampler=sampler, steps=4, cfg=cfg, width=size, height=size, seed=5, graphs=graphs,
                  graph_state=state, **kw)


@pytest.mark.parametrize("sampler,cfg", [("DPM++ 2M SDE Karras", 7.0), ("PLMS", 1.0), ("Heun", 4.0)])
def test_graphed_denoising_gives_the_eager_image(tiny_pipe, encode, sampler, cfg):
    eager = _image(tiny_pipe, encode, sampler=sampler, cfg=cfg)
    graphs = UNetGraphs(backend=emulated_capture)
    first = _image(tiny_pipe, encode, graphs, sampler=sampler, cfg=cfg)
    second = _image(tiny_pipe, encode, graphs, sampler=sampler, cfg=cfg)  # replays the captured graph
    np.testing.assert_array_equal(first, eager)
    np.testing.assert_array_equal(second, eager)
    assert graphs.captures == 1 and graphs.replays >= 8
    assert "forward" not in vars(tiny_pipe.unet), "the eager forward is restored after the job"


def test_a_new_size_or_weight_state_captures_again_and_old_ones_are_bounded(tiny_pipe, encode):
    graphs = UNetGraphs(backend=emulated_capture, max_graphs=2)
    _image(tiny_pipe, encode, graphs, size=64)
    _image(tiny_pipe, encode, graphs, size=80)
    _image(tiny_pipe, encode, graphs, size=64)
    assert graphs.captures == 2  # 64 was still kept
    _image(tiny_pipe, encode, graphs, size=96)  # a third shape evicts the least recently used (80)
    _image(tiny_pipe, encode, graphs, size=80)
    assert graphs.captures == 4
    _image(tiny_pipe, encode, graphs, size=80, state=1)  # e.g. a LoRA weight changed: graphs bake scales in
    assert graphs.captures == 5


def test_a_failing_capture_falls_back_to_eager_with_the_same_image(tiny_pipe, encode):
    def no_graphs(fn, pool=None):
        raise RuntimeError("CUDA graphs are not supported on this device")

    notices = []
    eager = _image(tiny_pipe, encode)
    graphs = UNetGraphs(backend=no_graphs)
    image = _image(tiny_pipe, encode, graphs, on_notice=notices.append)
    np.testing.assert_array_equal(image, eager)
    assert graphs.broken and "not supported" in graphs.broken
    assert len(notices) == 1 and notices[0].startswith("CUDA graphs turned off")
    _image(tiny_pipe, encode, graphs, on_notice=notices.append)
    assert len(notices) == 1, "said once, then eager quietly"


def test_a_replay_that_disagrees_with_eager_is_not_trusted(tiny_pipe, encode):
    def wrong_replay(fn, pool=None):
        replay, output, reference = emulated_capture(fn, pool)
        return (lambda: output.copy_(torch.zeros_like(output))), output, reference

    eager = _image(tiny_pipe, encode)
    graphs = UNetGraphs(backend=wrong_replay)
    np.testing.assert_array_equal(_image(tiny_pipe, encode, graphs), eager)
    assert graphs.broken == "replay did not match eager output"


def test_a_graph_that_ignores_new_inputs_is_caught_on_the_first_new_step(tiny_pipe, encode):
    """Issue 11.6: replaying the capture's own inputs agrees with eager even when the graph baked them in;
    the first replay of a new step (new latents and timestep) must be checked too."""
    def frozen(fn, pool=None):  # the capture's output, whatever the inputs are now
        _replay, output, reference = emulated_capture(fn, pool)
        return (lambda: output), output, reference

    eager = _image(tiny_pipe, encode)
    graphs = UNetGraphs(backend=frozen)
    np.testing.assert_array_equal(_image(tiny_pipe, encode, graphs), eager)
    assert graphs.broken == "replay of a new step did not match eager output"


def test_a_non_finite_eager_reference_does_not_blame_the_graph(tiny_pipe, encode):
    def nan_reference(fn, pool=None):  # eager's own output was NaN at the capture (an fp16 overflow, say)
        replay, output, reference = emulated_capture(fn, pool)
        return replay, output, reference * float("nan")

    eager = _image(tiny_pipe, encode)
    graphs = UNetGraphs(backend=nan_reference)
    np.testing.assert_array_equal(_image(tiny_pipe, encode, graphs), eager)
    assert graphs.broken is None and graphs.captures == 1


def test_out_of_memory_during_capture_is_raised_for_the_memory_plan(tiny_pipe, encode):
    def full(fn, pool=None):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

    graphs = UNetGraphs(backend=full)
    with pytest.raises(PicoError, match="Out of GPU memory"):  # generate's OutOfMemory, as for any step
        _image(tiny_pipe, encode, graphs)
    assert graphs.broken is None, "graphs stay allowed: the next try has a leaner plan"
