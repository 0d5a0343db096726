"""The LoRA panel: one row per LoRA (file Select + weight Input + remove Button); ctrl+n adds a row."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Select, Static

from picotui.engine.request import DEFAULT_LORA_WEIGHT, LORA_WEIGHT, LoraSpec
from picotui.ui.text import file_options, plain
from picotui.ui.validators import Decimal


class LoraRow(Horizontal):
    BINDINGS = [Binding("delete", "remove", "Remove LoRA", show=False, id="lora_remove")]

    class Removed(Message):
        def __init__(self, row: LoraRow):
            super().__init__()
            self.row = row

    def __init__(self, names: list[str], name: str | None = None, weight: float = DEFAULT_LORA_WEIGHT):
        super().__init__(classes="lora-row")
        self._names = names
        self._name = name
        self._weight = weight

    def compose(self) -> ComposeResult:
        # compact widgets, like the rest of the form: one line per row, the error line below only when shown
        yield Select(file_options(self._names, self._name), prompt="LoRA file", allow_blank=True,
                     value=self._name if self._name else Select.NULL, classes="lora-name help-lora-name",
                     compact=True)
        with Vertical(classes="lora-weight-box"):
            yield Input(f"{self._weight:g}", placeholder="0.8", classes="lora-weight help-lora-weight",
                        validators=[Decimal("LoRA weight", *LORA_WEIGHT)], max_length=8, compact=True,
                        select_on_focus=True)
            yield Static("", classes="field-error")
        yield Button("remove", classes="lora-remove help-lora-remove", compact=True)

    @property
    def spec(self) -> tuple[str | None, str]:
        select = self.query_one(".lora-name", Select)
        value = None if select.is_blank() else str(select.value)
        return value, self.query_one(".lora-weight", Input).value

    def set_names(self, names: list[str]) -> None:
        select = self.query_one(".lora-name", Select)
        current = None if select.is_blank() else str(select.value)
        self._names = names
        select.set_options(file_options(names, current))
        if current:
            select.value = current

    def action_remove(self) -> None:
        self.post_message(self.Removed(self))

    @on(Input.Changed, ".lora-weight")
    def _weight_changed(self, event: Input.Changed) -> None:
        result = event.validation_result
        error = "" if result is None or result.is_valid else result.failure_descriptions[0]
        error_line = self.query_one(".field-error", Static)
        error_line.update(plain(error, one_line=True))
        error_line.display = bool(error)

    @on(Button.Pressed, ".lora-remove")
    def _remove_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_remove()


class LoraPanel(Vertical):
    """Holds LoraRows. `specs()` returns (LoraSpec list, first problem or None)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.names: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("none – ctrl+n adds a LoRA", classes="lora-empty dim")

    def rows(self) -> list[LoraRow]:
        return list(self.query(LoraRow))

    def add(self, name: str | None = None, weight: float = DEFAULT_LORA_WEIGHT, focus: bool = True) -> LoraRow:
        row = LoraRow(self.names, name, weight)
        self.mount(row)
        self.query_one(".lora-empty").display = False
        if focus:
            self.call_after_refresh(lambda: row.query_one(".lora-name", Select).focus())
        return row

    def clear(self) -> None:
        for row in self.rows():
            row.remove()
        self.query_one(".lora-empty").display = True

    def set_names(self, names: list[str]) -> None:
        self.names = names
        for row in self.rows():
            row.set_names(names)

    def specs(self) -> tuple[list[LoraSpec], str | None]:
        specs = []
        for number, row in enumerate(self.rows(), 1):
            name, weight = row.spec
            if not name:
                return [], f"LoRA row {number} has no file: pick one, or remove the row."
            weight_input = row.query_one(".lora-weight", Input)
            result = weight_input.validate(weight)
            if result is not None and not result.is_valid:
                return [], result.failure_descriptions[0]
            specs.append(LoraSpec(name, float(weight)))
        return specs, None

    @on(LoraRow.Removed)
    def _removed(self, event: LoraRow.Removed) -> None:
        rows = self.rows()
        index = rows.index(event.row) if event.row in rows else 0
        event.row.remove()
        remaining = [r for r in rows if r is not event.row]
        self.query_one(".lora-empty").display = not remaining
        if remaining:
            remaining[min(index, len(remaining) - 1)].query_one(".lora-name", Select).focus()
        else:
            self.screen.focus_next()
