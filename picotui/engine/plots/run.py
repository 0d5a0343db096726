"""Running a plan through the Worker: one job per cell, in the plan's run order, and what came back.

One job per cell keeps everything the worker already does for a job: the pipeline stays loaded between
jobs (a checkpoint loads once; a LoRA weight change only re-weights the loaded adapter), each cell is saved
as its own PNG with its full recipe, a cancel ends the running cell and drops the queued ones, and every
finished cell stays. The worker never knows it is making a plot.

`GridRun` is fed the worker's events (from whichever thread delivers them) and keeps the cells; `save_grid`
writes the labelled grid PNG with the first cell's A1111 parameters plus A1111's plot keys (Script, X Type,
X Values, Fixed X Values, ...), the way A1111's X/Y/Z plot writes its grid.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from picotui.engine.events import Cancelled, Failed, Finished
from picotui.engine.plots.plan import GridPlan

SCRIPT_TITLE = "X/Y/Z plot"
GRIDS_FOLDER = "grids"  # under the outputs folder: grids/YYYY-MM-DD/NNNNN-SEED.png, apart from the cells


@dataclass
class CellResult:
    image: object = None  # PIL image
    path: Path | None = None
    parameters: str = ""
    request: object = None
    error: str | None = None  # Failed message, or "cancelled"


@dataclass
class GridRun:
    plan: GridPlan
    jobs: dict[int, int] = field(default_factory=dict)  # job id -> cell index
    results: dict[int, CellResult] = field(default_factory=dict)  # cell index -> result
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, worker) -> None:
        """Queue every cell, in run order (the costliest axis outermost)."""
        for index in self.plan.order:
            job = worker.submit(self.plan.cells[index].request)
            with self.lock:
                self.jobs[job] = index

    def cancel(self, worker) -> None:
        """Stop the running cell and drop the queued ones; finished cells stay."""
        with self.lock:
            pending = [job for job, index in self.jobs.items() if index not in self.results]
        for job in reversed(pending):  # queued ones first, so the worker does not start one of them meanwhile
            worker.cancel(job)

    def on_event(self, event) -> int | None:
        """Record a cell's end; returns its index (None for events of other jobs or other kinds)."""
        with self.lock:
            index = self.jobs.get(event.job_id)
            if index is None:
                return None
            if isinstance(event, Finished):
                self.results[index] = CellResult(event.image, event.path, event.parameters, event.request,
                                                 event.save_error)
            elif isinstance(event, Failed):
                self.results[index] = CellResult(error=event.message)
            elif isinstance(event, Cancelled):
                self.results[index] = CellResult(error="cancelled")
            else:
                return None
            return index

    @property
    def finished(self) -> int:
        return sum(1 for r in self.results.values() if r.image is not None)

    @property
    def done(self) -> bool:
        return len(self.results) == self.plan.count

    def images(self) -> dict:
        return {i: r.image for i, r in self.results.items() if r.image is not None}

    def grid_image(self):
        from picotui.engine.plots.drawing import draw_plot

        return draw_plot(self.plan, self.images())

    def grid_parameters(self) -> str:
        """The first made cell's parameters with A1111's X/Y/Z keys added before Version."""
        return plot_parameters(self.plan, self._first().parameters)

    def _first(self) -> CellResult:
        made = [i for i, r in self.results.items() if r.image is not None]
        if not made:
            raise ValueError("no cell was made")
        return self.results[min(made)]

    def save_grid(self, outputs_dir) -> Path:
        """Write the grid PNG under outputs/grids/; raises SaveError (one line), ValueError if no cell was made."""
        from picotui.engine.recipes.output import save_png

        first = self._first()
        return save_png(self.grid_image(), Path(outputs_dir) / GRIDS_FOLDER, first.request, self.grid_parameters())


def plot_keys(plan: GridPlan) -> list[tuple[str, str]]:
    if any(a is not None and a.type.kind == "matrix" for a in plan.axes):
        return []  # A1111's prompt matrix grid carries its first image's parameters only
    keys = [("Script", SCRIPT_TITLE)]
    for name, axis in zip("XYZ", plan.axes):
        if axis is None:
            continue
        keys += [(f"{name} Type", axis.label), (f"{name} Values", axis.text)]
        if axis.fixed_seeds:
            keys.append((f"Fixed {name} Values", ", ".join(str(v) for v in axis.values)))
    return keys


def plot_parameters(plan: GridPlan, parameters: str) -> str:
    from picotui.engine.recipes.infotext import quote

    keys = plot_keys(plan)
    if not keys:
        return parameters
    extra = ", ".join(f"{k}: {quote(v)}" for k, v in keys)
    head, sep, last = parameters.rpartition("\n")
    at = last.rfind(", Version: ")
    last = f"{last[:at]}, {extra}{last[at:]}" if at >= 0 else (f"{last}, {extra}" if last else extra)
    return f"{head}{sep}{last}"
