"""The bridge between the worker thread and the app: events become Textual messages, handled here.

`Worker.on_event` runs on the worker's event thread; `post_message` is thread-safe, so each event is
wrapped in an `EngineMessage` and handled on the app's thread, where widgets may be touched.
"""

from __future__ import annotations

from textual.message import Message

from picotui.engine.events import Cancelled, EngineStatus, Event, Failed, Finished, Loading, Notice, Step
from picotui.ui import graphics
from picotui.ui.screens.engine_details import EngineDetailsModal
from picotui.ui.screens.history import HistoryEntry
from picotui.ui.text import plain, say, shorten
from picotui.ui.widgets.image_pane import ImagePane
from picotui.ui.widgets.status import ProgressPanel, status_text

def done_cost(event: Finished, few_step: dict) -> str:
    """" · 0.38 s/step, 48 UNet evals · faster: 6 steps with LCM-LoRA: about 9 s" for the done line."""
    from picotui.engine.models.few_step import faster_setting

    denoise, steps = event.timings.get("denoise"), event.request.steps
    if not denoise or not event.unet_evaluations:
        return ""
    text = f" · {denoise / steps:.2f} s/step, {event.unet_evaluations} UNet evals"
    faster = faster_setting(event.request, event.timings, event.unet_evaluations, few_step)
    return text + (f" · faster: {faster}" if faster else "")


IN_THE_LOG = "details in the log"  # what the worker's one-line messages say when a traceback was logged


class EngineMessage(Message):
    def __init__(self, event: Event):
        super().__init__()
        self.event = event


class EngineEvents:
    """Mixed into the App: one handler per event type. Keeps the app module about keys and screens."""

    def start_engine(self) -> None:
        from picotui.engine.jobs.worker import Worker  # lazily: its siblings import torch in the worker thread

        self.worker = Worker(self.paths, lambda event: self.post_message(EngineMessage(event)),
                             preview=graphics.image_widget() is not None, **self.engine_options)
        self.worker.start()

    def on_engine_message(self, message: EngineMessage) -> None:
        event = message.event
        self.events_seen.append(type(event).__name__)
        if self.plot_event(event):  # a plot's cell: the plot screen shows it (ui/plot_link.py)
            return
        handler = getattr(self, f"_on_{type(event).__name__.lower()}", None)
        if handler is not None:
            handler(event)
        self._update_queue()  # after every event (Queued included): the worker's own counts are the truth

    def _update_queue(self) -> None:
        worker = self.worker
        running = worker is not None and worker.running_job is not None
        self.query_one(ProgressPanel).queue(running, worker.pending if worker else 0)

    def _say(self, text: str, severity: str = "information", timeout: float | None = None) -> None:
        if IN_THE_LOG in text and str(self.paths.log_file) not in text:
            text = text.replace(IN_THE_LOG, f"{IN_THE_LOG}: {self.paths.log_file}")
        say(self, text, severity, timeout)

    def _ended(self, job_id: int) -> None:
        """The job the progress line was about is over: escape has nothing to cancel until the next one."""
        if self.shown_job == job_id:
            self.shown_job = None
        self.last_step.pop(job_id, None)

    def _on_loading(self, event: Loading) -> None:
        if event.job_id:  # job 0 is the engine starting up, not something escape could cancel
            self.shown_job = event.job_id
        self.query_one(ProgressPanel).loading(event.stage, event.fraction)

    def _on_step(self, event: Step) -> None:
        self.shown_job = event.job_id
        self.last_step[event.job_id] = (event.index, event.total)
        self.query_one(ProgressPanel).step(event.index, event.total, event.it_per_s, event.eta_s,
                                           event.image_index, event.batch_count, event.unet_evaluations)
        if event.preview is not None:
            batch = f" · image {event.image_index + 1}/{event.batch_count}" if event.batch_count > 1 else ""
            self.query_one(ImagePane).show(event.preview, f"preview · step {event.index}/{event.total}{batch}",
                                            preview=True)

    def _on_finished(self, event: Finished) -> None:
        request = event.request
        where = f"saved {event.path.name}" if event.path else "not saved"
        caption = shorten(f"seed {request.seed} · {request.width}×{request.height} · {where}", 200)
        self.query_one(ImagePane).show(event.image, caption)
        self.last_final = (event.image, caption)
        self.history.insert(0, HistoryEntry(event.path, request, session=True, image=event.image,
                                            parameters=event.parameters, save_error=event.save_error))
        last = event.image_index + 1 == event.batch_count
        total = event.timings.get("total")
        took = f" in {total:.1f}s" if total else ""
        batch = f": image {event.image_index + 1}/{event.batch_count}," if event.batch_count > 1 else " ·"
        self.query_one(ProgressPanel).done(f"done{took}{batch} seed {request.seed}" + ("" if event.path else
                                                                                        " · NOT SAVED")
                                           + done_cost(event, getattr(self, "few_step_known", {})))
        if last:
            self._ended(event.job_id)
        if event.save_error:
            self._say(f"{event.save_error} The image is kept in memory: ctrl+t then s (or ctrl+p, "
                      "'Save again') saves it again.", "error", timeout=20)

    def _on_failed(self, event: Failed) -> None:
        self._ended(event.job_id)
        # in the progress line too: the notification goes away after a while, this stays until the next job
        self.query_one(ProgressPanel).done(f"failed: {event.message}", "failed")
        self._say(event.message, "error", timeout=12)

    def _on_cancelled(self, event: Cancelled) -> None:
        step = self.last_step.get(event.job_id)
        was_shown = self.shown_job == event.job_id
        self._ended(event.job_id)
        if not was_shown:  # a queued job removed before it started: the progress line is about another
            self._say(f"Job {event.job_id} removed from the queue.", timeout=3)
            return
        at = f" at step {step[0]}/{step[1]}" if step else " before its first step"
        self.query_one(ProgressPanel).done(f"job {event.job_id} cancelled{at}", "cancelled")
        pane = self.query_one(ImagePane)
        if self.last_final is not None:  # the noisy preview goes; the last real image comes back
            pane.show(*self.last_final)
        elif pane.image is not None:
            pane.recaption(f"cancelled{at} (an unfinished preview)")
        self._say(f"Job {event.job_id} cancelled.", timeout=3)

    def _on_notice(self, event: Notice) -> None:
        # before the first picture, notes (the device chosen, the demo model) go in the empty image pane
        startup = event.job_id == 0 or event.level != "warning"  # a job's warnings stay toasts: they matter now
        if not (startup and self.query_one(ImagePane).add_guide(event.message)):
            self._say(event.message, "warning" if event.level == "warning" else "information")

    def _on_enginestatus(self, event: EngineStatus) -> None:
        from textual.widgets import Static

        self.engine_status = event
        self.query_one("#status-line", Static).update(plain(status_text(event), one_line=True))
        progress = self.query_one(ProgressPanel)
        if event.state == "idle" and progress.state == "loading" and self.shown_job is None:
            progress.done("ready: ctrl+g generates", "idle")  # the start-up load is over
        for screen in self.screen_stack:
            if isinstance(screen, EngineDetailsModal):
                screen.update_text(self._engine_details())
