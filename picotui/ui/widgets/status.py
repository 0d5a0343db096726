"""The status line (engine state, device, VRAM, checkpoint, memory mode) and the progress panel."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from picotui.engine.events import EngineStatus
from picotui.ui.text import shorten


def status_text(status: EngineStatus | None) -> str:
    if status is None:
        return "engine: starting (torch loads in the background)"
    parts = [f"engine: {status.state}"]
    if status.device:
        parts.append(shorten(status.device, 40) + (f" {status.dtype}" if status.dtype else ""))
    if status.vram_total_gib:
        parts.append(f"VRAM {status.vram_used_gib or 0:.1f}/{status.vram_total_gib:.1f} GiB")
    parts.append(f"model: {shorten(status.checkpoint, 36) if status.checkpoint else 'none loaded'}")
    if status.memory_mode:
        parts.append(f"memory: {status.memory_mode}")
    if status.speed_path:
        parts.append(f"speed: {status.speed_path}")
    return " │ ".join(parts)


class ProgressPanel(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=100, show_eta=False, show_percentage=True, id="progress-bar")
            yield Static("", id="queue")
        yield Static("idle", id="progress-text")

    def loading(self, stage: str, fraction: float | None) -> None:
        bar = self.query_one(ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=round(fraction * 100))
        self.query_one("#progress-text", Static).update(f"loading: {shorten(stage, 60)}")

    def step(self, index: int, total: int, it_per_s: float, eta_s: float, image_index: int, batch: int) -> None:
        self.query_one(ProgressBar).update(total=total * batch, progress=image_index * total + index)
        image = f"image {image_index + 1}/{batch} · " if batch > 1 else ""
        eta = f"{eta_s:.0f}s" if eta_s >= 1 else f"{eta_s:.1f}s"
        self.query_one("#progress-text", Static).update(
            f"{image}step {index}/{total} · {it_per_s:.2f} it/s · ETA {eta}")

    def done(self, text: str) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=100, progress=100 if text.startswith("done") else 0)
        self.query_one("#progress-text", Static).update(text)

    def queue(self, running: bool, waiting: int) -> None:
        text = ("running" if running else "") + (f" · {waiting} queued" if waiting else "")
        self.query_one("#queue", Static).update(text.strip(" ·"))
