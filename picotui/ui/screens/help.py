"""F1 help for the focused control, and the list of every key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from picotui.ui.help_texts import HELP, reflow

# Keys handled inside widgets or screens (not app bindings), listed on the keys screen too.
OTHER_KEYS = [
    ("tab / shift+tab", "move between fields"),
    ("enter / space", "open a list, press a button, toggle the seed lock"),
    ("ctrl+n", "add a LoRA row"),
    ("delete (on a LoRA)", "remove that LoRA row"),
    ("ctrl+o then 1–4", "model browser: checkpoints, VAEs, LoRAs, embeddings; enter picks, r rescans"),
    ("ctrl+t then enter", "history: restore the highlighted image's settings (seed included)"),
    ("escape", "close a dialog or screen; on the main screen cancel the running job"),
]


class HelpModal(ModalScreen):
    """Help for one control."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, topic: str):
        super().__init__()
        self.topic = topic

    def compose(self) -> ComposeResult:
        title, body = HELP[self.topic]
        with Vertical(id="help-box", classes="dialog"):
            yield Static(title, classes="dialog-title", markup=False)
            with VerticalScroll():
                yield Static(reflow(body), id="help-body", markup=False)
            yield Static("escape closes · ? lists every key", classes="dim")


class KeysScreen(ModalScreen):
    """Every key of the app, built from the app's bindings so the list cannot go stale."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        rows = []
        for binding in self.app.BINDINGS:
            if isinstance(binding, Binding) and binding.description:
                rows.append((binding.key_display or binding.key.replace(",", " / "), binding.description))
        rows += OTHER_KEYS
        width = max(len(k) for k, _d in rows) + 2
        text = "\n".join(f"{key:<{width}}{desc}" for key, desc in rows)
        with Vertical(id="keys-box", classes="dialog"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(text, id="keys-body", markup=False)
            yield Static("escape closes · F1 on any control explains it", classes="dim")
