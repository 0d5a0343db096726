"""Compare two images from the history: side by side with the settings that differ highlighted, or flipped
in one place with a key (space), which is how small differences are spotted.

Opened from the history (m marks an image, c compares the two marked ones, or the marked one with the
highlighted one). The differences are the history's own comparison (screens/history.py COMPARED).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from picotui.ui.screens.history import COMPARED, HistoryEntry, _value, compared_fields, load_picture
from picotui.ui.text import escape_controls, shorten
from picotui.ui.widgets.image_pane import ImagePane


def differences(a, b) -> list[tuple[str, str, str]]:
    """(label, A's value, B's value) for every compared setting that differs (the noise and second-pass
    settings too: a hires picture beside a plain one differs in its hires fix)."""
    return [(label, _value(a, name), _value(b, name)) for name, label in compared_fields(a, b)
            if _value(a, name) != _value(b, name)]


def diff_text(a, b) -> Text:
    """Differences first, highlighted; then what is the same, dim."""
    text = Text()
    diffs = differences(a, b)
    text.append("Differs:\n" if diffs else "Same settings.\n", style="bold")
    for label, va, vb in diffs:
        text.append(f"  {label:<10} ", style="bold")
        text.append(escape_controls(shorten(va, 60)), style="bold yellow")
        text.append("  ↔  ")
        text.append(escape_controls(shorten(vb, 60)) + "\n", style="bold cyan")
    same = [label for name, label in COMPARED if _value(a, name) == _value(b, name)]
    if same and diffs:
        text.append(f"Same: {', '.join(same)}", style="dim")
    return text


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="compare_back"),
                Binding("space", "flip", "Flip A/B", id="compare_flip"),
                Binding("s", "side_by_side", "Side by side", id="compare_side_by_side")]

    def __init__(self, a: HistoryEntry, b: HistoryEntry):
        super().__init__()
        self.entries = (a, b)
        self.pictures = tuple(e.image if e.image is not None else (load_picture(e.path) if e.path else None)
                              for e in (a, b))
        self.showing: int | None = None  # None: side by side; 0 or 1: the one shown in flip mode

    def compose(self) -> ComposeResult:
        with Vertical(id="compare"):
            with Horizontal(id="compare-images"):
                yield ImagePane(empty="", id="compare-a")
                yield ImagePane(empty="", id="compare-b")
            with VerticalScroll(id="compare-diff-box"):
                yield Static(diff_text(self.entries[0].request, self.entries[1].request), id="compare-diff")
        yield Footer()

    def on_mount(self) -> None:
        self._draw()

    def _caption(self, i: int) -> str:
        entry = self.entries[i]
        name = entry.path.name if entry.path else "not saved"
        return f"{'AB'[i]}: {name} · seed {entry.request.seed}"

    def _draw(self) -> None:
        a, b = self.query_one("#compare-a", ImagePane), self.query_one("#compare-b", ImagePane)
        if self.showing is None:
            b.display = True
            a.show(self.pictures[0], self._caption(0))
            b.show(self.pictures[1], self._caption(1))
        else:
            b.display = False
            i = self.showing
            a.show(self.pictures[i], f"{self._caption(i)} · space flips, s side by side")

    def action_flip(self) -> None:
        self.showing = 0 if self.showing is None else 1 - self.showing
        self._draw()

    def action_side_by_side(self) -> None:
        self.showing = None
        self._draw()

    def picture(self):
        i = self.showing or 0
        return (self.pictures[i], self._caption(i)) if self.pictures[i] is not None else None
