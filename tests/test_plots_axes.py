"""The X/Y/Z axis parser against A1111's documented value syntax (its wiki's examples, and numpy's arange and
linspace, which A1111's scripts/xyz_grid.py calls), its axis rules, and one clear line per malformed input."""

from __future__ import annotations

import random

import numpy as np
import pytest

from picotui.engine.errors import RequestError
from picotui.engine.plots.axes import parse_axis
from picotui.engine.plots.plan import build_plan
from picotui.engine.request import GenerationRequest, LoraSpec


def values(text):
    return list(parse_axis(text).values)


# The A1111 wiki's examples ("Features", X/Y/Z plot): written out by hand, not computed by our code.
@pytest.mark.parametrize("text, expected", [
    ("Steps: 1-5", [1, 2, 3, 4, 5]),
    ("Steps: 1-5 (+2)", [1, 3, 5]),
    ("Steps: 10-5 (-3)", [10, 7]),
    ("Steps: 1-10 [5]", [1, 3, 5, 7, 10]),
    ("CFG scale: 1-3 (+0.5)", [1, 1.5, 2, 2.5, 3]),
    ("CFG scale: 0.0-1.0 [6]", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ("Steps: 10, 20, 30", [10, 20, 30]),
    ("Steps: 1-3, 7, 10-20 (+5)", [1, 2, 3, 7, 10, 15, 20]),
    ("Seed: 5, 10-12", [5, 10, 11, 12]),
    ("Steps:1 - 3", [1, 2, 3]),
])
def test_documented_ranges(text, expected):
    assert values(text) == pytest.approx(expected)


@pytest.mark.parametrize("start, end, step", [(1.0, 2.0, 0.3), (4.0, 12.0, 2.5), (7.5, 1.0, -1.5), (0.5, 0.5, 0.1)])
def test_float_steps_match_numpy_arange_as_a1111_calls_it(start, end, step):
    assert values(f"CFG scale: {start}-{end} ({step:+})") == pytest.approx(np.arange(start, end + step, step).tolist())


@pytest.mark.parametrize("start, end, num", [(4, 12, 5), (1, 2, 4), (3, 3, 1), (12, 4, 3)])
def test_counts_match_numpy_linspace(start, end, num):
    assert values(f"CFG scale: {start}-{end} [{num}]") == pytest.approx(np.linspace(start, end, num).tolist())
    # whole-number axes cut linspace's values toward zero, as A1111's int(x) does
    assert values(f"Steps: {start}-{end} [{num}]") == [int(v) for v in np.linspace(start, end, num).tolist()]


def test_text_axes_keep_csv_quoting_and_case_of_names():
    axis = parse_axis('prompt s/r: corgi, "cat, sitting", fox')
    assert axis.type.label == "Prompt S/R" and list(axis.values) == ["corgi", "cat, sitting", "fox"]
    assert parse_axis("CFG Scale: 7").type.label == parse_axis("cfg scale: 7").type.label == "CFG Scale"
    assert parse_axis("Checkpoint name: a.safetensors").type is parse_axis("Checkpoint: b").type


def a1111_sampler(request) -> tuple[str, str]:
    """(A1111's sampler name, schedule type) of a request, whether the request keeps the schedule in its own
    field or in the sampler's name."""
    from picotui.engine.sampling.samplers import SAMPLERS

    if hasattr(request, "schedule_type"):
        return request.sampler, request.schedule_type
    spec = SAMPLERS[request.sampler]
    return spec.a1111_name or spec.name, spec.schedule_type


def test_sampler_names_map_to_picotui_samplers():
    base = GenerationRequest(steps=2, seed=1)
    plan = build_plan(base, "Sampler: Euler a, dpm++ 2m karras")
    assert plan.cells[0].request.sampler == "Euler a"
    assert a1111_sampler(plan.cells[1].request) == ("DPM++ 2M", "Karras")
    # A1111 >= 1.9 names the schedule separately: the Schedule type axis sets it
    plan = build_plan(GenerationRequest(sampler="DPM++ 2M", seed=1), "Schedule type: Uniform, Karras")
    assert [a1111_sampler(c.request) for c in plan.cells] == [("DPM++ 2M", "Uniform"), ("DPM++ 2M", "Karras")]


def test_prompt_search_replace_first_value_is_the_search():
    base = GenerationRequest(prompt="a corgi on a sofa", negative_prompt="ugly corgi", seed=3)
    plan = build_plan(base, "Prompt S/R: corgi, cat, fox")
    assert [c.request.prompt for c in plan.cells] == ["a corgi on a sofa", "a cat on a sofa", "a fox on a sofa"]
    assert plan.cells[2].request.negative_prompt == "ugly fox"
    assert plan.axes[0].captions() == ["corgi", "cat", "fox"]


def test_minus_one_seeds_are_fixed_once_across_the_grid_unless_kept():
    axis = parse_axis("Seed: -1, 5, -1", rng=random.Random(0))
    expected = random.Random(0)
    assert list(axis.values) == [expected.randint(0, 2**32 - 1), 5, expected.randint(0, 2**32 - 1)]
    assert axis.fixed_seeds
    plan = build_plan(GenerationRequest(), axis, "Steps: 1, 2")
    assert plan.cells[0].request.seed == plan.cells[3].request.seed == axis.values[0]
    kept = build_plan(GenerationRequest(seed=9), "Seed: -1, 4", keep_random=True)
    assert [c.request.seed for c in kept.cells] == [None, 4]


def test_random_base_seed_is_one_seed_for_the_whole_grid():
    plan = build_plan(GenerationRequest(seed=None), "Steps: 1, 2", "CFG scale: 3, 4")
    assert len({c.request.seed for c in plan.cells}) == 1 and plan.cells[0].request.seed is not None


def test_lora_weight_per_lora_and_size():
    base = GenerationRequest(loras=(LoraSpec("styleA", 0.8), LoraSpec("styleB", 0.5)), seed=1)
    plan = build_plan(base, "LoRA weight (styleB): 0-1 [3]", "Size: 64x64, 64x128")
    assert [c.request.loras for c in plan.cells[:3]] == [
        (LoraSpec("styleA", 0.8), LoraSpec("styleB", w)) for w in (0.0, 0.5, 1.0)]
    assert (plan.cells[3].request.width, plan.cells[3].request.height) == (64, 128)
    one = build_plan(GenerationRequest(loras=(LoraSpec("styleA", 0.8),), seed=1), "LoRA weight: 0.2, 0.4")
    assert [c.request.loras[0].weight for c in one.cells] == [0.2, 0.4]


def test_geometry_index_and_checkpoint_outermost():
    plan = build_plan(GenerationRequest(seed=1), "Steps: 1, 2, 3", "CFG scale: 4, 5")
    assert plan.shape == (3, 2, 1) and plan.count == 6 and plan.total_steps == 12
    assert [(c.ix, c.iy) for c in plan.cells] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert plan.order == (0, 1, 2, 3, 4, 5)
    plan = build_plan(GenerationRequest(seed=1), "Checkpoint: a, b", "Steps: 1, 2")
    assert [plan.cells[i].request.checkpoint for i in plan.order] == ["a", "a", "b", "b"]
    assert plan.order == (0, 2, 1, 3)


@pytest.mark.parametrize("x, message", [
    ("Stepz: 1-5", "Unknown axis type 'Stepz'"),
    ("Steps 1-5", "Write an axis as 'Type: values'"),
    ("Steps:", "No values"),
    ("Steps: 1,,2", "Two commas"),
    ("Steps: ten", "'ten' is not a whole number or a range"),
    ("Steps: 1.5-3", "this axis takes whole numbers"),
    ("Steps: 5-1", "gives no values"),
    ("Steps: 1-5 (+0)", "a step of 0"),
    ("Steps: 1-5 [0]", "must be 1 or more"),
    ("Steps: 1-", "not a range A1111 understands"),
    ("CFG scale: 1-5 [x]", "not a range A1111 understands"),
    ("CFG scale: 0-1 (+0.0001)", "keep an axis under"),
    ("Steps: 0, 10", "Steps 0 is out of range"),
    ("CFG scale: 50", "CFG scale 50 is out of range"),
    ("Sampler: Euler z", "'Euler z' is not one picotui has"),
    ("Size: 512 by 512", "is not WIDTHxHEIGHT"),
    ("Size: 500x512", "not a multiple of 8"),
    ("Prompt S/R: corgi", "needs the text to find and at least one replacement"),
    ("Prompt S/R: unicorn, cat", "'unicorn' is in neither the prompt nor the negative prompt"),
    ("LoRA weight: 0.5", "name the LoRA"),
    ("LoRA weight (x): 3", "LoRA weight 3 is out of range"),
    ("Steps (x): 3", "takes no name in brackets"),
])
def test_malformed_input_gives_one_clear_line(x, message):
    with pytest.raises(RequestError) as info:
        build_plan(GenerationRequest(prompt="a corgi", seed=1), x)
    text = str(info.value)
    assert message in text, text
    assert text.startswith("X axis") and "\n" not in text


def test_variation_seed_axis_maps_to_the_request_field_when_there_is_one():
    from dataclasses import fields

    from picotui.engine.plots.axes import VAR_SEED_FIELDS

    name = next((f.name for f in fields(GenerationRequest) if f.name in VAR_SEED_FIELDS), None)
    if name is None:  # before variation seeds exist: one line that says so
        with pytest.raises(RequestError, match="no variation seeds yet"):
            build_plan(GenerationRequest(seed=1), "Var. seed: 1, 2")
    else:
        plan = build_plan(GenerationRequest(seed=1), "Var. seed: 1, 2")
        assert [getattr(c.request, name) for c in plan.cells] == [1, 2]


def test_too_many_cells_and_no_axis():
    with pytest.raises(RequestError, match="keep it under 500"):
        build_plan(GenerationRequest(seed=1), "Steps: 1-30", "Seed: 1-30")
    with pytest.raises(RequestError, match="No axis"):
        build_plan(GenerationRequest(seed=1), "", None)
