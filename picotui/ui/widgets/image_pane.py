"""The image pane: the live preview while a job runs, then the final image, drawn with textual-image.

Which textual-image widget draws it is decided before the app starts (see picotui.ui.graphics);
"none" shows a one-line description instead. The picture keeps its aspect ratio: it is fitted into
the pane (in terminal cells, using the cell's pixel size) and refitted when the pane resizes.

Previews fit the link (picotui.ui.image_widgets): a frame is skipped when the bytes-per-second budget
is spent, and a sixel preview is sent cheaply (scaled up by repeating pixels, which sixel's run-length
coding packs, and 16 colours); the final image is always drawn, once, at full quality. The encoding
happens when Textual renders, on the app's thread, never on the worker thread that feeds the GPU.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Container, Horizontal
from textual.widgets import Static

from picotui.ui import graphics
from picotui.ui.image_widgets import meter
from picotui.ui.text import plain

WELCOME = ("ctrl+g makes a picture with the form's settings: it appears here, step by step. "
           "F1 explains the focused field, F2 lists every key, F3 shows the engine and the terminal's graphics.")


class ImagePane(Container):
    """Holds an Image widget (or a text placeholder) and a caption line. Until the first picture, the
    pane itself holds the first-run guidance (start-up notes too), so nothing floats over a picture."""

    DEFAULT_CSS = """
    ImagePane #image-guide { padding: 1 2; width: 100%; height: auto; }
    ImagePane .picture-row { width: 1fr; height: auto; align-horizontal: center; }
    ImagePane #source-picture { display: none; margin-right: 1; }
    """

    def __init__(self, empty: str = "No image yet: ctrl+g generates one.", **kwargs):
        super().__init__(**kwargs)
        self.image = None  # the PIL image shown (preview or final)
        self.caption = ""
        self.empty = empty
        self.guide_lines: list[str] = [WELCOME]
        self.path: Path | None = None  # the shown image's file (None: a preview, or not saved): what img2img can start from
        self.source: str | None = None  # the img2img source the shown image was made from, drawn beside it
        self._source_image = None  # that source, read with PIL (once per source)

    def compose(self) -> ComposeResult:
        yield Static(self._guide_text(), id="image-guide", markup=False)
        image_cls = graphics.image_widget()
        if image_cls is None:
            yield Static("Images are not drawn (graphics: none). Finished images are saved in outputs/.",
                         id="image-none", classes="dim")
        else:
            # the caption spans the pane, so center the pictures themselves; the source (img2img) on the left
            with Horizontal(classes="picture-row"):
                yield image_cls(None, id="source-picture")
                yield image_cls(None, id="picture")
        yield Static(plain(self.empty, one_line=True), id="image-caption", classes="dim")

    def _guide_text(self):
        return plain("\n\n".join(self.guide_lines))

    def add_guide(self, text: str) -> bool:
        """Put a first-run note in the empty pane. False when the pane cannot show it (a picture is there,
        or the screen is too small for the pane): the caller says it another way."""
        if self.image is not None or not self.display or self.app.has_class("compact"):
            return False
        if text not in self.guide_lines:
            self.guide_lines.append(text)
            self.query_one("#image-guide", Static).update(self._guide_text())
        return True

    PREVIEW_COLORS = 16  # sixel previews: fewer colours, far fewer bytes (the final image has 256)

    def on_mount(self) -> None:
        meter.attach(self.app)  # count every byte Textual writes, for the budget and F3

    def show(self, image, caption: str, *, preview: bool = False, path=None, source: str | None = None) -> None:
        """Draw `image` (a PIL image; None clears the picture) with a one-line caption (shown literally).
        A `preview` frame is skipped when the preview budget is spent (the caption still moves on).
        `path` is the image's file, `source` the img2img source it was made from (drawn beside it)."""
        self.path = path
        self._show_source(source if image is not None else None)
        self.caption = caption
        self.query_one("#image-caption", Static).update(plain(caption, one_line=True))
        self.query_one("#image-guide").display = image is None
        pictures = self.query("#picture")
        budget = graphics.preview_budget() if pictures and preview else None
        if budget is not None and not budget.allow(meter.total, meter.last("preview")):
            self.image = image  # ctrl+f shows the newest frame even when the pane skipped it
            return
        self.image = image
        if pictures:
            picture = pictures.first()
            meter.picture_shown("preview" if preview else "final")
            had_picture = picture.image is not None
            before = (picture.styles.width, picture.styles.height)
            self._fit()
            if hasattr(picture, "_sixel_options"):  # textual-image's sixel widget reads it when the image is set
                from textual_image.widget import SixelOptions

                picture._sixel_options = SixelOptions(colors=self.PREVIEW_COLORS) if preview else None
                if preview and image is not None:
                    image = self._blocky(image, picture)
            picture.image = image
            after = (picture.styles.width, picture.styles.height)
            # a smaller picture leaves the old one's edge where Textual sees no changed cell; a same-size
            # or larger one covers it (the picture is centred, top-aligned): repaint only when it shrank
            if had_picture and any(a is not None and b is not None and a.value < b.value for a, b in zip(after, before)):
                self._repaint_around()
        else:
            made = f" from source {Path(self.source).name}" if self.source else ""
            self.query_one("#image-none", Static).update(plain(
                "no image" if image is None else f"image {image.width}×{image.height}{made} (graphics: none)"))

    def _show_source(self, source: str | None) -> None:
        """Read the img2img source from its file (PIL; once per source) and draw it left of the picture;
        nothing when the shown image has no source or its file cannot be read any more."""
        if source != self.source:
            self.source, self._source_image = source, _read_picture(source) if source else None
        pictures = self.query("#source-picture")
        if not pictures:
            return
        widget = pictures.first()
        shown = self._source_image is not None
        if widget.display != shown or widget.image is not self._source_image:
            widget.display = shown
            widget.image = self._source_image
            self._repaint_around()

    def recaption(self, caption: str) -> None:
        """Change the caption, keeping the picture."""
        self.caption = caption
        self.query_one("#image-caption", Static).update(plain(caption, one_line=True))

    def on_resize(self) -> None:
        self._fit()
        if self.image is not None:
            self._repaint_around()

    def _repaint_around(self) -> None:
        """Sixel pixels outlive the text cells under them: when the picture moves or changes size, repaint
        the whole screen, so no cell keeps a strip of an old picture (Textual rewrites only changed cells)."""
        pictures = self.query("#picture")
        if pictures and hasattr(pictures.first(), "_sixel_options"):  # textual-image's sixel widget
            self.app.refresh(repaint=True, layout=True)

    @staticmethod
    def _blocky(image, picture):
        """The preview made cheap to send as sixel: scaled up by a whole factor by repeating pixels (long
        runs of one colour, which sixel's run-length coding packs), a factor that is a multiple of 6 when it
        fits so every preview row fills whole sixel bands (no band mixes two rows' colours), placed on a
        transparent canvas of exactly the picture's pixel size, so textual-image does not resize it again
        (a smooth resize would break the runs). It may come out a little smaller than the final image."""
        from PIL import Image as PILImage

        cell_w, cell_h = graphics.cell_size()
        width = picture.styles.width.value if picture.styles.width else 0
        height = picture.styles.height.value if picture.styles.height else 0
        if width <= 0 or height <= 0:
            return image
        box_w, box_h = int(width * cell_w), int(height * cell_h)
        factor = min(box_w // image.width, box_h // image.height)
        if factor >= 6:
            factor -= factor % 6
        if factor < 1:
            return image
        scaled = image.convert("RGBA").resize((image.width * factor, image.height * factor),
                                              PILImage.Resampling.NEAREST)
        canvas = PILImage.new("RGBA", (box_w, box_h), (0, 0, 0, 0))
        top = (box_h - scaled.height) // 2
        canvas.paste(scaled, ((box_w - scaled.width) // 2, top - top % 6))
        return canvas

    def _fit(self) -> None:
        """Size the picture widget to the largest box with the image's aspect ratio that fits the pane (half
        the pane each, side by side, when the img2img source is shown too)."""
        pictures = self.query("#picture")
        if not pictures or self.image is None:
            return
        avail_w = max(1, self.content_size.width)
        avail_h = max(1, self.content_size.height - 1)  # the caption line
        if self._source_image is not None:
            avail_w = max(1, (avail_w - 1) // 2)  # the source's margin takes one column
            _fit_into(self.query_one("#source-picture"), self._source_image, avail_w, avail_h)
        _fit_into(pictures.first(), self.image, avail_w, avail_h)


def _fit_into(picture, image, avail_w: int, avail_h: int) -> None:
    """Size `picture` to the largest box of `image`'s aspect ratio within avail_w × avail_h cells."""
    cell_w, cell_h = graphics.cell_size()
    img_w, img_h = image.size
    scale = min(avail_w * cell_w / img_w, avail_h * cell_h / img_h)
    picture.styles.width = max(1, min(avail_w, round(img_w * scale / cell_w)))
    picture.styles.height = max(1, min(avail_h, round(img_h * scale / cell_h)))


def _read_picture(path: str):
    """The file's pixels (decoded fully, so the file is closed), or None when it cannot be read."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
