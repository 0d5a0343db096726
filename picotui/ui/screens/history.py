"""History: this session's images and earlier ones from outputs/, newest first.

The left list is browsable with the arrow keys; the right panel shows the highlighted image's
settings and what differs from the current form. Enter restores the settings (seed included, and
locked) into the form. Recipes of older PNGs are read lazily, when highlighted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from picotui.engine.request import GenerationRequest
from picotui.ui.text import escape_controls, plain, shorten

COMPARED = [("prompt", "prompt"), ("negative_prompt", "negative"), ("checkpoint", "checkpoint"), ("vae", "VAE"),
            ("loras", "LoRAs"), ("sampler", "sampler"), ("steps", "steps"), ("cfg", "CFG"), ("width", "width"),
            ("height", "height"), ("seed", "seed"), ("clip_skip", "clip skip"), ("batch_count", "batch")]


@dataclass
class HistoryEntry:
    path: Path | None
    request: GenerationRequest | None = None  # None until read (older PNGs) or when unreadable
    session: bool = False
    problem: str | None = None  # why the recipe could not be read
    unmatched: list[str] = field(default_factory=list)
    source: str = "picotui"
    image: object = None  # the PIL image for session entries

    @property
    def label(self) -> str:
        name = self.path.name if self.path else "(not saved)"
        where = "this session" if self.session else (self.path.parent.name if self.path else "")
        prompt = shorten(self.request.prompt, 50) if self.request else ""
        return escape_controls(f"{name:<20} {where:<12} {prompt}", keep_newlines=False)


def _value(request: GenerationRequest, name: str) -> str:
    value = getattr(request, name)
    if name == "loras":
        return ", ".join(f"{l.name}:{l.weight:g}" for l in value) or "none"
    if name == "vae":
        return value or "checkpoint's own"
    if name == "cfg":
        return f"{value:g}"
    return "random" if value is None else str(value)


def describe(entry: HistoryEntry, current: GenerationRequest | None) -> str:
    if entry.request is None:
        return entry.problem or "Reading its settings…"
    lines = [f"{label:<11} {_value(entry.request, name)}" for name, label in COMPARED]
    if entry.path:
        lines.insert(0, f"file        {entry.path}")
    if entry.unmatched:
        lines.append(f"not used    {', '.join(entry.unmatched)}")
    if current is not None:
        diffs = [f"  {label}: {_value(entry.request, name)!s:.40} → yours {_value(current, name)!s:.40}"
                 for name, label in COMPARED if _value(entry.request, name) != _value(current, name)]
        lines.append("")
        lines.append("Differs from your form:" if diffs else "Same settings as your form.")
        lines.extend(diffs)
    return escape_controls("\n".join(lines))


class HistoryScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("enter", "restore", "Restore settings", priority=True),
                Binding("r", "restore", "Restore", show=False)]

    class Restore(Message):
        def __init__(self, entry: HistoryEntry):
            super().__init__()
            self.entry = entry

    def __init__(self, entries: list[HistoryEntry], current: GenerationRequest | None, read_recipe):
        super().__init__()
        self.entries = entries
        self.current = current
        self.read_recipe = read_recipe  # path -> HistoryEntry fields (runs in a thread)

    def compose(self) -> ComposeResult:
        with Horizontal(id="history"):
            if self.entries:
                yield OptionList(*[Option(e.label, id=str(i)) for i, e in enumerate(self.entries)],
                                 id="history-list")
            else:
                yield Static("No images yet: generate one with ctrl+g (they are saved in outputs/).",
                             id="history-list")
            with VerticalScroll(id="history-detail-box"):
                yield Static("", id="history-detail")
        yield Footer()

    def on_mount(self) -> None:
        if self.entries:
            options = self.query_one(OptionList)
            options.highlighted = 0
            options.focus()
            self._show(0)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show(int(event.option.id))

    def _show(self, index: int) -> None:
        entry = self.entries[index]
        self.query_one("#history-detail", Static).update(plain(describe(entry, self.current)))
        if entry.request is None and entry.problem is None and entry.path is not None:
            self.run_worker(lambda: self._read(index), thread=True, group="recipe")

    def _read(self, index: int) -> None:
        entry = self.entries[index]
        self.read_recipe(entry)
        self.app.call_from_thread(self._refresh_entry, index)

    def _refresh_entry(self, index: int) -> None:
        options = self.query_one(OptionList)
        options.replace_option_prompt_at_index(index, self.entries[index].label)
        if options.highlighted == index:
            self._show(index)

    def action_restore(self) -> None:
        if not self.entries:
            return
        index = self.query_one(OptionList).highlighted
        if index is None:
            return
        entry = self.entries[index]
        if entry.request is None:
            self.notify(entry.problem or "Its settings are still being read; try again.", severity="warning",
                        markup=False)
            return
        self.post_message(self.Restore(entry))
