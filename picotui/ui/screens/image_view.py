"""The current (or a history) image on the whole screen: the way to see it on a small terminal, where
the main screen has no room for the image pane."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen

from picotui.ui.widgets.image_pane import ImagePane


class ImageModal(ModalScreen):
    # ctrl+f (the key that opens it, on the main screen and in history) closes it too
    BINDINGS = [Binding("escape,q,enter,ctrl+f", "dismiss", "Close", id="image_close")]

    def __init__(self, image, caption: str):
        super().__init__()
        self.image, self.caption = image, caption

    def compose(self) -> ComposeResult:
        yield ImagePane(id="full-image")

    def on_mount(self) -> None:
        self.query_one(ImagePane).show(self.image, f"{self.caption} · escape closes")
