"""The image pane: the live preview while a job runs, then the final image, drawn with textual-image.

Which textual-image widget draws it is decided before the app starts (see picotui.ui.graphics);
"none" shows a one-line description instead. The picture keeps its aspect ratio: it is fitted into
the pane (in terminal cells, using the cell's pixel size) and refitted when the pane resizes.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Container
from textual.widgets import Static

from picotui.ui import graphics
from picotui.ui.text import plain


class ImagePane(Container):
    """Holds an Image widget (or a text placeholder) and a caption line."""

    def __init__(self, empty: str = "No image yet: ctrl+g generates one.", **kwargs):
        super().__init__(**kwargs)
        self.image = None  # the PIL image shown (preview or final)
        self.caption = ""
        self.empty = empty

    def compose(self) -> ComposeResult:
        image_cls = graphics.image_widget()
        if image_cls is None:
            yield Static("Images are not drawn (graphics: none). Finished images are saved in outputs/.",
                         id="image-none", classes="dim")
        else:
            with Center(classes="picture-row"):  # the caption spans the pane, so center the picture itself
                yield image_cls(None, id="picture")
        yield Static(plain(self.empty, one_line=True), id="image-caption", classes="dim")

    def show(self, image, caption: str) -> None:
        """Draw `image` (a PIL image; None clears the picture) with a one-line caption (shown literally)."""
        self.image = image
        self.caption = caption
        self.query_one("#image-caption", Static).update(plain(caption, one_line=True))
        pictures = self.query("#picture")
        if pictures:
            pictures.first().image = image
            self._fit()
        else:
            self.query_one("#image-none", Static).update(
                "no image" if image is None else f"image {image.width}×{image.height} (graphics: none)")

    def recaption(self, caption: str) -> None:
        """Change the caption, keeping the picture."""
        self.caption = caption
        self.query_one("#image-caption", Static).update(plain(caption, one_line=True))

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Size the picture widget to the largest box with the image's aspect ratio that fits the pane."""
        pictures = self.query("#picture")
        if not pictures or self.image is None:
            return
        picture = pictures.first()
        cell_w, cell_h = graphics.cell_size()
        avail_w = max(1, self.content_size.width)
        avail_h = max(1, self.content_size.height - 1)  # the caption line
        img_w, img_h = self.image.size
        scale = min(avail_w * cell_w / img_w, avail_h * cell_h / img_h)
        picture.styles.width = max(1, min(avail_w, round(img_w * scale / cell_w)))
        picture.styles.height = max(1, min(avail_h, round(img_h * scale / cell_h)))
