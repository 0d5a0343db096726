"""The form's "Second pass" section: img2img (a source image, how it is fitted, how much is redrawn) and
hires fix (upscale the first pass by a factor or to a size, with an upscaler, and denoise it again), with
A1111's labels and defaults. Collapsed by default (F9 toggles it); its title says what is on, so a folded
section never hides a second pass.

`fields()` gives the GenerationRequest fields, `load(request)` fills the section from one. The source is a
file path (the request carries the path; the job hashes the file); the UI reads the file only to show its
name and size, and the picture beside the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Collapsible, Input, Label, Select, Static, TextArea

from picotui.engine.errors import RequestError
from picotui.engine.request import (
    DEFAULT_DENOISING_STRENGTH,
    DEFAULT_HIRES_DENOISING_STRENGTH,
    DEFAULT_HIRES_UPSCALER,
    RESIZE_MODES,
    GenerationRequest,
)
from picotui.engine.sampling.samplers import SAMPLER_NAMES
from picotui.engine.sampling.schedules import SCHEDULE_TYPES
from picotui.ui.text import escape_controls, file_options, label, plain, shorten
from picotui.ui.widgets.fields import labelled_input

SAME = "__same__"  # the hires sampler / schedule select's "same as the first pass" ("" in the request)
NO_SOURCE = "none (text to image)"


def upscaler_options(models: list[str], current: str) -> list:
    """The hires upscaler select, in A1111's order: the Latent family, None / Lanczos / Nearest, then the
    upscaler models of models/upscalers by file stem; a current one that is not installed (from a recipe)
    stays, marked as such."""
    from picotui.engine.upscaling.upscalers import upscaler_names  # names only: torch loads inside functions

    return file_options([*upscaler_names(), *models], current)


def source_label(path: str | None) -> str:
    """The source row's text: the file's name and size, or why it cannot be used."""
    if not path:
        return NO_SOURCE
    name = Path(path).name
    try:
        from PIL import Image

        with Image.open(path) as im:
            return f"{name} · {im.width}×{im.height}"
    except OSError:
        return f"{name} · not readable here (the job will say why)"


def summary(request: GenerationRequest) -> str:
    """The section's title: what the second pass does, readable while the section is folded."""
    if request.init_image:
        return (f"Second pass (F9): img2img from {Path(request.init_image).name} · denoising "
                f"{request.denoising_strength:g}")
    if request.hires:
        width, height, crop_x, crop_y = request.hires_size()  # the crop is in latent pixels, 8 image pixels each
        width, height = width - 8 * crop_x, height - 8 * crop_y
        return (f"Second pass (F9): hires → {width}×{height} · denoising {request.denoising_strength:g} · "
                f"{request.hires_upscaler}")
    return "Second pass (F9): off"


