"""What the app's parts share, declared once with its types.

The App is built from the engine link (events in), the library link (model files in) and its own keys;
the main screen reads the same state. Each of them inherits (or, for the screen, reads through the app)
these declarations instead of reaching for attributes nobody declared. The App sets every one in
`__init__`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from picotui.engine.events import EngineStatus
    from picotui.engine.jobs.worker import Worker
    from picotui.engine.models.library import Library, ModelFile
    from picotui.paths import Paths
    from picotui.ui.screens.history import HistoryEntry
    from picotui.ui.screens.main import MainScreen


class AppState:
    paths: Paths
    engine_options: dict[str, Any]  # Worker keyword arguments (device, allow_pickle, ...)
    quitting: bool  # set by ctrl+q: nothing new starts

    # the engine (picotui.ui.engine_link)
    worker: Worker | None
    engine_status: EngineStatus | None
    shown_job: int | None  # the job the progress line is about: what escape cancels
    last_step: dict[int, tuple[int, int, str]]  # job id -> (step, total, pass label) last shown
    job_sources: dict[int, str]  # job id -> its img2img source file, drawn beside its previews
    last_final: tuple[Any, str, Any, str | None] | None  # the last finished image, its caption, file and source
    history: list[HistoryEntry]  # this session's images, newest first

    # the model library (picotui.ui.library_link)
    library: Library | None
    model_files: list[ModelFile]
    hashes: dict[str, str]  # file path -> AutoV2 hash
    _scanned_once: bool

    @property
    def main(self) -> MainScreen:
        """The main screen (the form, the image pane, the progress and status lines), whichever screen is on top."""
        raise NotImplementedError

    def say(self, text: str, severity: str = "information", timeout: float | None = None) -> None:
        raise NotImplementedError
