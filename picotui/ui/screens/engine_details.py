"""Engine details (F3): what the status line has no room for, above all *why* the engine chose its
memory mode and speed path (issue: "the TUI shows which memory mode and speed path are active, and why")."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from picotui.engine.events import EngineStatus
from picotui.ui.text import plain


def details_text(status: EngineStatus | None, *, log_file, graphics: str | list[tuple[str, str]], models,
                 outputs) -> str:
    """`graphics`: one line, or (label, text) lines (what the terminal is, why this protocol, bytes sent)."""
    lines = []
    if status is None:
        lines.append("engine      starting: torch loads in the background (the details come when it is ready)")
    else:
        detail = status.detail or {}
        vram = (f"{status.vram_used_gib or 0:.2f} of {status.vram_total_gib:.2f} GiB in use"
                if status.vram_total_gib else "none (not a GPU)")
        lines += [
            f"state       {status.state}",
            f"device      {status.device or 'not chosen yet'}",
            f"precision   {status.dtype or '-'}",
            f"VRAM        {vram}",
            f"checkpoint  {status.checkpoint or 'none loaded yet'}",
            "",
            f"memory mode {status.memory_mode or 'not chosen yet (the first job decides)'}",
            f"  why       {detail.get('memory_reason') or '-'}",
            f"speed path  {status.speed_path or 'not chosen yet (the first job decides)'}",
            f"  why       {detail.get('speed_reason') or '-'}",
        ]
        others = {k: v for k, v in detail.items()
                  if k not in ("memory_reason", "speed_reason") and v not in (None, "")}
        for key, value in sorted(others.items()):
            lines.append(f"{str(key)[:11]:<11} {value}")
    graphics_lines = [("graphics", graphics)] if isinstance(graphics, str) else graphics
    lines += [""] + [f"{label:<11} {text}" for label, text in graphics_lines]
    lines += [f"models      {models}", f"outputs     {outputs}",
              f"log file    {log_file}"]
    return "\n".join(lines)


class EngineDetailsModal(ModalScreen):
    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="details_close")]

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="engine-box", classes="dialog"):
            yield Static("Engine details", classes="dialog-title")
            with VerticalScroll():
                yield Static(plain(self.text), id="engine-details")
            yield Static("escape closes · memory mode and speed path are chosen per job and can change "
                         "(e.g. after running out of memory)", classes="dim", markup=False)

    def update_text(self, text: str) -> None:
        """Refresh while open (a new EngineStatus arrived)."""
        self.text = text
        self.query_one("#engine-details", Static).update(plain(text))
