"""picotui's terminal app: the main screen (form, image, progress, status) and its keys.

It paints before torch loads: the worker module is imported and started after the first paint, and
torch is imported inside the worker thread. The model library is scanned in a thread too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import replace
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Static

from picotui.engine.errors import PicoError, RequestError
from picotui.engine.request import GenerationRequest
from picotui.paths import Paths
from picotui.ui import graphics
from picotui.ui.commands import PicoCommands
from picotui.ui.engine_link import EngineEvents
from picotui.ui.few_step_hint import few_step_marks
from picotui.ui.library_link import ModelLibrary
from picotui.ui.plot_link import PlotRuns
from picotui.ui.help_texts import topic_for
from picotui.ui.screens.browser import ModelBrowser
from picotui.ui.screens.engine_details import EngineDetailsModal, details_text
from picotui.ui.screens.help import HelpModal, KeysScreen
from picotui.ui.screens.history import HistoryEntry, HistoryScreen, history_entries, read_entry
from picotui.ui.screens.image_view import ImageModal
from picotui.ui.screens.open_png import OpenPngModal
from picotui.ui.settings import Saved, load_settings, save_settings
from picotui.ui.widgets.form import JobForm
from picotui.ui.widgets.image_pane import ImagePane
from picotui.ui.widgets.lora_rows import LoraPanel
from picotui.ui.widgets.status import ProgressPanel

log = logging.getLogger("picotui.ui")
# Below this many columns or rows the image pane gives its room to the form (ctrl+f still shows the
# image, full screen). 90×26 keeps a small pane; 80×24, the classic SSH size, is compact.
COMPACT = (90, 26)


class PicoApp(PlotRuns, EngineEvents, ModelLibrary, App):
    CSS_PATH = "app.tcss"
    TITLE = "picotui"
    COMMANDS = {PicoCommands}  # only picotui's commands: Textual's system ones would duplicate Keys and Quit
    # The footer shows the short description; the keys screen (F2) the tooltip, which says more.
    BINDINGS = [
        Binding("ctrl+g", "generate", "Generate", priority=True,
                tooltip="generate; while one runs, queue another with the form as it is now"),
        Binding("escape", "cancel_job", "Cancel job", tooltip="cancel the running job (the one the progress line shows)"),
        Binding("ctrl+r", "new_seed", "New seed", priority=True, tooltip="put a new random seed in the form"),
        Binding("ctrl+l", "toggle_lock", "Lock seed", priority=True,
                tooltip="lock / unlock the seed (locked: every job uses the seed in the field)"),
        Binding("f5", "vary", "Vary", priority=True,
                tooltip="vary this picture: same seed, a new random variation seed, the form's variation strength"),
        Binding("ctrl+o", "browser", "Models", priority=True,
                tooltip="model browser: checkpoints, VAEs, LoRAs, embeddings"),
        Binding("ctrl+t", "history", "History", priority=True,
                tooltip="history: this session's images and earlier ones from outputs/"),
        Binding("f4", "plot", "Plot", show=False, priority=True,
                tooltip="X/Y/Z plot: a grid of images where only the axes' settings change (F4 again: back, it goes on)"),
        Binding("ctrl+n", "add_lora", "Add LoRA", show=False, priority=True, tooltip="add a LoRA row"),
        Binding("ctrl+f", "full_image", "Image", priority=True,
                tooltip="the image full screen (main screen or history); escape closes"),
        # F-keys are priority bindings so they also work inside dialogs (a modal screen hides the app's
        # other keys); "?" is not, or it could never be typed into a prompt.
        Binding("f1", "help_focused", "Help", priority=True, tooltip="help for the focused control"),
        Binding("f2", "keys", "Keys", priority=True, tooltip="this list of keys"),
        Binding("question_mark", "keys", "Keys", key_display="?", show=False, tooltip="this list of keys"),
        Binding("f3", "engine_details", "Engine", show=False, priority=True,
                tooltip="engine details: device, VRAM, memory mode and speed path, and why"),
        # shown once, at the footer's right end, where Textual puts the command palette key
        Binding("ctrl+p", "command_palette", "Commands", show=False, priority=True,
                tooltip="command palette: every action by name"),
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="quit (a running job is cancelled cleanly)"),
    ]

    def __init__(self, paths: Paths, *, graphics_choice: str | None = None, engine_options: dict | None = None,
                 start_engine: bool = True, notices: list[str] | None = None):
        super().__init__()
        self.paths = paths
        self.graphics = graphics.prepare(graphics_choice)
        self.engine_options = engine_options or {}  # Worker keyword arguments (device, allow_pickle, ...)
        self.start_engine_on_mount = start_engine
        self.worker = None
        self.engine_status = None
        self.events_seen: list[str] = []  # event type names in arrival order (tests and debugging)
        self.history: list[HistoryEntry] = []  # this session's images, newest first
        self.shown_job: int | None = None  # the job the progress line is about: what escape cancels
        self.last_step: dict[int, tuple[int, int]] = {}  # job id -> (step, total) last shown
        self.last_final: tuple[object, str] | None = None  # the last finished image and its caption
        self.library = None
        self.model_files: list = []
        self.hashes: dict[str, str] = {}
        self.notices = list(notices or [])
        self._quitting = False
        self._scanned_once = False
        saved, problem = load_settings(paths.settings_file)
        if problem:
            self.notices.append(problem)
        self.saved = saved or Saved(GenerationRequest())

    # ---- layout -----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield JobForm(self.saved.request, self.saved.seed_locked, id="form")
            with Vertical(id="right"):
                yield ImagePane(id="image-pane", classes="help-image")
                yield ProgressPanel(id="progress")
        yield Static("engine: not started" if not self.start_engine_on_mount else
                     "engine: starting (torch loads in the background)", id="status-line", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt").focus()
        for notice in self.notices:
            self._say(notice, "warning", timeout=10)
        self._apply_compact(self.size.width, self.size.height)
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.query_one(JobForm).count_tokens()
        self.scan_models()
        if self.start_engine_on_mount:
            self._ensure_engine()

    def _ensure_engine(self) -> bool:
        """Start the worker once (after the first paint, or earlier if ctrl+g comes first)."""
        if self.worker is None and self.start_engine_on_mount and not self._quitting:
            try:
                self.start_engine()
            except Exception as exc:  # the form stays usable even when the engine cannot start
                log.exception("engine start failed")
                self._say(f"The engine could not start: {exc} (details in the log)", "error")
                self.start_engine_on_mount = False
        return self.worker is not None

    def on_resize(self, event) -> None:
        self._apply_compact(event.size.width, event.size.height)

    def _apply_compact(self, width: int, height: int) -> None:
        # on the app node, so the main screen and history both see it in their CSS
        self.set_class(width < COMPACT[0] or height < COMPACT[1], "compact")

    # ---- actions ----------------------------------------------------------------------------------
    def action_generate(self) -> None:
        form = self.query_one(JobForm)
        try:
            request = form.next_request()
        except RequestError as exc:
            self._say(str(exc), "error")
            return
        self._save_settings(request)
        if not self._ensure_engine():
            self._say(f"The engine is not running (details in the log: {self.paths.log_file}).", "error")
            return
        # Busy is judged before submitting: afterwards the new job itself would count as waiting.
        busy = self.worker.running_job is not None or self.worker.pending > 0
        try:
            job_id = self.worker.submit(request)
        except PicoError as exc:
            self._say(str(exc), "error")
            return
        if busy:
            self._say(f"Queued job {job_id} (seed {request.seed}).", timeout=3)
        else:
            self.shown_job = job_id
            self.query_one(ProgressPanel).done(f"starting job {job_id} · seed {request.seed}", "running")
        self._update_queue()

    def action_cancel_job(self) -> None:
        # Only the job the progress line shows: an escape that arrives late must not stop the next job.
        job_id = self.shown_job
        if self.worker is None or job_id is None:
            self._say("Nothing is running.", timeout=2)
            return
        if not self.worker.cancel(job_id):
            self._say(f"Job {job_id} has already ended.", timeout=2)
            return
        self.query_one(ProgressPanel).done(f"cancelling job {job_id}…", "running")

    def action_cancel_all(self) -> None:
        if self.worker is not None:
            self.worker.cancel_all()

    def action_new_seed(self) -> None:
        seed = self.query_one(JobForm).new_random_seed()
        self._say(f"New seed {seed}.", timeout=2)

    def action_vary(self) -> None:
        try:
            message = self.query_one(JobForm).prepare_variation()
        except RequestError as exc:
            self._say(str(exc), "warning")
            return
        self._say(message, timeout=3)
        self.action_generate()

    def action_toggle_lock(self) -> None:
        locked = self.query_one(JobForm).toggle_lock()
        self._say("Seed locked: every job uses the seed in the field." if locked
                  else "Seed unlocked: every job draws a new random seed.", timeout=3)

    def action_add_lora(self) -> None:
        if self.screen is self.screen_stack[0]:
            self.query_one(LoraPanel).add()

    def action_size(self, width: int, height: int) -> None:
        form = self.query_one(JobForm)
        form.query_one("#width").value = str(width)
        form.query_one("#height").value = str(height)

    def action_use_demo(self) -> None:
        self._use_model("checkpoint", "demo")

    def action_rescan_models(self) -> None:
        self.scan_models()
        self._say("Rescanning the models folder…", timeout=2)

    def action_reset_form(self) -> None:
        self.query_one(JobForm).load(GenerationRequest(), lock_seed=False)

    def action_browser(self) -> None:
        if not isinstance(self.screen, ModelBrowser):
            self._back_to_main()
            self.push_screen(ModelBrowser(self.paths.models, self.model_files, self.hashes,
                                          few_step=few_step_marks(self)))

    def action_history(self) -> None:
        if isinstance(self.screen, HistoryScreen):
            return
        self._back_to_main()
        try:
            current = self.query_one(JobForm).request()
        except RequestError:
            current = None
        self.push_screen(HistoryScreen(history_entries(self.history, self.paths.outputs), current,
                                       lambda entry: read_entry(entry, self.library), self.save_entry))

    def action_open_png(self) -> None:
        self._back_to_main()
        self.push_screen(OpenPngModal(), self._open_png)

    def action_help_focused(self) -> None:
        if isinstance(self.screen, HelpModal):  # F1 again closes the help it opened
            self.pop_screen()
            return
        focused = self.focused
        topic = topic_for(focused) if focused is not None else None
        if topic is not None:
            self.push_screen(HelpModal(topic))
        elif not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen(self.paths.log_file))

    def action_keys(self) -> None:
        if isinstance(self.screen, KeysScreen):  # F2 again closes it
            self.pop_screen()
        else:
            self.push_screen(KeysScreen(self.paths.log_file))

    def action_full_image(self) -> None:
        if isinstance(self.screen, ImageModal):  # ctrl+f again closes it
            self.pop_screen()
            return
        if hasattr(self.screen, "picture"):  # history, the plot screen: the picture they point at
            shown = self.screen.picture()
        else:
            pane = self.query_one("#image-pane", ImagePane)
            shown = (pane.image, pane.caption) if pane.image is not None else None
        if shown is None:
            self._say("No image to show yet: ctrl+g generates one.", timeout=3)
            return
        self.push_screen(ImageModal(*shown))

    def action_engine_details(self) -> None:
        if isinstance(self.screen, EngineDetailsModal):  # F3 again closes it
            self.pop_screen()
            return
        self.push_screen(EngineDetailsModal(self._engine_details()))

    def _engine_details(self) -> str:
        return details_text(self.engine_status, log_file=self.paths.log_file, graphics=graphics.describe_lines(),
                            models=self.paths.models, outputs=self.paths.outputs)

    def action_save_again(self) -> None:
        unsaved = [entry for entry in self.history if entry.unsaved]
        if not unsaved:
            self._say("Every image of this session is saved.", timeout=3)
            return
        for entry in unsaved:
            if not self.save_entry(entry):
                break  # the same disk problem would repeat for the rest: one message is enough

    def save_entry(self, entry: HistoryEntry) -> bool:
        """Save an image whose save failed (it is still in memory); True when it is on disk now."""
        from picotui.engine.errors import SaveError
        from picotui.engine.recipes.output import save_again

        try:
            path = save_again(entry, self.paths.outputs)  # an entry has what a Finished event has
        except SaveError as exc:
            entry.save_error = str(exc)
            self._say(f"Still not saved: {exc}", "error", timeout=10)
            return False
        entry.path, entry.save_error = path, None
        self._say(f"Saved {path}.", timeout=4)
        if self.last_final is not None and self.last_final[0] is entry.image:
            self.last_final = (entry.image, self.last_final[1].replace("not saved", f"saved {path.name}"))
        return True

    async def action_quit(self) -> None:
        self._quitting = True
        try:
            self._save_settings(self.query_one(JobForm).request())
        except Exception:
            pass  # an invalid form is not saved; quitting still works
        if self.library is not None:
            self.library.stop_hashing()
        if self.worker is not None:
            running = self.worker.running_job is not None
            if running:
                self.query_one(ProgressPanel).done("cancelling the running job before quitting…", "running")
            worker, self.worker = self.worker, None
            await asyncio.to_thread(worker.shutdown, 10)
        self.exit(0)

    # ---- helpers ----------------------------------------------------------------------------------
    def _back_to_main(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def _save_settings(self, request: GenerationRequest) -> None:
        locked = self.query_one(JobForm).seed_locked
        problem = save_settings(self.paths.settings_file, Saved(request, locked))
        if problem:
            self._say(problem, "warning")

    def _use_model(self, kind: str, name: str) -> None:
        form = self.query_one(JobForm)
        if kind in ("checkpoint", "vae"):
            form.set_model(kind, name)
        elif kind == "lora":
            self.query_one(LoraPanel).add(name, focus=False)
        elif kind == "embedding":
            form.insert_in_prompt(Path(name).stem)
        self._say(f"Using {kind} {name}.", timeout=3)

    def on_model_browser_picked(self, message: ModelBrowser.Picked) -> None:
        self._back_to_main()
        self._use_model(message.kind, message.name)

    def on_history_screen_restore(self, message: HistoryScreen.Restore) -> None:
        self._back_to_main()
        self._restore(message.entry.request, message.entry.unmatched, str(message.entry.path or "history"))
        if message.entry.image is not None:
            self.query_one(ImagePane).show(message.entry.image, f"restored · seed {message.entry.request.seed}")

    def _restore(self, request: GenerationRequest, unmatched: list[str], where: str) -> None:
        notes = self.query_one(JobForm).load(replace(request, batch_count=1), lock_seed=request.seed is not None)
        self._say(f"Settings restored from {where} (seed {request.seed}, locked).", timeout=4)
        for note in notes:
            self._say(note, "warning")
        if unmatched:
            self._say(f"Not used from {Path(where).name}: {', '.join(unmatched)}", "warning", timeout=10)

    def _open_png(self, path: Path | None) -> None:
        if path is None:
            return
        entry = HistoryEntry(path)
        read_entry(entry, self.library)
        if entry.request is None:
            self._say(entry.problem or f"No settings found in {path}.", "error")
            return
        self._restore(entry.request, entry.unmatched, str(path))


def run_tui(args: argparse.Namespace) -> int:
    from picotui.cli.common import engine_options, load_settings
    from picotui.logs import capture_warnings, setup_logging

    config, paths = load_settings(args)  # --config/--models/--outputs/--state/--cache, env, config file
    folders_problem = paths.make_model_folders()
    setup_logging(paths)  # never to the terminal: a stray line would tear the screen
    capture_warnings()
    notices = [problem for problem in (config.problem, folders_problem) if problem]
    choice = config.get("graphics", getattr(args, "graphics", None))
    rate_problem = graphics.set_preview_rate(config.get("preview_rate", getattr(args, "preview_rate", None)))
    notices += [rate_problem] if rate_problem else []
    app = PicoApp(paths, graphics_choice=choice, engine_options=engine_options(args, config), notices=notices)
    app.run()
    return int(app.return_code or 0)
