"""The job form: every control of a GenerationRequest, validated as you type.

`request()` builds a GenerationRequest (raising RequestError with the first problem, also shown in
the form), `load(request)` fills the form from one (history, a PNG, the saved settings).
"""

from __future__ import annotations

import random
from dataclasses import replace

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from picotui.engine.errors import RequestError
from picotui.engine.request import MAX_PROMPT_CHARS, MAX_SEED, GenerationRequest
from picotui.engine.sampling.noise import RNG_SOURCES
from picotui.engine.sampling.samplers import SAMPLER_NAMES
from picotui.engine.sampling.schedules import SCHEDULE_TYPES
from picotui.ui import demo_size
from picotui.ui.few_step_hint import FewStepHint
from picotui.ui.text import escape_controls, file_options, has_controls, plain
from picotui.ui.widgets.fields import INPUTS, labelled_input
from picotui.ui.widgets.lora_rows import LoraPanel, LoraRow
from picotui.ui.widgets.second_pass import SecondPass

OWN_VAE = "__own__"
DEMO = "demo"
PRESETS = [("512×512", "512x512"), ("512×768 portrait", "512x768"), ("768×512 landscape", "768x512"),
           ("768×768", "768x768")]

class JobForm(FewStepHint, VerticalScroll, can_focus=False):
    BINDINGS = [Binding("f6", "apply_few_step", "Few-step", show=False, priority=True, id="apply_few_step", tooltip="apply the settings the job's few-step LoRA "
                                                                   "needs (steps, CFG, sampler)")]

    def __init__(self, request: GenerationRequest, seed_locked: bool, **kwargs):
        super().__init__(**kwargs)
        self._initial = request
        self._initial_locked = seed_locked
        self.checkpoints: list[str] = []
        self.vaes: list[str] = []
        self._quiet = False  # set while the form fills itself, so presets/size don't chase each other
        self.embedding_vectors: dict[str, int] = {}  # embedding name -> vectors, for the token counter
        self._count_timer = None  # the pending recount after typing (debounced)
        self.size_chosen = False  # the user typed, picked or restored a size (else the demo may use 256²)
        self._size_at_start = (str(request.width), str(request.height))

    # ---- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        r = self._initial
        with Horizontal(classes="prompt-head"):
            yield Label("Prompt", classes="field-label")
            yield Static("", id="prompt-tokens", classes="tokens")
        yield TextArea(r.prompt, id="prompt", soft_wrap=True, show_line_numbers=False, compact=True)
        with Horizontal(classes="prompt-head"):
            yield Label("Negative prompt", classes="field-label")
            yield Static("", id="negative-tokens", classes="tokens")
        yield TextArea(r.negative_prompt, id="negative", soft_wrap=True, compact=True)
        with Horizontal(classes="row"):
            with Vertical(classes="field wide"):
                yield Label("Checkpoint", classes="field-label")
                yield Select(file_options([], r.checkpoint, (DEMO, DEMO)), id="checkpoint", allow_blank=False,
                             value=r.checkpoint, compact=True)
            with Vertical(classes="field wide"):
                yield Label("VAE", classes="field-label")
                yield Select(file_options([], r.vae, ("checkpoint's own", OWN_VAE)), id="vae",
                             allow_blank=False, value=r.vae or OWN_VAE, compact=True)
        with Horizontal(classes="row"):
            yield Label("LoRAs", classes="field-label")
            yield Button("add (ctrl+n)", id="lora-add", classes="help-lora-add", compact=True)
        yield LoraPanel(id="loras")
        yield Static("", id="few-step-hint", classes="tokens")
        with Horizontal(classes="row"):
            with Vertical(classes="field wide"):
                yield Label("Sampler", classes="field-label")
                yield Select([(n, n) for n in SAMPLER_NAMES], id="sampler", allow_blank=False, value=r.sampler,
                             compact=True)
            with Vertical(classes="field wide"):
                yield Label("Schedule type", classes="field-label")
                yield Select([(n, n) for n in SCHEDULE_TYPES], id="schedule-type", allow_blank=False,
                             value=r.schedule_type, compact=True)
            yield labelled_input("steps", str(r.steps))
            yield labelled_input("cfg", f"{r.cfg:g}")
        with Horizontal(classes="row"):
            yield labelled_input("width", str(r.width))
            yield labelled_input("height", str(r.height))
            with Vertical(classes="field wide"):
                yield Label("Size presets", classes="field-label")
                yield Select(PRESETS, id="size-preset", prompt="presets", compact=True)
        yield Static("", id="size-note", classes="dim")
        with Horizontal(classes="row"):
            yield labelled_input("seed", "" if r.seed is None else str(r.seed))
            with Vertical(classes="field"):
                yield Label(" ", classes="field-label")
                yield Checkbox("lock", self._initial_locked, id="seed-lock", compact=True)
            with Vertical(classes="field"):
                yield Label(" ", classes="field-label")
                yield Button("new random", id="seed-random", compact=True)
        with Horizontal(classes="row"):
            yield labelled_input("clip-skip", str(r.clip_skip))
            yield labelled_input("batch", str(r.batch_count))
            with Vertical(classes="field wide"):
                yield Label(" ", classes="field-label")
                yield Button("Generate ^g", id="generate", variant="primary", compact=True)
        noise = _noise_texts(r)
        with Horizontal(classes="row"):
            with Vertical(classes="field"):
                yield Label("RNG", classes="field-label")
                yield Select([(n, n) for n in RNG_SOURCES], id="rng", allow_blank=False, value=r.rng, compact=True)
            for field_id, text in noise[:2]:
                yield labelled_input(field_id, text)
        with Horizontal(classes="row"):
            for field_id, text in noise[2:]:
                yield labelled_input(field_id, text)
        with Horizontal(classes="row"):  # A1111's speed settings (its "Optimizations" page), per job here
            yield labelled_input("tome", f"{r.token_merging_ratio:g}")
            yield labelled_input("ngms", f"{r.ngms:g}")
        yield SecondPass(r, id="second-pass")
        yield Static("", id="form-error")  # shown only with a message (show_error)

    def on_mount(self) -> None:
        for spec in self._initial.loras:
            self.query_one(LoraPanel).add(spec.name, spec.weight, focus=False)
        self._sync_preset()
        self._demo_note()
        self.call_after_refresh(self.refresh_few_step)

    def _demo_note(self) -> None:
        """Say when the demo model will make a smaller picture than the size fields show."""
        try:
            width, height = (int(self.query_one(f"#{f}", Input).value) for f in ("width", "height"))
        except ValueError:
            width = height = 0
        checkpoint = str(self.query_one("#checkpoint", Select).value)
        note = self.query_one("#size-note", Static)
        shown = demo_size.applies(checkpoint, width, height, self.size_chosen)
        note.update(demo_size.NOTE if shown else "")
        note.display = shown

    @on(Select.Changed, "#checkpoint")
    def _checkpoint_changed(self) -> None:
        self._demo_note()

    # ---- models from the library -----------------------------------------------------------------
    def set_models(self, checkpoints: list[str], vaes: list[str], loras: list[str]) -> None:
        self.checkpoints, self.vaes = checkpoints, vaes
        self._quiet = True
        try:
            for sel_id, names, first in (("checkpoint", checkpoints, (DEMO, DEMO)),
                                         ("vae", vaes, ("checkpoint's own", OWN_VAE))):
                select = self.query_one(f"#{sel_id}", Select)
                current = str(select.value)
                select.set_options(file_options(names, current, first))
                select.value = current
            self.query_one(LoraPanel).set_names(loras)
        finally:
            self._quiet = False

    # ---- reading the form -------------------------------------------------------------------------
    @property
    def seed_locked(self) -> bool:
        return self.query_one("#seed-lock", Checkbox).value

    def request(self) -> GenerationRequest:
        """The form as a request (seed None when the field is empty). Raises RequestError, shown in the form."""
        try:
            request = self._build()
        except RequestError as exc:
            self.show_error(str(exc))
            raise
        self.show_error("")
        return request

    def _build(self) -> GenerationRequest:
        for field_id in INPUTS:
            widget = self.query_one(f"#{field_id}", Input)
            result = widget.validate(widget.value)
            if result is not None and not result.is_valid:
                raise RequestError(result.failure_descriptions[0])
        loras, problem = self.query_one(LoraPanel).specs()
        if problem:
            raise RequestError(problem)
        value = lambda field_id: self.query_one(f"#{field_id}", Input).value.strip()  # noqa: E731
        vae = str(self.query_one("#vae", Select).value)
        return GenerationRequest(
            prompt=self.query_one("#prompt", TextArea).text,
            negative_prompt=self.query_one("#negative", TextArea).text,
            checkpoint=str(self.query_one("#checkpoint", Select).value),
            vae=None if vae == OWN_VAE else vae, loras=tuple(loras),
            sampler=str(self.query_one("#sampler", Select).value),
            schedule_type=str(self.query_one("#schedule-type", Select).value),
            steps=int(value("steps")), cfg=float(value("cfg")), width=int(value("width")),
            height=int(value("height")), seed=int(value("seed")) if value("seed") else None,
            clip_skip=int(value("clip-skip")), batch_count=int(value("batch")),
            rng=str(self.query_one("#rng", Select).value),
            variation_seed=int(value("variation-seed")) if value("variation-seed") else None,
            variation_strength=float(value("variation-strength")), seed_resize_from=value("seed-resize") or None,
            eta_noise_seed_delta=int(value("ensd")),
            token_merging_ratio=float(value("tome")), ngms=float(value("ngms")), **self.second_pass.fields())

    @property
    def second_pass(self) -> SecondPass:
        return self.query_one(SecondPass)

    def next_request(self) -> GenerationRequest:
        """The request for a new job: unlocked -> a fresh random seed (shown in the field); locked -> the field's."""
        request = demo_size.for_demo(self.request(), self.size_chosen)
        if not self.seed_locked or request.seed is None:
            request = replace(request, seed=self.new_random_seed())
        return request

    def show_error(self, message: str) -> None:
        error = self.query_one("#form-error", Static)
        error.update(plain(message, one_line=True))
        error.display = bool(message)  # no empty line at the form's end: at 140×45 the form fits without scrolling

    # ---- writing the form -------------------------------------------------------------------------
    def load(self, request: GenerationRequest, *, lock_seed: bool | None = None) -> list[str]:
        """Fill the form from `request`. Returns notes (e.g. control characters that were escaped)."""
        notes = []
        self._quiet = True
        try:
            for area_id, text in (("prompt", request.prompt), ("negative", request.negative_prompt)):
                if has_controls(text):
                    notes.append(f"The {area_id} prompt held control characters; they are shown escaped.")
                self.query_one(f"#{area_id}", TextArea).load_text(escape_controls(text))
            self.set_model("checkpoint", request.checkpoint)
            self.set_model("vae", request.vae)
            self.query_one("#sampler", Select).value = request.sampler
            self.query_one("#schedule-type", Select).value = request.schedule_type
            for field_id, text in (("steps", str(request.steps)), ("cfg", f"{request.cfg:g}"),
                                   ("width", str(request.width)), ("height", str(request.height)),
                                   ("seed", "" if request.seed is None else str(request.seed)),
                                   ("clip-skip", str(request.clip_skip)), ("batch", str(request.batch_count)),
                                   *_noise_texts(request), ("tome", f"{request.token_merging_ratio:g}"),
                                   ("ngms", f"{request.ngms:g}")):
                self.query_one(f"#{field_id}", Input).value = text
            self.query_one("#rng", Select).value = request.rng
            panel = self.query_one(LoraPanel)
            panel.clear()
            for spec in request.loras:
                panel.add(spec.name, spec.weight, focus=False)
            if lock_seed is not None:
                self.query_one("#seed-lock", Checkbox).value = lock_seed
            self.second_pass.load(request)
        finally:
            self._quiet = False
        self.size_chosen = True  # a restored recipe's size is a chosen one
        self._sync_preset()
        self._demo_note()
        self.call_after_refresh(self.refresh_few_step)
        self.show_error("")
        return notes

    def set_model(self, sel_id: str, value: str | None) -> None:
        """Select `value` in the checkpoint or VAE list (added as "not installed" when unknown)."""
        names, first = (self.checkpoints, (DEMO, DEMO)) if sel_id == "checkpoint" else \
            (self.vaes, ("checkpoint's own", OWN_VAE))
        value = value or OWN_VAE
        select = self.query_one(f"#{sel_id}", Select)
        select.set_options(file_options(names, value, first))
        select.value = value

    def prepare_variation(self) -> str:
        """"Vary this picture": keep the seed (locked), a new random variation seed, the form's strength
        (0.1 if it was 0, A1111's small-change range). Returns what to tell the user; RequestError when the
        form has no seed to vary."""
        seed = self.query_one("#seed", Input).value.strip()
        if not seed:
            raise RequestError("Nothing to vary yet: generate a picture (or type its seed) first.")
        strength_input = self.query_one("#variation-strength", Input)
        try:
            strength = float(strength_input.value)
        except ValueError:
            strength = 0.0
        if not strength:
            strength_input.value = "0.1"
        variation = random.SystemRandom().randint(0, MAX_SEED)
        self.query_one("#variation-seed", Input).value = str(variation)
        self.query_one("#seed-lock", Checkbox).value = True
        return f"Varying seed {seed}: variation seed {variation}, strength {strength_input.value}."

    def new_random_seed(self) -> int:
        seed = random.SystemRandom().randint(0, MAX_SEED)
        self.query_one("#seed", Input).value = str(seed)
        return seed

    def toggle_lock(self) -> bool:
        box = self.query_one("#seed-lock", Checkbox)
        box.value = not box.value
        return box.value

    def insert_in_prompt(self, text: str) -> None:
        area = self.query_one("#prompt", TextArea)
        current = area.text.rstrip()
        area.load_text(f"{current}, {text}" if current else text)

    # ---- live behaviour ---------------------------------------------------------------------------
    @on(Input.Changed)
    def _validate_live(self, event: Input.Changed) -> None:
        if event.input.id not in INPUTS:
            return
        result = event.validation_result
        error = "" if result is None or result.is_valid else result.failure_descriptions[0]
        error_line = self.query_one(f"#{event.input.id}-error", Static)
        error_line.update(plain(error, one_line=True))
        error_line.display = bool(error)
        if event.input.id in ("width", "height") and not self._quiet:
            size = tuple(self.query_one(f"#{f}", Input).value.strip() for f in ("width", "height"))
            self.size_chosen = self.size_chosen or size != self._size_at_start
            self._sync_preset()
            self._demo_note()
        if event.input.id in ("width", "height"):
            self.second_pass.retitle()  # its title shows the hires size, which follows the first pass's

    @on(Input.Changed)
    @on(Select.Changed)
    @on(LoraRow.Removed)
    def _few_step_inputs(self) -> None:  # a LoRA, the steps, CFG or sampler changed: the few-step line follows
        self.call_after_refresh(self.refresh_few_step)

    @on(Select.Changed, "#size-preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        if self._quiet or event.select.is_blank():
            return
        width, height = str(event.value).split("x")
        current = tuple(self.query_one(f"#{f}", Input).value.strip() for f in ("width", "height"))
        self.size_chosen = self.size_chosen or (width, height) != current  # not the form showing its own size
        self._quiet = True
        try:
            self.query_one("#width", Input).value = width
            self.query_one("#height", Input).value = height
        finally:
            self._quiet = False

    def _sync_preset(self) -> None:
        """Show the preset that matches width×height, or none."""
        size = f"{self.query_one('#width', Input).value.strip()}x{self.query_one('#height', Input).value.strip()}"
        select = self.query_one("#size-preset", Select)
        self._quiet = True
        try:
            if size in [v for _l, v in PRESETS]:
                select.value = size
            elif not select.is_blank():
                select.clear()
        finally:
            self._quiet = False

    # "new random" and "Generate" are the screen's to act on: their Button.Pressed bubbles up to it
    @on(Button.Pressed, "#lora-add")
    def _add_pressed(self) -> None:
        self.query_one(LoraPanel).add()

    # ---- token counters ---------------------------------------------------------------------------
    # Counting runs after a short pause in typing (a fast typist would otherwise count every key) and
    # in a thread, so a huge paste never freezes the screen; the text counted is capped at what a
    # request accepts anyway.
    def set_embeddings(self, vectors: dict[str, int]) -> None:
        """Embedding names (file stems) and their vector counts, so the counter matches the encoder."""
        self.embedding_vectors = dict(vectors)
        self.count_tokens()

    @on(TextArea.Changed)
    def _prompt_changed(self, event: TextArea.Changed) -> None:
        if self._count_timer is not None:
            self._count_timer.stop()
        self._count_timer = self.set_timer(0.15, self.count_tokens)

    def count_tokens(self) -> None:
        texts = {area_id: self.query_one(f"#{area_id}", TextArea).text for area_id in ("prompt", "negative")}
        self._count_in_thread(texts, dict(self.embedding_vectors))

    @work(thread=True, exclusive=True, group="token-count")
    def _count_in_thread(self, texts: dict[str, str], vectors: dict[str, int]) -> None:
        from textual.worker import get_current_worker

        labels = {area_id: token_label(text, vectors) for area_id, text in texts.items()}
        if not get_current_worker().is_cancelled:  # a newer count is on its way: show that one
            self.app.call_from_thread(self._show_counts, labels)

    def _show_counts(self, labels: dict[str, str]) -> None:
        for area_id, text in labels.items():
            counters = self.query(f"#{area_id}-tokens")  # none while the app closes and the form goes
            if counters:
                counters.first(Static).update(plain(text, one_line=True))


def _noise_texts(request: GenerationRequest) -> list[tuple[str, str]]:
    """The noise fields' texts for a request (empty variation seed: random; empty seed resize: off)."""
    resize = request.seed_resize_from
    return [("variation-seed", "" if request.variation_seed is None else str(request.variation_seed)),
            ("variation-strength", f"{request.variation_strength:g}"),
            ("seed-resize", f"{resize[0]}x{resize[1]}" if resize else ""),
            ("ensd", str(request.eta_noise_seed_delta))]


def token_label(text: str, vectors: dict[str, int] | None = None) -> str:
    """A1111's counter (TokenCount.label) and the number of 77-token chunks."""
    if len(text) > MAX_PROMPT_CHARS:
        return f"too long: {len(text):,} characters (max {MAX_PROMPT_CHARS:,})"
    from picotui.engine.prompting.tokens import count_tokens

    counted = count_tokens(text, vectors)  # never raises (a property test holds it to that)
    return f"{counted.label} · {counted.chunks} chunk{'s' if counted.chunks != 1 else ''}"
