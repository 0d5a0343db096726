"""The main screen: the job form, the image pane, the progress line and the status line, and the keys that
act on them (generate, cancel, seed, LoRA rows, models, history, the image full screen).

It is the app's default screen (`PicoApp.get_default_screen`) and stays at the bottom of the stack, so
its keys are live only while it is on top: a dialog never has to send the user "back to main" first.
The engine's and the library's state is the app's (`picotui.ui.state.AppState`); this screen reads it
and asks the app's worker for jobs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input

from picotui.engine.errors import PicoError, RequestError
from picotui.engine.request import GenerationRequest
from picotui.ui.few_step_hint import few_step_marks
from picotui.ui.last_settings import Saved, save_settings
from picotui.ui.screens.browser import ModelBrowser, Pick
from picotui.ui.screens.history import HistoryEntry, HistoryScreen, history_entries, read_entry
from picotui.ui.screens.image_view import ImageModal
from picotui.ui.screens.open_png import OpenPngModal
from picotui.ui.widgets.form import JobForm
from picotui.ui.widgets.image_pane import ImagePane
from picotui.ui.widgets.lora_rows import LoraPanel
from picotui.ui.widgets.progress import ProgressPanel
from picotui.ui.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from picotui.ui.app import PicoApp


class MainScreen(Screen):
    # The footer shows the short description; the keys screen (F2) the tooltip, which says more. Every
    # binding has an id, the name a [keymap] table in config.toml uses to change its key.
    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate", priority=True, id="generate",
                tooltip="generate; while one runs, queue another with the form as it is now"),
        Binding("escape", "cancel_job", "Cancel job", id="cancel_job",
                tooltip="cancel the running job (the one the progress line shows)"),
        Binding("ctrl+r", "new_seed", "New seed", priority=True, id="new_seed",
                tooltip="put a new random seed in the form"),
        Binding("ctrl+l", "toggle_lock", "Lock seed", priority=True, id="toggle_lock",
                tooltip="lock / unlock the seed (locked: every job uses the seed in the field)"),
        Binding("f5", "vary", "Vary", priority=True, id="vary",
                tooltip="vary this picture: same seed, a new random variation seed, the form's variation strength"),
        Binding("ctrl+o", "browser", "Models", priority=True, id="browser",
                tooltip="model browser: checkpoints, VAEs, LoRAs, embeddings"),
        Binding("ctrl+t", "history", "History", priority=True, id="history",
                tooltip="history: this session's images and earlier ones from outputs/"),
        Binding("ctrl+n", "add_lora", "Add LoRA", show=False, priority=True, id="add_lora",
                tooltip="add a LoRA row"),
        Binding("ctrl+f", "full_image", "Image", priority=True, id="full_image",
                tooltip="the image full screen (main screen or history); escape closes"),
        # F7 is the prompt's "select all" (Textual's TextArea), so the second pass takes F8 and F9; the section's title
        # shows F9, so the footer keeps its room for F1 and F2
        Binding("f9", "toggle_second_pass", "2nd pass", show=False, priority=True, id="second_pass",
                tooltip="open / fold the form's second pass: img2img source, denoising strength, hires fix"),
        Binding("f8", "use_as_source", "Use as source", show=False, priority=True, id="use_as_source",
                tooltip="img2img: use the image on screen as the source image of the next job"),
        # ctrl+s ("scale"): F10 is the menu key of many terminals, ctrl+u and ctrl+e are the text fields' own
        Binding("ctrl+s", "upscale", "Upscale", show=False, priority=True, id="upscale",
                tooltip="upscale the image on screen (A1111's Extras): Lanczos or an upscaler model, saved in "
                        "outputs/extras/"),
    ]

    def __init__(self, saved: Saved, *, engine_starts: bool):
        super().__init__(id="main-screen")
        self.saved = saved
        self.engine_starts = engine_starts
        self.last_upscaler: str | None = None  # the upscale dialog offers the one used last

    @property
    def pico(self) -> PicoApp:
        return cast("PicoApp", self.app)

    # ---- layout -----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield JobForm(self.saved.request, self.saved.seed_locked, id="form")
            with Vertical(id="right"):
                yield ImagePane(id="image-pane", classes="help-image")
                yield ProgressPanel(id="progress")
        yield StatusLine(starting=self.engine_starts, id="status-line")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt").focus()
        self.call_after_refresh(self.form.count_tokens)

    # the parts the app's engine and library links update
    @property
    def form(self) -> JobForm:
        return self.query_one(JobForm)

    @property
    def progress(self) -> ProgressPanel:
        return self.query_one(ProgressPanel)

    @property
    def image(self) -> ImagePane:
        return self.query_one("#image-pane", ImagePane)

    @property
    def status_line(self) -> StatusLine:
        return self.query_one(StatusLine)

    # ---- the form's buttons -----------------------------------------------------------------------
    @on(Button.Pressed, "#generate")
    def _generate_pressed(self) -> None:
        self.action_generate()

    @on(Button.Pressed, "#seed-random")
    def _random_pressed(self) -> None:
        self.action_new_seed()

    @on(Button.Pressed, "#source-choose")
    def _choose_source_pressed(self) -> None:
        self.action_choose_source()

    # ---- jobs -------------------------------------------------------------------------------------
    def action_generate(self) -> None:
        app = self.pico
        try:
            request = self.form.next_request()
        except RequestError as exc:
            app.say(str(exc), "error")
            return
        self.save_settings(request)
        job_id = self._submit(request, f"seed {request.seed}", f"seed {request.seed}")
        if job_id is not None and request.init_image:
            app.job_sources[job_id] = request.init_image

    def _submit(self, request, queued: str, starting: str) -> int | None:
        """Hand a job to the engine and say so (queued behind another, or starting); None after saying why
        it could not be handed over."""
        app = self.pico
        worker = app.ensure_engine()
        if worker is None:
            app.say(f"The engine is not running (details in the log: {app.paths.log_file}).", "error")
            return None
        # Busy is judged before submitting: afterwards the new job itself would count as waiting.
        busy = worker.running_job is not None or worker.pending > 0
        try:
            job_id = worker.submit(request)
        except PicoError as exc:
            app.say(str(exc), "error")
            return None
        if busy:
            app.say(f"Queued job {job_id} ({queued}).", timeout=3)
        else:
            app.shown_job = job_id
            self.progress.done(f"starting job {job_id} · {starting}", "running")
        app.update_queue()
        return job_id

    def action_cancel_job(self) -> None:
        # Only the job the progress line shows: an escape that arrives late must not stop the next job.
        app = self.pico
        job_id = app.shown_job
        if app.worker is None or job_id is None:
            app.say("Nothing is running.", timeout=2)
            return
        if not app.worker.cancel(job_id):
            app.say(f"Job {job_id} has already ended.", timeout=2)
            return
        self.progress.done(f"cancelling job {job_id}…", "running")

    def action_cancel_all(self) -> None:
        if self.pico.worker is not None:
            self.pico.worker.cancel_all()

    # ---- the form ---------------------------------------------------------------------------------
    def action_new_seed(self) -> None:
        seed = self.form.new_random_seed()
        self.pico.say(f"New seed {seed}.", timeout=2)

    def action_vary(self) -> None:
        try:
            message = self.form.prepare_variation()
        except RequestError as exc:
            self.pico.say(str(exc), "warning")
            return
        self.pico.say(message, timeout=3)
        self.action_generate()

    def action_toggle_lock(self) -> None:
        locked = self.form.toggle_lock()
        self.pico.say("Seed locked: every job uses the seed in the field." if locked
                      else "Seed unlocked: every job draws a new random seed.", timeout=3)

    # ---- the second pass ----------------------------------------------------------------------------
    def action_toggle_second_pass(self) -> None:
        section = self.form.second_pass
        section.collapsed = not section.collapsed
        if not section.collapsed:
            section.query_one("CollapsibleTitle").focus()  # the keyboard is where the section is
        elif self.app.focused is not None and section in self.app.focused.ancestors:
            section.query_one("CollapsibleTitle").focus()  # focus must not stay on a hidden control

    def action_use_as_source(self) -> None:
        pane = self.image
        if pane.image is None:
            self.pico.say("No image yet: generate one (ctrl+g), or pick a source file in the second pass (F9).",
                          timeout=4)
        elif pane.path is None:
            self.pico.say("The image on screen is not saved (a preview, or its save failed): img2img needs its "
                          "file. Wait for it to finish, or save it again from history (ctrl+t, s).", "warning")
        else:
            self.use_source(pane.path)

    def action_upscale(self) -> None:
        from picotui.ui.screens.upscale import UpscaleModal

        pane = self.image
        if pane.image is None or pane.path is None:
            self.pico.say("No saved image on screen to upscale: generate one (ctrl+g) or restore one from history "
                          "(ctrl+t).", timeout=4)
            return
        self.app.push_screen(UpscaleModal(pane.path, pane.image.size, self.form.second_pass.upscaler_models,
                                          self.last_upscaler), self._upscale)

    def _upscale(self, request) -> None:
        if request is None:
            return
        self.last_upscaler = request.upscaler
        self._submit(request, f"upscale {request.source.name}",
                     f"upscale {request.source.name} with {request.upscaler}")

    def action_choose_source(self) -> None:
        self.app.push_screen(OpenPngModal(purpose="source"), self._source_chosen)

    def _source_chosen(self, path: Path | None) -> None:
        if path is not None:
            self.use_source(path)

    def use_source(self, path: Path | str) -> None:
        """Make `path` the img2img source of the next job, and say what that means."""
        section = self.form.second_pass
        notes = []
        if section.hires_on():
            section.switch_hires_off()
            notes.append("hires fix switched off (it is for text to image)")
        section.set_source(str(path))
        section.collapsed = False
        strength = section.query_one("#denoising", Input).value
        self.pico.say(f"Source image: {Path(path).name} (img2img, denoising strength {strength}"
                      + "".join(f"; {n}" for n in notes) + "). ctrl+g generates; 'clear' in the second pass "
                      "goes back to text to image.", timeout=6)

    def action_add_lora(self) -> None:
        self.query_one(LoraPanel).add()

    def action_size(self, width: int, height: int) -> None:
        self.form.query_one("#width").value = str(width)
        self.form.query_one("#height").value = str(height)

    def action_reset_form(self) -> None:
        self.form.load(GenerationRequest(), lock_seed=False)

    def action_use_demo(self) -> None:
        self.use_model(Pick("checkpoint", "demo"))

    def use_model(self, pick: Pick | None) -> None:
        if pick is None:
            return
        kind, name = pick
        if kind in ("checkpoint", "vae"):
            self.form.set_model(kind, name)
        elif kind == "lora":
            self.query_one(LoraPanel).add(name, focus=False)
        elif kind == "embedding":
            self.form.insert_in_prompt(Path(name).stem)
        elif kind == "upscaler":  # hires fix's upscaler (A1111 names a model by its file stem)
            self.form.second_pass.use_upscaler(Path(name).stem)
            self.pico.say(f"Hires upscaler {Path(name).stem} (F9 shows the second pass; tick Hires fix to use it).",
                          timeout=4)
            return
        self.pico.say(f"Using {kind} {name}.", timeout=3)

    def save_settings(self, request: GenerationRequest) -> None:
        problem = save_settings(self.pico.paths.settings_file, Saved(request, self.form.seed_locked))
        if problem:
            self.pico.say(problem, "warning")

    # ---- other screens ----------------------------------------------------------------------------
    def action_browser(self) -> None:
        app = self.pico
        app.push_screen(ModelBrowser(app.paths.models, app.model_files, app.hashes, few_step=few_step_marks(app)),
                        self.use_model)

    def action_history(self) -> None:
        app = self.pico
        try:
            current = self.form.request()
        except RequestError:
            current = None
        app.push_screen(HistoryScreen(history_entries(app.history, app.paths.outputs), current,
                                      lambda entry: read_entry(entry, app.library), app.save_entry,
                                      self.use_source),
                        self._restore_entry)

    def action_open_png(self) -> None:
        self.app.push_screen(OpenPngModal(), self._open_png)

    def action_full_image(self) -> None:
        pane = self.image
        if pane.image is None:
            self.pico.say("No image to show yet: ctrl+g generates one.", timeout=3)
            return
        self.app.push_screen(ImageModal(pane.image, pane.caption))

    def _restore_entry(self, entry: HistoryEntry | None) -> None:
        if entry is None or entry.request is None:
            return
        self.restore(entry.request, entry.unmatched, str(entry.path or "history"))
        if entry.image is not None:
            self.image.show(entry.image, f"restored · seed {entry.request.seed}", path=entry.path,
                            source=entry.request.init_image)

    def restore(self, request: GenerationRequest, unmatched: list[str], where: str) -> None:
        notes = self.form.load(replace(request, batch_count=1), lock_seed=request.seed is not None)
        say = self.pico.say
        say(f"Settings restored from {where} (seed {request.seed}, locked).", timeout=4)
        for note in notes:
            say(note, "warning")
        if unmatched:
            say(f"Not used from {Path(where).name}: {', '.join(unmatched)}", "warning", timeout=10)

    def _open_png(self, path: Path | None) -> None:
        if path is None:
            return
        entry = HistoryEntry(path)
        read_entry(entry, self.pico.library)
        if entry.request is None:
            self.pico.say(entry.problem or f"No settings found in {path}.", "error")
            return
        self.restore(entry.request, entry.unmatched, str(path))
