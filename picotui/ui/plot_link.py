"""The app's side of X/Y/Z plots: one plot at a time, owned by the app (not by the plot screen), so it goes on
and its grid is saved even when the screen is closed; the screen shows it again when reopened (F4).

Mixed into the App like EngineEvents. `plot_event` sees every engine event first: it keeps the session's
measured speed (for the estimate before a plot starts) and takes the plot's own cell events, which would
otherwise draw each cell over the main screen's image; each finished cell still joins the history.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from picotui.engine.errors import PicoError, RequestError, SaveError
from picotui.engine.events import Cancelled, Failed, Finished, Loading, Queued, Step
from picotui.engine.plots.plan import GridPlan, build_plan
from picotui.engine.plots.run import GridRun

log = logging.getLogger("picotui.ui")
CONFIRM_ABOVE = 12  # images: a plot bigger than this asks for a second enter


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class PlotSession:
    plan: GridPlan
    texts: tuple[str, str, str]  # the axes as typed (the screen shows them again)
    grid: GridRun = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    step: tuple[int, int] = (0, 0)  # the running cell's step and total
    it_per_s: float = 0.0
    cancelled: bool = False
    grid_path: object = None  # the saved grid PNG
    grid_error: str | None = None

    def __post_init__(self):
        self.grid = self.grid or GridRun(self.plan)

    @property
    def running(self) -> bool:
        return not self.grid.done

    def steps_done(self) -> int:
        return sum(self.plan.cells[i].request.steps for i in self.grid.results) + self.step[0]

    def progress_text(self) -> str:
        done, count = len(self.grid.results), self.plan.count
        made = self.grid.finished
        if not self.running:
            where = f" · grid saved: {self.grid_path}" if self.grid_path else (
                f" · {self.grid_error}" if self.grid_error else "")
            end = "cancelled" if self.cancelled else "done"
            took = (self.ended or time.monotonic()) - self.started
            return f"{end}: {made}/{count} images in {duration(took)}{where}"
        done_steps = self.steps_done()
        left = self.plan.total_steps - done_steps
        if self.grid.results and done_steps:  # the pace so far, loading and decoding included
            eta = f" · ETA {duration(left * (time.monotonic() - self.started) / done_steps)}"
        else:
            eta = f" · ETA {duration(left / self.it_per_s)}" if self.it_per_s > 0 else ""
        return f"cell {min(done + 1, count)}/{count} · {made} made{eta} · escape cancels (finished cells stay)"


class PlotRuns:
    """Mixed into the App."""

    plot: PlotSession | None = None
    measured_speed: tuple[float, int] | None = None  # (it/s, pixels) of this session's last image

    # ---- before: plan and estimate ----------------------------------------------------------------
    def plot_base(self):
        """The form's request: every cell starts from it. Raises RequestError."""
        return self.main.form.request()

    def plan_plot(self, x: str, y: str, z: str) -> GridPlan:
        try:
            base = self.plot_base()
        except RequestError as exc:
            raise RequestError(f"The form has a problem, and every cell starts from it: {exc}") from None
        return build_plan(base, x, y, z)

    def plot_estimate(self, plan: GridPlan) -> str:
        """'about 1 min 20 s at 1.50 it/s', or 'time unknown' before this session has made an image."""
        if self.measured_speed is None:
            return "time unknown until this session has made an image"
        it_per_s, pixels = self.measured_speed
        seconds = sum(c.request.steps * (c.request.width * c.request.height) / (pixels * it_per_s) for c in plan.cells)
        return f"about {duration(seconds)} (measured {it_per_s:.2f} it/s)"

    def plot_summary(self, plan: GridPlan) -> str:
        return f"{plan.describe()} · {self.plot_estimate(plan)}"

    # ---- during -----------------------------------------------------------------------------------
    def start_plot(self, plan: GridPlan, texts: tuple[str, str, str]) -> bool:
        if self.plot is not None and self.plot.running:
            self.say("A plot is running: escape cancels it first.", "warning")
            return False
        if not self.ensure_engine():
            self.say(f"The engine is not running (details in the log: {self.paths.log_file}).", "error")
            return False
        self.plot = PlotSession(plan, texts)
        try:
            self.plot.grid.submit(self.worker)
        except PicoError as exc:
            self.say(str(exc), "error")
            return False
        return True

    def cancel_plot(self) -> bool:
        if self.plot is None or not self.plot.running or self.worker is None:
            return False
        self.plot.cancelled = True
        self.plot.grid.cancel(self.worker)
        return True

    def plot_event(self, event) -> bool:
        """Take `event` if it is about one of the plot's cells (True), after noting the speed of any image."""
        if isinstance(event, Finished) and event.timings.get("denoise", 0) > 0:  # any job's: the session's pace
            request = event.request
            self.measured_speed = (request.steps / event.timings["denoise"], request.width * request.height)
        session = self.plot
        if session is None or event.job_id not in session.grid.jobs:
            return False
        if isinstance(event, Queued):  # every start re-reports the queue: nothing to redraw for it
            return True
        if isinstance(event, Step):
            session.step, session.it_per_s = (event.index, event.total), event.it_per_s
        elif isinstance(event, (Finished, Failed, Cancelled)):
            index = session.grid.on_event(event)
            session.step = (0, 0)
            if isinstance(event, Finished):
                self._remember(event)
            elif isinstance(event, Failed) and index is not None:
                self.say(f"Cell {index + 1}: {event.message}", "error", timeout=8)
            if not session.running:
                self._finish_plot(session)
        elif not isinstance(event, Loading):
            return False
        screen = self._plot_screen()
        if screen is not None:
            screen.update_from(session, event)
        elif not isinstance(event, Step):  # the plot screen is closed: the main progress line follows the plot
            text = session.progress_text().replace("escape cancels", "F4 shows it, escape there cancels")
            self.main.progress.done(f"plot: {text}", "running" if session.running else "done")
        return True

    def _remember(self, event: Finished) -> None:
        from picotui.ui.screens.history import HistoryEntry

        self.history.insert(0, HistoryEntry(event.path, event.request, session=True, image=event.image,
                                            parameters=event.parameters, save_error=event.save_error))

    def _finish_plot(self, session: PlotSession) -> None:
        session.ended = time.monotonic()
        if not session.grid.images():
            session.grid_error = "no cell was made, so no grid"
            return
        try:
            session.grid_path = session.grid.save_grid(self.paths.outputs)
        except SaveError as exc:
            session.grid_error = str(exc)
            self.say(f"The grid was not saved: {exc}", "error", timeout=12)
            return
        self.say(f"Grid saved: {session.grid_path}", timeout=6)

    def _plot_screen(self):
        from picotui.ui.screens.plot import PlotScreen

        return next((s for s in self.screen_stack if isinstance(s, PlotScreen)), None)

    # ---- after ------------------------------------------------------------------------------------
    def action_plot(self) -> None:
        from picotui.ui.screens.plot import PlotScreen

        if isinstance(self.screen, PlotScreen):  # F4 again: back to the form, the plot goes on
            self.pop_screen()
            return
        while self.screen is not self.main:  # the plot opens over the form, not over another dialog
            self.pop_screen()
        self.push_screen(PlotScreen(self.plot))

    def restore_cell(self, request, where: str) -> None:
        """Enter on a cell: its settings into the form (the seed locked), back on the main screen."""
        while self.screen is not self.main:
            self.pop_screen()
        self.main.restore(request, [], where)


