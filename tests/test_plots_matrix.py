"""The prompt matrix against A1111's scripts/prompt_matrix.py rules (combination k takes optional part j when
bit j of k is set; rows = 2^(n // 2); one seed unless asked otherwise), written out by hand."""

from __future__ import annotations

import pytest

from picotui.engine.errors import RequestError
from picotui.engine.plots.matrix import build_matrix_plan
from picotui.engine.plots.plan import build_plan
from picotui.engine.plots.run import plot_parameters
from picotui.engine.request import GenerationRequest


def test_three_parts_make_eight_images_in_a1111_order_and_layout():
    plan = build_plan(GenerationRequest(prompt="a corgi | hat | scarf, | snow", seed=4), "Prompt matrix")
    assert [c.request.prompt for c in plan.cells] == [
        "a corgi", "a corgi, hat", "a corgi, scarf", "a corgi, hat, scarf",
        "a corgi, snow", "a corgi, hat, snow", "a corgi, scarf, snow", "a corgi, hat, scarf, snow"]
    assert plan.shape == (4, 2, 1)  # 1 << (3 // 2) = 2 rows, as A1111's image_grid(rows=...)
    assert {c.request.seed for c in plan.cells} == {4}
    assert plan.captions(0) == ["(none)", "hat", "scarf", "hat, scarf"] and plan.captions(1) == ["(none)", "snow"]
    assert plot_parameters(plan, "x\nSteps: 2, Version: v") == "x\nSteps: 2, Version: v"  # no X/Y/Z keys


def test_one_part_and_different_seeds():
    plan = build_matrix_plan(GenerationRequest(prompt="a corgi|hat", seed=10), different_seeds=True)
    assert [c.request.prompt for c in plan.cells] == ["a corgi", "a corgi, hat"]
    assert [c.request.seed for c in plan.cells] == [10, 11] and plan.shape == (2, 1, 1)


@pytest.mark.parametrize("prompt, y, message", [
    ("a corgi", "", "separate the optional parts of the prompt with |"),
    ("a corgi | | hat", "", "an optional part between | is empty"),
    ("a|b|c|d|e|f|g|h|i|j", "", "keep it to 8 or fewer"),
    ("a | b", "Steps: 2", "leave the Y and Z axes empty"),
])
def test_matrix_mistakes_are_one_line(prompt, y, message):
    with pytest.raises(RequestError, match=message):
        build_plan(GenerationRequest(prompt=prompt, seed=1), "Prompt matrix", y)
