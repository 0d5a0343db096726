"""F1 help for the focused control, and the list of every key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from picotui.ui.help_texts import HELP, reflow
from picotui.ui.keymap import keys_of
from picotui.ui.text import plain

# Keys handled inside widgets or screens (not app bindings), listed on the keys screen too.
OTHER_KEYS = [
    ("tab / shift+tab", "move between fields"),
    ("enter / space", "open a list, press a button, toggle the seed lock"),
    ("delete (on a LoRA)", "remove that LoRA row"),
    ("ctrl+o then 1–6", "model browser: checkpoints, VAEs, LoRAs, embeddings, previews, upscalers; enter picks, r rescans"),
    ("ctrl+o then 3, f", "model browser: mark the highlighted LoRA as few-step (LCM, TCD, Hyper-SD...) or unmark it"),
    ("f6 (in the form)", "apply the settings the job's few-step LoRA needs (steps, CFG, sampler)"),
    ("ctrl+t then enter", "history: restore the highlighted image's settings (seed included)"),
    ("ctrl+t then s", "history: save again an image whose save failed (it is kept in memory)"),
    ("escape", "close a dialog or screen"),
]


class HelpModal(ModalScreen):
    """Help for one control."""

    # F1 itself is an app key (it works in every dialog) and closes this one; ? opens the key list
    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="help_close"),
                Binding("question_mark", "app.keys", "Keys", id="help_keys")]

    def __init__(self, topic: str):
        super().__init__()
        self.topic = topic

    def compose(self) -> ComposeResult:
        title, body = HELP[self.topic]
        with Vertical(id="help-box", classes="dialog"):
            yield Static(title, classes="dialog-title", markup=False)
            with VerticalScroll():
                yield Static(reflow(body), id="help-body", markup=False)
            yield Static("escape closes · ? or F2 lists every key", classes="dim", markup=False)


def key_rows(bindings, keymap) -> list[tuple[str, str]]:
    """(keys, what they do) for each described binding, with the keymap's keys; keys for the same
    action share one row."""
    rows: dict[str, list] = {}
    for binding in bindings:
        if not binding.description:
            continue
        keys = keys_of(binding, keymap)
        if binding.action in rows:
            rows[binding.action][0] += f" / {keys}"
        else:
            rows[binding.action] = [keys, binding.tooltip or binding.description]
    return [(keys, desc) for keys, desc in rows.values()]


class KeysScreen(ModalScreen):
    """Every key of the app, built from the bindings (and the keymap) so the list cannot go stale."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="keys_close")]

    def __init__(self, bindings: list[Binding], keymap: dict[str, str], log_file=None):
        super().__init__()
        self.key_bindings, self.keymap = bindings, keymap
        self.log_file = log_file

    def compose(self) -> ComposeResult:
        rows = key_rows(self.key_bindings, self.keymap) + OTHER_KEYS
        width = max(len(k) for k, _d in rows) + 2
        text = "\n".join(f"{key:<{width}}{desc}" for key, desc in rows)
        with Vertical(id="keys-box", classes="dialog"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(text, id="keys-body", markup=False)
            if self.log_file is not None:
                yield Static(plain(f"Log file (attach it to a bug report): {self.log_file}"), id="keys-log")
            yield Static("escape closes · F1 on any control explains it", classes="dim", markup=False)
