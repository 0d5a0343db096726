"""The model library as the app keeps it: scanned in a thread (reading many headers takes a moment),
then hashed in the background, each hash arriving as a message. Mixed into the App, like
engine_link: this module is about models/, the app module about keys and screens.
"""

from __future__ import annotations

import logging

from textual import work
from textual.message import Message

from picotui.engine.prompting.embeddings import vector_counts
from picotui.ui.few_step_hint import refresh_form_few_step
from picotui.ui.screens.browser import ModelBrowser
from picotui.ui.state import AppState

log = logging.getLogger("picotui.ui")


class Hashed(Message):
    def __init__(self, model_file, value: str):
        super().__init__()
        self.model_file, self.value = model_file, value


class ModelLibrary(AppState):
    @work(thread=True, exclusive=True, group="scan")
    def scan_models(self) -> None:
        try:
            from picotui.engine.models.library import Library

            if self.library is None:
                # the engine's opt-in: with --allow-pickle, .ckpt checkpoints and .pt embeddings are offered too
                self.library = Library(self.paths.models, self.paths.cache,
                                       allow_pickle=bool(self.engine_options.get("allow_pickle")))
            files = self.library.scan()
        except Exception as exc:
            log.exception("model scan failed")
            self.call_from_thread(self.say, f"Could not read the models folder: {exc}", "warning")
            return
        files = [f for f in files if f.folder != "demo"]  # the form and the browser offer "demo" themselves
        for mf in files:
            known = self.library.cached_autov2(mf) if mf.size else None
            if known:
                self.hashes[str(mf.path)] = known
        self.call_from_thread(self._models_scanned, files)
        try:  # post_message, not call_from_thread: it never blocks the hashing thread, even while quitting
            self.library.start_hashing(lambda mf, value: self.post_message(Hashed(mf, value)))
        except Exception:
            log.exception("hashing could not start")

    def _models_scanned(self, files: list) -> None:
        if not self.is_running:  # type: ignore[attr-defined]  # the app is closing: its widgets are going
            return
        self.model_files = files
        for problem in self.library.problems[:3]:
            self.say(problem, "warning")
        usable = lambda kind: [f for f in files if f.kind == kind and f.usable]  # noqa: E731
        form = self.main.form
        form.set_models(*[[f.name for f in usable(kind)] for kind in ("checkpoint", "vae", "lora")])
        form.set_embeddings(vector_counts(usable("embedding")))
        form.second_pass.set_upscalers(sorted({f.stem for f in usable("upscaler")}, key=str.lower))
        refresh_form_few_step(self)  # which LoRAs are few-step: the form's hint and the done line's suggestion
        if isinstance(self.screen, ModelBrowser):
            self.screen.refill(files)
        if not self._scanned_once and not usable("checkpoint"):
            note = (f"No checkpoints installed yet: the demo model is in use (random weights, it paints "
                    f"noise). Put SD1.5 .safetensors files in {self.paths.model_dir('checkpoints')}, then "
                    "ctrl+o and r to rescan.")
            if not self.main.image.add_guide(note):  # in the empty image pane, not over a picture
                self.say(note, timeout=20)
        self._scanned_once = True

    def action_rescan_models(self) -> None:
        self.scan_models()
        self.say("Rescanning the models folder…", timeout=2)

    def on_hashed(self, message: Hashed) -> None:
        model_file, value = message.model_file, message.value
        self.hashes[str(model_file.path)] = value
        if isinstance(self.screen, ModelBrowser):
            self.screen.set_hash(str(model_file.path), value)
