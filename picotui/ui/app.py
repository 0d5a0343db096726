"""picotui's terminal app: the keys that work everywhere (help, keys, engine details, commands, quit),
the shared state, and start-up. The form and its keys are the main screen's (picotui.ui.screens.main).

It paints before torch loads: the worker module is imported and started after the first paint, and
torch is imported inside the worker thread. The model library is scanned in a thread too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from textual.app import App
from textual.binding import Binding

from picotui.engine.request import GenerationRequest
from picotui.paths import Paths
from picotui.ui import graphics
from picotui.ui.commands import PicoCommands
from picotui.ui.engine_link import IN_THE_LOG, EngineEvents
from picotui.ui.help_texts import topic_for
from picotui.ui.keymap import picotui_bindings, unknown_ids
from picotui.ui.last_settings import Saved, load_settings
from picotui.ui.library_link import ModelLibrary
from picotui.ui.plot_link import PlotRuns
from picotui.ui.screens.engine_details import EngineDetailsModal
from picotui.ui.screens.help import HelpModal, KeysScreen
from picotui.ui.screens.history import HistoryEntry
from picotui.ui.screens.main import MainScreen
from picotui.ui.text import say

log = logging.getLogger("picotui.ui")
# Below this many columns or rows the image pane gives its room to the form (ctrl+f still shows the
# image, full screen). 90×26 keeps a small pane; 80×24, the classic SSH size, is compact.
COMPACT = (90, 26)


class PicoApp(PlotRuns, EngineEvents, ModelLibrary, App):
    CSS_PATH = "app.tcss"
    TITLE = "picotui"
    COMMANDS = {PicoCommands}  # only picotui's commands: Textual's system ones would duplicate Keys and Quit
    # Only keys that work on every screen live here; the main screen has the rest. F-keys are priority
    # bindings so they also work inside dialogs (a modal screen hides the app's other keys); "?" is not,
    # or it could never be typed into a prompt.
    BINDINGS = [
        Binding("f1", "help_focused", "Help", priority=True, id="help", tooltip="help for the focused control"),
        Binding("f2", "keys", "Keys", priority=True, id="keys", tooltip="this list of keys"),
        Binding("question_mark", "keys", "Keys", key_display="?", show=False, id="keys_question",
                tooltip="this list of keys"),
        Binding("f4", "plot", "Plot", show=False, priority=True, id="plot",
                tooltip="X/Y/Z plot: a grid of images where only the axes' settings change (F4 again: back, it goes on)"),
        Binding("f3", "engine_details", "Engine", show=False, priority=True, id="engine_details",
                tooltip="engine details: device, VRAM, memory mode and speed path, and why"),
        # shown once, at the footer's right end, where Textual puts the command palette key
        Binding("ctrl+p", "command_palette", "Commands", show=False, priority=True, id="command_palette",
                tooltip="command palette: every action by name"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit", tooltip="quit (a running job is cancelled cleanly)"),
    ]

    def __init__(self, paths: Paths, *, graphics_choice: str | None = None, engine_options: dict | None = None,
                 start_engine: bool = True, notices: list[str] | None = None, keymap: dict[str, str] | None = None):
        super().__init__()
        self.paths = paths
        self.graphics = graphics.prepare(graphics_choice)
        self.engine_options: dict[str, Any] = engine_options or {}
        self.start_engine_on_mount = start_engine
        self.quitting = False
        self.worker = None
        self.engine_status = None
        self.shown_job = None
        self.last_step = {}
        self.job_sources = {}
        self.last_final = None
        self.history = []
        self.library = None
        self.model_files = []
        self.hashes = {}
        self._scanned_once = False
        self.notices = list(notices or [])
        saved, problem = load_settings(paths.settings_file)
        if problem:
            self.notices.append(problem)
        self.saved = saved or Saved(GenerationRequest())
        # [keymap] in config.toml: binding id -> key(s); ids no binding has are named in one notice
        self.keymap = dict(keymap or {})
        unknown = unknown_ids(self.keymap, picotui_bindings())
        if unknown:
            self.notices.append(f"Ignored keymap entries with no such binding: {', '.join(unknown)} "
                                "(the README's Keys section lists the ids).")
        self.set_keymap({key: value for key, value in self.keymap.items() if key not in unknown})

    @classmethod
    def all_bindings(cls) -> list[Binding]:
        """The main screen's bindings and the app's: what the keys screen, the palette and the keymap know."""
        return [b for b in (*MainScreen.BINDINGS, *cls.BINDINGS) if isinstance(b, Binding)]

    def get_default_screen(self) -> MainScreen:
        self._main_screen = MainScreen(self.saved, engine_starts=self.start_engine_on_mount)
        return self._main_screen

    @property
    def main(self) -> MainScreen:
        return self._main_screen  # the default screen: at the bottom of the stack for the app's whole life

    def on_mount(self) -> None:
        for notice in self.notices:
            self.say(notice, "warning", timeout=10)
        self._apply_compact(self.size.width, self.size.height)
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.scan_models()
        if self.start_engine_on_mount:
            self.ensure_engine()

    def ensure_engine(self):
        """The worker, started once (after the first paint, or earlier if ctrl+g comes first); None when
        it cannot run."""
        if self.worker is None and self.start_engine_on_mount and not self.quitting:
            try:
                self.start_engine()
            except Exception as exc:  # the form stays usable even when the engine cannot start
                log.exception("engine start failed")
                self.say(f"The engine could not start: {exc} (details in the log)", "error")
                self.start_engine_on_mount = False
        return self.worker

    def on_resize(self, event) -> None:
        self._apply_compact(event.size.width, event.size.height)

    def _apply_compact(self, width: int, height: int) -> None:
        # on the app node, so the main screen and history both see it in their CSS
        self.set_class(width < COMPACT[0] or height < COMPACT[1], "compact")

    def say(self, text: str, severity: str = "information", timeout: float | None = None) -> None:
        """A one-line notification; "details in the log" gets the log file's path."""
        if IN_THE_LOG in text and str(self.paths.log_file) not in text:
            text = text.replace(IN_THE_LOG, f"{IN_THE_LOG}: {self.paths.log_file}")
        say(self, text, severity, timeout)

    # ---- keys that work everywhere ----------------------------------------------------------------
    def action_help_focused(self) -> None:
        if isinstance(self.screen, HelpModal):  # F1 again closes the help it opened
            self.pop_screen()
            return
        focused = self.focused
        topic = topic_for(focused) if focused is not None else None
        if topic is not None:
            self.push_screen(HelpModal(topic))
        elif not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen(self.all_bindings(), self.keymap, self.paths.log_file))

    def action_keys(self) -> None:
        if isinstance(self.screen, KeysScreen):  # F2 again closes it
            self.pop_screen()
        else:
            self.push_screen(KeysScreen(self.all_bindings(), self.keymap, self.paths.log_file))

    def action_engine_details(self) -> None:
        if isinstance(self.screen, EngineDetailsModal):  # F3 again closes it
            self.pop_screen()
            return
        self.push_screen(EngineDetailsModal(self.engine_details()))

    # ---- images whose save failed (history's s, the palette's "Save again") -----------------------
    def action_save_again(self) -> None:
        unsaved = [entry for entry in self.history if entry.unsaved]
        if not unsaved:
            self.say("Every image of this session is saved.", timeout=3)
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
            self.say(f"Still not saved: {exc}", "error", timeout=10)
            return False
        entry.path, entry.save_error = path, None
        self.say(f"Saved {path}.", timeout=4)
        if self.last_final is not None and self.last_final[0] is entry.image:
            _image, caption, _path, source = self.last_final
            self.last_final = (entry.image, caption.replace("not saved", f"saved {path.name}"), path, source)
        if self.main.image.image is entry.image:  # F8 can use it as a source now
            self.main.image.path = path
        return True

    async def action_quit(self) -> None:
        self.quitting = True
        try:
            self.main.save_settings(self.main.form.request())
        except Exception:
            pass  # an invalid form is not saved; quitting still works
        if self.library is not None:
            self.library.stop_hashing()
        if self.worker is not None:
            running = self.worker.running_job is not None
            if running:
                self.main.progress.done("cancelling the running job before quitting…", "running")
            worker, self.worker = self.worker, None
            await asyncio.to_thread(worker.shutdown, 10)
        self.exit(0)
