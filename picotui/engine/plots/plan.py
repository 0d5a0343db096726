"""A plot's plan: up to three axes over a base request -> one request per cell, checked before anything runs.

Cells are indexed as A1111 indexes them: x fastest, then y, then z (`index = ix + iy*nx + iz*nx*ny`). They run
in A1111's order: the costliest axis (Checkpoint, then VAE) outermost so each checkpoint loads once, else z,
then y, then x. Every cell's request is built (so validated) when the plan is made: a bad value stops the
plot before the first image, with the axis named.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from picotui.engine.errors import RequestError
from picotui.engine.plots.axes import Axis, parse_axis
from picotui.engine.request import GenerationRequest

MAX_CELLS = 500  # A1111 limits a grid by megapixels; a plot this big is a typo, and hours of work


@dataclass(frozen=True)
class Cell:
    index: int  # ix + iy*nx + iz*nx*ny
    ix: int
    iy: int
    iz: int
    request: GenerationRequest


@dataclass(frozen=True)
class GridPlan:
    base: GenerationRequest
    axes: tuple[Axis | None, Axis | None, Axis | None]  # x, y, z
    cells: tuple[Cell, ...]  # by index
    order: tuple[int, ...]  # the cell indexes in the order they run

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(len(a.values) if a else 1 for a in self.axes)

    @property
    def count(self) -> int:
        return len(self.cells)

    @property
    def total_steps(self) -> int:
        return sum(c.request.steps for c in self.cells)

    def index(self, ix: int, iy: int, iz: int = 0) -> int:
        nx, ny, _ = self.shape
        return ix + iy * nx + iz * nx * ny

    def captions(self, which: int) -> list[str]:
        axis = self.axes[which]
        return axis.captions() if axis else [""]

    def describe(self) -> str:
        nx, ny, nz = self.shape
        grids = f" on {nz} {nx}x{ny} grids" if nz > 1 else f" on a {nx}x{ny} grid"
        return f"{self.count} image{'s' if self.count != 1 else ''}{grids}, {self.total_steps} steps in all"


def build_plan(base: GenerationRequest, x: str | Axis | None = None, y: str | Axis | None = None,
               z: str | Axis | None = None, *, keep_random: bool = False) -> GridPlan:
    """The plan for these axes (text as typed, or parsed Axis objects). Raises RequestError, one line.
    X typed as "Prompt matrix" makes A1111's prompt matrix of the base prompt (plots/matrix.py)."""
    if isinstance(x, str) and x.strip().rstrip(":").strip().lower() == "prompt matrix":
        from picotui.engine.plots.matrix import build_matrix_plan

        if (y and str(y).strip()) or (z and str(z).strip()):
            raise RequestError("A prompt matrix makes its own rows and columns: leave the Y and Z axes empty.")
        return build_matrix_plan(base if keep_random or base.seed is not None else base.with_seed())
    axes = []
    for name, given in zip("XYZ", (x, y, z)):
        try:
            axes.append(given if isinstance(given, Axis) or given is None else parse_axis(given, keep_random=keep_random))
        except RequestError as exc:
            raise RequestError(f"{name} axis: {exc}") from None
    if not any(axes):
        raise RequestError("No axis: type at least X, e.g. 'CFG scale: 4, 7, 10'.")
    base = replace(base, batch_count=1)
    if base.seed is None and not keep_random:
        base = base.with_seed()  # one seed for the whole grid, so only the axes change (A1111 fixes it too)
    sizes = [len(a.values) if a else 1 for a in axes]
    count = sizes[0] * sizes[1] * sizes[2]
    if count > MAX_CELLS:
        raise RequestError(f"That plot is {count} images: keep it under {MAX_CELLS} (fewer values per axis).")
    cells = []
    for iz, iy, ix in itertools.product(range(sizes[2]), range(sizes[1]), range(sizes[0])):
        request = base
        for name, axis, i in zip("XYZ", axes, (ix, iy, iz)):
            if axis is None:
                continue
            try:
                request = axis.type.apply(request, axis.values[i], axis)
            except RequestError as exc:
                raise RequestError(f"{name} axis ({axis.label} {axis.caption(axis.values[i]).split(': ')[-1]}): "
                                   f"{exc}") from None
        cells.append(Cell(len(cells), ix, iy, iz, request))
    return GridPlan(base, tuple(axes), tuple(cells), _run_order(axes, sizes))


def _run_order(axes, sizes) -> tuple[int, ...]:
    """A1111's loop order: the costliest axis outermost, then the next; ties keep z, y, x (x innermost)."""
    costs = [a.type.cost if a else -1.0 for a in axes]
    outer_first = sorted([2, 1, 0], key=lambda k: -costs[k])  # stable: z, y, x among equals
    nx, ny = sizes[0], sizes[1]
    order = []
    ranges = [range(sizes[k]) for k in outer_first]
    for combo in itertools.product(*ranges):
        i = dict(zip(outer_first, combo))
        order.append(i[0] + i[1] * nx + i[2] * nx * ny)
    return tuple(order)