class SecondPass(Collapsible):
    """The section. Its inputs are the form's fields too (fields.INPUTS): the form validates them."""

    DEFAULT_CSS = """
    SecondPass { padding: 0; border-top: none; background: transparent; }
    SecondPass > Contents { padding: 0 0 0 1; }
    SecondPass #source-name { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    SecondPass #hires-prompt { height: 3; }
    SecondPass #hires-negative { height: 2; }
    """

    def __init__(self, request: GenerationRequest, **kwargs):
        super().__init__(title="Second pass", collapsed=True, **kwargs)
        self._initial = request
        self.source: str | None = request.init_image
        self.upscaler_models: list[str] = []
        # The denoising strength follows A1111's default for what the pass is (0.75 img2img, 0.7 hires) while
        # it shows the default the section last put there: a typed or restored other value stays.
        self._default_shown = _default_strength(request.hires)
        self._quiet = False

    def compose(self) -> ComposeResult:
        r = self._initial
        yield self._title
        with self.Contents():
            with Horizontal(classes="row"):
                with Vertical(classes="field wide"):
                    yield Label("Source image (img2img)", classes="field-label")
                    yield Static(plain(source_label(r.init_image), one_line=True), id="source-name",
                                 classes="help-source-name")
                with Vertical(classes="field"):
                    yield Label(" ", classes="field-label")
                    yield Button("file…", id="source-choose", compact=True)
                with Vertical(classes="field"):
                    yield Label(" ", classes="field-label")
                    yield Button("clear", id="source-clear", compact=True)
            with Horizontal(classes="row"):
                with Vertical(classes="field wide"):
                    yield Label("Resize mode", classes="field-label")
                    yield Select([(m, m) for m in RESIZE_MODES], id="resize-mode", allow_blank=False,
                                 value=r.resize_mode, compact=True)
                yield labelled_input("denoising", f"{r.denoising_strength:g}")
            with Horizontal(classes="row"):
                with Vertical(classes="field"):
                    yield Label(" ", classes="field-label")
                    yield Checkbox("Hires fix", r.hires, id="hires", compact=True)
                yield labelled_input("hires-scale", f"{r.hires_scale:g}")
                yield labelled_input("hires-resize", _resize_text(r))
                with Vertical(classes="field wide"):
                    yield Label("Upscaler", classes="field-label")
                    yield Select(upscaler_options([], r.hires_upscaler), id="hires-upscaler", allow_blank=False,
                                 value=r.hires_upscaler, compact=True)
            with Horizontal(classes="row"):
                yield labelled_input("hires-steps", str(r.hires_steps))
                with Vertical(classes="field wide"):
                    yield Label("Hires sampler", classes="field-label")
                    yield Select(_same_options(SAMPLER_NAMES), id="hires-sampler", allow_blank=False,
                                 value=r.hires_sampler or SAME, compact=True)
                with Vertical(classes="field wide"):
                    yield Label("Hires schedule", classes="field-label")
                    yield Select(_same_options(SCHEDULE_TYPES), id="hires-schedule", allow_blank=False,
                                 value=r.hires_schedule_type or SAME, compact=True)
            yield Label("Hires prompt (empty: the prompt)", classes="field-label")
            yield TextArea(r.hires_prompt, id="hires-prompt", soft_wrap=True, compact=True)
            yield Label("Hires negative prompt (empty: the negative prompt)", classes="field-label")
            yield TextArea(r.hires_negative_prompt, id="hires-negative", soft_wrap=True, compact=True)

    def on_mount(self) -> None:
        self.retitle()

    # ---- reading ----------------------------------------------------------------------------------
    def fields(self) -> dict[str, Any]:
        """The section as GenerationRequest keyword arguments (the form has validated the inputs)."""
        value = lambda field_id: self.query_one(f"#{field_id}", Input).value.strip()  # noqa: E731
        select = lambda field_id: str(self.query_one(f"#{field_id}", Select).value)  # noqa: E731
        return dict(
            init_image=self.source, resize_mode=select("resize-mode"),
            denoising_strength=float(value("denoising")),
            hires=self.query_one("#hires", Checkbox).value, hires_scale=float(value("hires-scale")),
            hires_resize=value("hires-resize") or None, hires_upscaler=select("hires-upscaler"),
            hires_steps=int(value("hires-steps")),
            hires_sampler="" if select("hires-sampler") == SAME else select("hires-sampler"),
            hires_schedule_type="" if select("hires-schedule") == SAME else select("hires-schedule"),
            hires_prompt=self.query_one("#hires-prompt", TextArea).text,
            hires_negative_prompt=self.query_one("#hires-negative", TextArea).text)

    # ---- writing ----------------------------------------------------------------------------------
    def load(self, request: GenerationRequest) -> None:
        """Fill the section from `request`; it opens when the request has a second pass."""
        self._quiet = True
        try:
            self.set_source(request.init_image)
            self.query_one("#resize-mode", Select).value = request.resize_mode
            self.query_one("#hires", Checkbox).value = request.hires
            for field_id, text in (("denoising", f"{request.denoising_strength:g}"),
                                   ("hires-scale", f"{request.hires_scale:g}"),
                                   ("hires-resize", _resize_text(request)),
                                   ("hires-steps", str(request.hires_steps))):
                self.query_one(f"#{field_id}", Input).value = text
            self._set_upscaler(request.hires_upscaler)
            self.query_one("#hires-sampler", Select).value = request.hires_sampler or SAME
            self.query_one("#hires-schedule", Select).value = request.hires_schedule_type or SAME
            self.query_one("#hires-prompt", TextArea).load_text(escape_controls(request.hires_prompt))
            self.query_one("#hires-negative", TextArea).load_text(escape_controls(request.hires_negative_prompt))
        finally:
            self._quiet = False
        self._default_shown = _default_strength(request.hires)
        if request.hires or request.init_image:
            self.collapsed = False
        self.retitle()

    def set_source(self, path: str | None) -> None:
        """Use `path` as the img2img source (None: text to image again)."""
        self.source = path or None
        self.query_one("#source-name", Static).update(plain(source_label(self.source), one_line=True))
        self.retitle()

    def set_upscalers(self, models: list[str]) -> None:
        """The upscaler models the library lists (models/upscalers), after the built-in upscalers."""
        self.upscaler_models = list(models)
        self._set_upscaler(str(self.query_one("#hires-upscaler", Select).value))

    def use_upscaler(self, name: str) -> None:
        """Pick `name` as the hires upscaler (from the model browser)."""
        self._set_upscaler(name)
        self.retitle()

    def _set_upscaler(self, name: str) -> None:
        select = self.query_one("#hires-upscaler", Select)
        select.set_options(upscaler_options(self.upscaler_models, name or DEFAULT_HIRES_UPSCALER))
        select.value = name or DEFAULT_HIRES_UPSCALER

    def hires_on(self) -> bool:
        return self.query_one("#hires", Checkbox).value

    def switch_hires_off(self) -> None:
        """Hires fix off, and the strength back to img2img's default now (not when the checkbox's message
        arrives) when it showed hires fix's."""
        self.query_one("#hires", Checkbox).value = False
        self._follow_default(False)

    # ---- live behaviour ---------------------------------------------------------------------------
    @on(Checkbox.Changed, "#hires")
    def _hires_switched(self, event: Checkbox.Changed) -> None:
        if not self._quiet:
            self._follow_default(event.value)

    def _follow_default(self, hires: bool) -> None:
        # A1111's hires fix starts at 0.7 where its img2img starts at 0.75: follow it unless the user changed it
        strength = self.query_one("#denoising", Input)
        if strength.value.strip() == self._default_shown:
            self._default_shown = _default_strength(hires)
            strength.value = self._default_shown

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def retitle(self) -> None:
        """The title says what the pass will do (or the first problem), folded or not."""
        try:
            size: dict[str, Any] = {side: int(self.screen.query_one(f"#{side}", Input).value)
                                    for side in ("width", "height")}
        except Exception:  # no screen yet, or a half-typed size: the request's default stands in
            size = {}
        try:
            request = GenerationRequest(**self.fields(), **size)
        except RequestError as exc:  # e.g. hires fix ticked with a source image: say which
            text = f"Second pass (F9): {exc}"
        except (ValueError, TypeError):  # a half-typed number: its field shows the error
            text = "Second pass (F9): check its fields"
        else:
            text = summary(request)
        self.title = plain(shorten(text, 80), one_line=True)  # type: ignore[assignment]

    @on(Button.Pressed, "#source-clear")
    def _clear_pressed(self) -> None:
        self.set_source(None)


def _default_strength(hires: bool) -> str:
    """A1111's denoising strength default, as the field shows it: hires fix's, or img2img's."""
    return f"{DEFAULT_HIRES_DENOISING_STRENGTH if hires else DEFAULT_DENOISING_STRENGTH:g}"


def _same_options(names) -> list:
    return [(label("same as first pass"), SAME), *[(n, n) for n in names]]


def _resize_text(request: GenerationRequest) -> str:
    resize = request.hires_resize
    return f"{resize[0]}x{resize[1]}" if resize else ""
