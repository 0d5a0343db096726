"""A small dialog that asks for a PNG path; the app loads its recipe into the form."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from picotui.ui.text import plain


class OpenPngModal(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="open_png_cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="open-box", classes="dialog"):
            yield Static("Open a PNG and load its settings", classes="dialog-title")
            yield Input(placeholder="/path/to/image.png (picotui or AUTOMATIC1111)", id="open-path")
            yield Static("", id="open-error", classes="field-error")
            yield Static("enter loads · escape cancels", classes="dim")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip().strip("'\"")
        path = Path(text).expanduser()
        if not text or not path.is_file():
            self.query_one("#open-error", Static).update(plain(f"No such file: {text or '(empty)'}", one_line=True))
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
