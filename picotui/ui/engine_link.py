"""The bridge between the worker thread and the app: events become Textual messages, handled here.

`Worker.on_event` runs on the worker's event thread; `post_message` is thread-safe, so each event is
wrapped in an `EngineMessage` and handled on the app's thread, where widgets may be touched. What the
events change is the main screen's (`self.main`), whichever screen is on top.
"""

from __future__ import annotations

from textual.message import Message

from picotui.engine.events import Cancelled, EngineStatus, Event, Failed, Finished, Loading, Notice, Queued, Step
from picotui.engine.request import GenerationRequest
from picotui.ui import graphics
from picotui.ui.screens.engine_details import EngineDetailsModal, details_text
from picotui.ui.screens.history import HistoryEntry
from picotui.ui.state import AppState
from picotui.ui.text import shorten


def steps_run(request) -> int:
    """The denoising steps an image took: img2img runs A1111's share of the steps, hires fix adds its pass."""
    from picotui.engine.sampling.img2img import img2img_steps  # arithmetic only: no torch

    if request.init_image:
        return img2img_steps(request.steps, request.denoising_strength, fixed=False)[1] + 1
    if request.hires:
        return request.steps + (request.hires_steps or request.steps)
    return request.steps


def done_cost(event: Finished, few_step: dict) -> str:
    """" · 0.38 s/step, 48 UNet evals · faster: 6 steps with LCM-LoRA: about 9 s" for the done line."""
    from picotui.engine.models.few_step import faster_setting

    denoise, steps = event.timings.get("denoise"), steps_run(event.request)
    if not denoise or not event.unet_evaluations:
        return ""
    text = f" · {denoise / steps:.2f} s/step, {event.unet_evaluations} UNet evals"
    faster = faster_setting(event.request, event.timings, event.unet_evaluations, few_step)
    return text + (f" · faster: {faster}" if faster else "")


def pass_text(event: Step) -> str:
    """"hires pass 2/2" while an image has two denoising passes; "" when it has one."""
    return f"{event.pass_label} {event.pass_number}/{event.pass_count}" if event.pass_label else ""


IN_THE_LOG = "details in the log"  # what the worker's one-line messages say when a traceback was logged


class EngineMessage(Message):
    def __init__(self, event: Event):
        super().__init__()
        self.event = event


