""""Upscale this image" (A1111's Extras tab): a small dialog that picks the upscaler and the factor for the
image on screen, and closes with the UpscaleRequest the worker runs as its Extras job (jobs/extras.py).

The upscalers offered are the ones that work on pictures: None / Lanczos / Nearest (no model) and the upscaler
models in models/upscalers; the Latent family is hires fix's only (it works on latents, not on a file).
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from picotui.engine.errors import RequestError
from picotui.engine.upscaling.request import SCALE, UpscaleRequest
from picotui.ui.text import file_options, plain
from picotui.ui.validators import Decimal

DEFAULT_UPSCALER = "Lanczos"  # always there, no model needed
DEFAULT_SCALE = 2.0  # A1111's Extras defaults to 4; 2 keeps a 512² picture within what a small card handles


class UpscaleModal(ModalScreen[UpscaleRequest | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="upscale_cancel")]

    def __init__(self, source: Path, size: tuple[int, int], models: list[str], last: str | None = None):
        super().__init__()
        self.source, self.source_size, self.models = Path(source), size, models
        self.last = last if last in self.names() else DEFAULT_UPSCALER

    def names(self) -> list[str]:
        from picotui.engine.upscaling.upscalers import upscaler_names  # names only: no torch

        return [*upscaler_names(latent=False), *self.models]

    def compose(self) -> ComposeResult:
        with Vertical(id="upscale-box", classes="dialog"):
            yield Static("Upscale this image (A1111's Extras)", classes="dialog-title")
            width, height = self.source_size
            yield Static(plain(f"{self.source.name} · {width}×{height}", one_line=True), classes="dim")
            with Horizontal(classes="row"):
                with Vertical(classes="field wide"):
                    yield Label("Upscaler", classes="field-label")
                    yield Select(file_options(self.names(), self.last), id="upscale-upscaler", allow_blank=False,
                                 value=self.last, compact=True)
                with Vertical(classes="field"):
                    yield Label("Upscale by", classes="field-label")
                    yield Input(f"{DEFAULT_SCALE:g}", id="upscale-scale", compact=True, select_on_focus=True,
                                validators=[Decimal("Upscale by", *SCALE)], max_length=5)
                with Vertical(classes="field"):
                    yield Label(" ", classes="field-label")
                    yield Button("Upscale", id="upscale-go", variant="primary", compact=True)
            yield Static("", id="upscale-result", classes="dim")
            yield Static("enter upscales · shift+tab: the upscaler · escape cancels · saved in outputs/extras/ "
                         "with the source's recipe", classes="dim")

    def on_mount(self) -> None:
        self._show_result()
        self.query_one("#upscale-scale").focus()  # enter upscales at once; shift+tab picks another upscaler

    @on(Input.Changed)
    @on(Select.Changed)
    def _show_result(self) -> None:
        try:
            request = self.request()
        except (RequestError, ValueError) as exc:
            text = str(exc) if isinstance(exc, RequestError) else f"Upscale by: a number from {SCALE[0]:g} to {SCALE[1]:g}."
        else:
            from picotui.engine.upscaling.upscalers import target_size

            width, height = target_size(*self.source_size, request.scale)
            text = f"→ {width}×{height} with {request.upscaler}"
        self.query_one("#upscale-result", Static).update(plain(text, one_line=True))

    def request(self) -> UpscaleRequest:
        return UpscaleRequest(self.source, upscaler=str(self.query_one("#upscale-upscaler", Select).value),
                              scale=float(self.query_one("#upscale-scale", Input).value.strip()))

    @on(Input.Submitted)
    @on(Button.Pressed, "#upscale-go")
    def _go(self) -> None:
        try:
            request = self.request()
        except (RequestError, ValueError):
            return  # the result line already says what to change
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
