"""The progress panel: a bar, the queue count and one line saying what the engine is doing for the shown job."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from picotui.ui.text import plain, shorten


class ProgressPanel(Vertical):
    """A bar and one line of text. `state` says what the line shows: "idle", "loading", "running",
    "done", "failed", "cancelled" (the app resets a finished load to "ready" on idle)."""

    state = "idle"
    _queue_text = ""  # what the queue label shows now

    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=100, show_eta=False, show_percentage=True, id="progress-bar")
            yield Static("", id="queue")
        yield Static("idle", id="progress-text")

    def _text(self, text: str, state: str) -> None:
        self.state = state
        # file names and engine messages end up here: shown literally, on one line
        self.query_one("#progress-text", Static).update(plain(text, one_line=True))

    def loading(self, stage: str, fraction: float | None) -> None:
        bar = self.query_one(ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=round(fraction * 100))
        # an Extras job's stages say what they do ("upscaling with X: tile 3/9"); a generation's are loads
        self._text(shorten(stage, 70) if stage.startswith("upscaling") else f"loading: {shorten(stage, 60)}",
                   "loading")

    def step(self, index: int, total: int, it_per_s: float, eta_s: float, image_index: int, batch: int,
             evaluations: int = 0, pass_text: str = "") -> None:
        """One step done. With two passes (hires fix) the bar, the steps and the ETA are the running pass's
        own, and the line says which pass it is ("hires pass 2/2")."""
        self.query_one(ProgressBar).update(total=total * batch, progress=image_index * total + index)
        image = f"image {image_index + 1}/{batch} · " if batch > 1 else ""
        image += f"{pass_text} · " if pass_text else ""
        eta = f"{eta_s:.0f}s" if eta_s >= 1 else f"{eta_s:.1f}s"
        speed = f"{it_per_s:.2f} it/s" + (f" · {1 / it_per_s:.2f} s/step" if it_per_s > 0 else "")
        unet = f" · UNet {evaluations / index:g}/step" if evaluations and index else ""
        self._text(f"{image}step {index}/{total} · {speed}{unet} · ETA {eta}", "running")

    def done(self, text: str, state: str = "done") -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=100, progress=100 if state == "done" else 0)
        self._text(text, state)

    def queue(self, running: bool, waiting: int) -> None:
        text = (("running" if running else "") + (f" · {waiting} queued" if waiting else "")).strip(" ·")
        if text != self._queue_text:  # asked after every engine event, steps included: redraw only on change
            self._queue_text = text
            self.query_one("#queue", Static).update(plain(text, one_line=True))
