"""The status line under the main screen: engine state, memory mode, speed path, VRAM, checkpoint, device."""

from __future__ import annotations

from textual.widgets import Static

from picotui.engine.events import EngineStatus
from picotui.ui.text import plain, shorten

STARTING = "engine: starting (torch loads in the background)"


def status_text(status: EngineStatus | None, pass_text: str = "") -> str:
    if status is None:
        return STARTING
    # most useful first: a narrow terminal cuts the end (F3 shows everything)
    parts = [f"engine: {status.state}" + (f" · {pass_text}" if pass_text else "")]
    cost = (status.detail or {}).get("cost")
    if cost:  # the last image's s/step and UNet evaluations: what the settings cost
        parts.append(f"last image: {cost}")
    if status.memory_mode:
        parts.append(f"memory: {status.memory_mode}")
    if status.speed_path:
        parts.append(f"speed: {status.speed_path}")
    if status.vram_total_gib:
        parts.append(f"VRAM {status.vram_used_gib or 0:.1f}/{status.vram_total_gib:.1f} GiB")
    parts.append(f"model: {shorten(status.checkpoint, 36) if status.checkpoint else 'none loaded'}")
    if status.device:
        parts.append(shorten(status.device, 40) + (f" {status.dtype}" if status.dtype else ""))
    parts.append("F3 details")
    return " │ ".join(parts)


class StatusLine(Static):
    """One line; F3 shows all of it, with the reasons."""

    def __init__(self, *, starting: bool, **kwargs):
        super().__init__(STARTING if starting else "engine: not started", markup=False, **kwargs)
        self.status: EngineStatus | None = None
        self.pass_text = ""  # "hires pass 2/2" while a two-pass image runs

    def show(self, status: EngineStatus) -> None:
        self.status = status
        self.update(plain(status_text(status, self.pass_text), one_line=True))

    def show_pass(self, pass_text: str) -> None:
        """Which pass of a two-pass image runs ("" when one pass, or none, runs)."""
        if pass_text != self.pass_text:
            self.pass_text = pass_text
            if self.status is not None:
                self.update(plain(status_text(self.status, pass_text), one_line=True))
