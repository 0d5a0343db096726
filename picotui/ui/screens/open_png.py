"""The open dialog: a path field with Tab completion, a browser of the outputs folder, and paths pasted
or dropped onto the terminal (quoted, file:// URLs, backslash-escaped spaces). The app loads the chosen
image's recipe into the form (picotui's own PNGs, AUTOMATIC1111's PNG/JPEG/WebP, ...), or, opened for a
source (`purpose="source"`), uses the image itself as img2img's source.

Built on Textual's own Input and DirectoryTree: textual-fspicker is a whole dialog of its own (no paste
handling, a second look to learn) and textual-autocomplete's dropdown would cover the browser; Tab
completion of a path is a few lines (`complete_path`).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Static

from picotui.ui.text import plain

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
MAX_SHOWN = 8  # completion candidates listed under the field


def clean_pasted(text: str) -> str:
    """A path as terminals paste or drop it: 'quoted', "quoted", file:///x%20y.png, x\\ y.png, trailing newline."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if text.startswith("file://"):
        parsed = urlparse(text)
        return unquote(parsed.path)
    if "\\" in text and os.sep == "/":
        out, chars = [], iter(text)
        for char in chars:
            out.append(next(chars, "") if char == "\\" else char)
        text = "".join(out)
    return text


def complete_path(text: str) -> tuple[str, list[str]]:
    """Tab completion: (the text extended by what every match shares, the matching names; folders end in /)."""
    typed = os.path.expanduser(text) if text else ""
    folder, stem = os.path.split(typed)
    try:
        names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in os.scandir(folder or ".")
                       if entry.name.startswith(stem) and (stem.startswith(".") or not entry.name.startswith(".")))
    except OSError:
        return text, []
    if not names:
        return text, []
    shared = os.path.commonprefix(names)
    completed = os.path.join(folder, shared) if folder else shared
    if text.startswith("~") and not completed.startswith("~"):  # keep the user's ~
        home = os.path.expanduser("~")
        completed = "~" + completed[len(home):] if completed.startswith(home) else completed
    return completed, names


def unreadable_image(path: Path) -> str | None:
    """Why `path` cannot be a source picture (one line), or None when PIL reads it. The job checks it fully
    (size, frames, colour mode) and says what to do; this catches the wrong file early."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except UnidentifiedImageError:
        return f"{path.name} is not an image picotui can read: pick a PNG, JPEG or WebP."
    except Exception as exc:  # OSError, a decompression bomb, a truncated file...
        return f"{path.name} could not be read as an image ({exc.__class__.__name__}): pick another file."
    return None


class PathInput(Input):
    """The path field: Tab completes instead of moving on (shift+tab still moves back)."""
    BINDINGS = [Binding("tab", "complete", "Complete", show=False, id="open_complete")]

    def action_complete(self) -> None:
        completed, names = complete_path(self.value)
        self.value = completed
        self.cursor_position = len(completed)
        self.post_message(Completed(names))


class Completed(Message):
    """Tab was pressed: the names that match what is typed."""

    def __init__(self, names: list[str]):
        super().__init__()
        self.names = names


class ImageTree(DirectoryTree):
    """Folders and images only."""

    def filter_paths(self, paths):
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES)]


# what the dialog is opened for -> its title and the help topic of its path field
PURPOSES = {
    "recipe": ("Open an image and load its recipe (PNG, JPEG, WebP)", "open-path"),
    "source": ("Choose the source image for img2img (PNG, JPEG, WebP)", "source-choose"),
}


class OpenPngModal(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="open_png_cancel")]

    def __init__(self, start: Path | None = None, purpose: str = "recipe"):
        super().__init__()
        self.start = start
        self.purpose = purpose

    def compose(self) -> ComposeResult:
        start = self.start or getattr(getattr(self.app, "paths", None), "outputs", None) or Path.cwd()
        if not Path(start).is_dir():
            start = Path.cwd()
        with Vertical(id="open-box", classes="dialog"):
            title, help_topic = PURPOSES[self.purpose]
            yield Static(title, classes="dialog-title")
            yield PathInput(placeholder="path, or paste / drop a file here" + (
                " (picotui, AUTOMATIC1111, ...)" if self.purpose == "recipe" else ""),
                id="open-path", classes=f"help-{help_topic}")
            yield Static("", id="open-candidates", classes="dim")
            yield Static("", id="open-error", classes="field-error")
            yield ImageTree(str(start), id="open-tree")
            yield Static("tab completes · enter loads · down arrow / shift+tab: browse "
                         f"{plain(str(start), one_line=True)} · escape cancels", classes="dim", markup=False)

    def on_mount(self) -> None:
        self.query_one("#open-tree").styles.height = 12
        self.query_one("#open-path").focus()

    def on_completed(self, message: Completed) -> None:
        names = message.names
        shown = "  ".join(names[:MAX_SHOWN]) + (f"  … {len(names) - MAX_SHOWN} more" if len(names) > MAX_SHOWN else "")
        self.query_one("#open-candidates", Static).update(
            plain(shown if names else "nothing matches", one_line=True))

    def on_key(self, event) -> None:
        if event.key == "down" and self.focused is self.query_one("#open-path"):
            self.query_one("#open-tree").focus()
            event.stop()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#open-path", Input).value = str(event.path)
        self._open(str(event.path))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._open(event.value)

    def _open(self, raw: str) -> None:
        text = clean_pasted(raw)
        path = Path(text).expanduser()
        if path.is_dir():  # enter on a folder: browse it, the field keeps the folder for more Tab
            self.query_one("#open-path", Input).value = str(path).rstrip("/") + "/"
            self.query_one("#open-tree", DirectoryTree).path = path
            return
        if not text or not path.is_file():
            self.query_one("#open-error", Static).update(plain(f"No such file: {text or '(empty)'} "
                                                               "(tab completes a path)", one_line=True))
            return
        problem = unreadable_image(path) if self.purpose == "source" else None
        if problem:
            self.query_one("#open-error", Static).update(plain(problem, one_line=True))
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
