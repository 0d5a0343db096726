"""The bridge between the worker thread and the app: events become Textual messages, handled here.

`Worker.on_event` runs on the worker's event thread; `post_message` is thread-safe, so each event is
wrapped in an `EngineMessage` and handled on the app's thread, where widgets may be touched.
"""

from __future__ import annotations

from textual.message import Message

from picotui.engine.events import Cancelled, EngineStatus, Event, Failed, Finished, Loading, Notice, Queued, Step
from picotui.ui.screens.history import HistoryEntry
from picotui.ui.text import escape_controls, shorten
from picotui.ui.widgets.image_pane import ImagePane
from picotui.ui.widgets.status import ProgressPanel, status_text


class EngineMessage(Message):
    def __init__(self, event: Event):
        super().__init__()
        self.event = event


class EngineEvents:
    """Mixed into the App: one handler per event type. Keeps the app module about keys and screens."""

    def start_engine(self) -> None:
        from picotui.engine.worker import Worker  # lazily: its siblings import torch in the worker thread

        self.worker = Worker(self.paths, lambda event: self.post_message(EngineMessage(event)), **self.engine_options)
        self.worker.start()

    def on_engine_message(self, message: EngineMessage) -> None:
        event = message.event
        self.events_seen.append(type(event).__name__)
        handler = getattr(self, f"_on_{type(event).__name__.lower()}", None)
        if handler is not None:
            handler(event)
        self._update_queue()

    def _update_queue(self) -> None:
        worker = self.worker
        running = worker is not None and worker.running_job is not None
        self.query_one(ProgressPanel).queue(running, worker.pending if worker else 0)

    def _say(self, text: str, severity: str = "information", timeout: float | None = None) -> None:
        self.notify(escape_controls(text, keep_newlines=False), severity=severity, markup=False,
                    **({"timeout": timeout} if timeout else {}))

    def _on_queued(self, event: Queued) -> None:
        if event.position > 0:
            self.query_one(ProgressPanel).queue(True, event.position)

    def _on_loading(self, event: Loading) -> None:
        self.query_one(ProgressPanel).loading(event.stage, event.fraction)

    def _on_step(self, event: Step) -> None:
        self.query_one(ProgressPanel).step(event.index, event.total, event.it_per_s, event.eta_s,
                                           event.image_index, event.batch_count)
        if event.preview is not None:
            batch = f" · image {event.image_index + 1}/{event.batch_count}" if event.batch_count > 1 else ""
            self.query_one(ImagePane).show(event.preview, f"preview · step {event.index}/{event.total}{batch}")

    def _on_finished(self, event: Finished) -> None:
        request = event.request
        where = f"saved {event.path.name}" if event.path else "not saved"
        caption = f"seed {request.seed} · {request.width}×{request.height} · {where}"
        self.query_one(ImagePane).show(event.image, shorten(caption, 200))
        self.history.insert(0, HistoryEntry(event.path, request, session=True, image=event.image))
        last = event.image_index + 1 == event.batch_count
        total = event.timings.get("total")
        took = f" in {total:.1f}s" if total else ""
        self.query_one(ProgressPanel).done(
            f"done{took}: image {event.image_index + 1}/{event.batch_count}, seed {request.seed}" if not last
            or event.batch_count > 1 else f"done{took} · seed {request.seed}")
        if event.save_error:
            self._say(event.save_error, "warning")

    def _on_failed(self, event: Failed) -> None:
        self.query_one(ProgressPanel).done("failed (see the notification)")
        self._say(event.message, "error", timeout=12)

    def _on_cancelled(self, event: Cancelled) -> None:
        self.query_one(ProgressPanel).done("cancelled")
        self._say(f"Job {event.job_id} cancelled.", timeout=3)

    def _on_notice(self, event: Notice) -> None:
        self._say(event.message, "warning" if event.level == "warning" else "information")

    def _on_enginestatus(self, event: EngineStatus) -> None:
        self.engine_status = event
        from textual.widgets import Static

        from picotui.ui.text import plain

        self.query_one("#status-line", Static).update(plain(status_text(event), one_line=True))