class EngineEvents(AppState):
    """Mixed into the App: one handler per event type. Keeps the app module about keys and screens."""

    def start_engine(self) -> None:
        from picotui.engine.jobs.worker import Worker  # lazily: its siblings import torch in the worker thread

        self.worker = Worker(self.paths, lambda event: self.post_message(EngineMessage(event)),
                             preview=graphics.image_widget() is not None, **self.engine_options)
        self.worker.start()

    def on_engine_message(self, message: EngineMessage) -> None:
        if self.plot_event(message.event):  # a plot's cell: the plot screen shows it (ui/plot_link.py)
            return
        match message.event:
            case Loading() as event:
                self._on_loading(event)
            case Step() as event:
                self._on_step(event)
            case Finished() as event:
                self._on_finished(event)
            case Failed() as event:
                self._on_failed(event)
            case Cancelled() as event:
                self._on_cancelled(event)
            case Notice() as event:
                self._on_notice(event)
            case EngineStatus() as event:
                self._on_engine_status(event)
            case Queued():
                pass  # the queue count below is all it changes
        self.update_queue()  # after every event (Queued included): the worker's own counts are the truth

    def engine_details(self) -> str:
        """What F3 shows: the last engine status, with where the log, models and outputs are."""
        return details_text(self.engine_status, log_file=self.paths.log_file, graphics=graphics.describe_lines(),
                            models=self.paths.models, outputs=self.paths.outputs)

    def update_queue(self) -> None:
        worker = self.worker
        running = worker is not None and worker.running_job is not None
        self.main.progress.queue(running, worker.pending if worker else 0)

    def _ended(self, job_id: int) -> None:
        """The job the progress line was about is over: escape has nothing to cancel until the next one."""
        if self.shown_job == job_id:
            self.shown_job = None
            self.main.status_line.show_pass("")
        self.last_step.pop(job_id, None)
        self.job_sources.pop(job_id, None)

    def _on_loading(self, event: Loading) -> None:
        if event.job_id:  # job 0 is the engine starting up, not something escape could cancel
            self.shown_job = event.job_id
        self.main.progress.loading(event.stage, event.fraction)

    def _on_step(self, event: Step) -> None:
        self.shown_job = event.job_id
        self.last_step[event.job_id] = (event.index, event.total, event.pass_label)
        self.main.progress.step(event.index, event.total, event.it_per_s, event.eta_s,
                                event.image_index, event.batch_count, event.unet_evaluations, pass_text(event))
        self.main.status_line.show_pass(pass_text(event))
        if event.preview is not None:
            batch = f" · image {event.image_index + 1}/{event.batch_count}" if event.batch_count > 1 else ""
            where = f"{pass_text(event)} · " if event.pass_label else ""
            self.main.image.show(event.preview, f"preview · {where}step {event.index}/{event.total}{batch}",
                                 preview=True, source=self.job_sources.get(event.job_id))

    def _on_finished(self, event: Finished) -> None:
        if not isinstance(event.request, GenerationRequest):  # the Extras job's upscaled picture
            self._on_upscaled(event)
            return
        request = event.request
        where = f"saved {event.path.name}" if event.path else "not saved"
        size = f"{event.image.width}×{event.image.height}"
        if request.hires:  # the recipe's Size is the first pass's
            size = f"{request.width}×{request.height} → hires {size}"
        caption = shorten(f"seed {request.seed} · {size} · {where}", 200)
        self.main.image.show(event.image, caption, path=event.path, source=request.init_image)
        self.last_final = (event.image, caption, event.path, request.init_image)
        self.history.insert(0, HistoryEntry(event.path, request, session=True, image=event.image,
                                            parameters=event.parameters, save_error=event.save_error))
        last = event.image_index + 1 == event.batch_count
        total = event.timings.get("total")
        took = f" in {total:.1f}s" if total else ""
        batch = f": image {event.image_index + 1}/{event.batch_count}," if event.batch_count > 1 else " ·"
        self.main.progress.done(f"done{took}{batch} seed {request.seed}" + ("" if event.path else " · NOT SAVED")
                                + done_cost(event, getattr(self, "few_step_known", {})))
        if last:
            self._ended(event.job_id)
        if event.save_error:
            self.say(f"{event.save_error} The image is kept in memory: ctrl+t then s (or ctrl+p, "
                      "'Save again') saves it again.", "error", timeout=20)

    def _on_upscaled(self, event: Finished) -> None:
        request = event.request
        where = f"saved {event.path.name}" if event.path else "not saved"
        caption = shorten(f"upscaled {request.source.name} with {request.upscaler} · {event.image.width}×"
                          f"{event.image.height} · {where}", 200)
        self.main.image.show(event.image, caption, path=event.path)
        self.last_final = (event.image, caption, event.path, None)
        total = event.timings.get("total")
        took = f" in {total:.1f}s" if total else ""
        self.main.progress.done(f"upscaled{took} · {event.image.width}×{event.image.height} · "
                                + (f"saved {event.path.parent.name}/{event.path.name}" if event.path else "NOT SAVED"))
        self._ended(event.job_id)
        if event.save_error:
            self.say(event.save_error, "error", timeout=20)

    def _on_failed(self, event: Failed) -> None:
        self._ended(event.job_id)
        # in the progress line too: the notification goes away after a while, this stays until the next job
        self.main.progress.done(f"failed: {event.message}", "failed")
        self.say(event.message, "error", timeout=12)

    def _on_cancelled(self, event: Cancelled) -> None:
        step = self.last_step.get(event.job_id)
        was_shown = self.shown_job == event.job_id
        self._ended(event.job_id)
        if not was_shown:  # a queued job removed before it started: the progress line is about another
            self.say(f"Job {event.job_id} removed from the queue.", timeout=3)
            return
        at = (f" in the {step[2]}" if step and step[2] else "") + \
            (f" at step {step[0]}/{step[1]}" if step else " before its first step")
        self.main.progress.done(f"job {event.job_id} cancelled{at}", "cancelled")
        pane = self.main.image
        if self.last_final is not None:  # the noisy preview goes; the last real image comes back
            image, caption, path, source = self.last_final
            pane.show(image, caption, path=path, source=source)
        elif pane.image is not None:
            pane.recaption(f"cancelled{at} (an unfinished preview)")
        self.say(f"Job {event.job_id} cancelled.", timeout=3)

    def _on_notice(self, event: Notice) -> None:
        # before the first picture, notes (the device chosen, the demo model) go in the empty image pane
        startup = event.job_id == 0 or event.level != "warning"  # a job's warnings stay toasts: they matter now
        if not (startup and self.main.image.add_guide(event.message)):
            self.say(event.message, "warning" if event.level == "warning" else "information")

    def _on_engine_status(self, event: EngineStatus) -> None:
        self.engine_status = event
        self.main.status_line.show(event)
        progress = self.main.progress
        if event.state == "idle" and progress.state == "loading" and self.shown_job is None:
            progress.done("ready: ctrl+g generates", "idle")  # the start-up load is over
        for screen in self.screen_stack:
            if isinstance(screen, EngineDetailsModal):
                screen.update_text(self.engine_details())
