"""The X/Y/Z plot screen (F4): type the axes, see how many images and how long, enter starts; the grid fills
in cell by cell; arrow keys move between cells, enter puts the cell's settings into the form, ctrl+f shows the
cell full screen, escape cancels a running plot (finished cells stay) or goes back, F4 goes back to the form
while the plot goes on.

The axes use the engine's parser (picotui/engine/plots), the same as `picotui grid`. The plot itself belongs
to the app (ui/plot_link.py): this screen only shows it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from picotui.engine.errors import RequestError
from picotui.ui.help_texts import HELP
from picotui.ui.text import plain
from picotui.ui.widgets.image_pane import ImagePane
from picotui.ui.widgets.progress import ProgressPanel

HELP.setdefault("plot", ("X/Y/Z plot", """\
A plot makes one image per combination of values, changing only what the axes say, so you can see what
a setting does. Type each axis as "Type: values"; X makes the columns, Y the rows, Z one grid per value.
Enter starts (a plot of more than 12 images asks for a second enter).

Types: Seed, Var. seed, Steps, CFG scale, Sampler, Schedule type, Checkpoint, VAE, Clip skip, Prompt S/R,
LoRA weight (name), Size. Values: a list (7, 9, 11) or a range: 1-5 is 1,2,3,4,5; 1-10 (+2) counts in
steps of 2; 1.0-2.0 [5] is five values from 1 to 2. A seed of -1 becomes one random seed for the whole grid.

Example 1, what CFG does with each sampler:
  X: CFG scale: 4-12 [5]
  Y: Sampler: Euler a, DPM++ 2M Karras
  10 images; the columns go from loose (4) to strict (12).

Example 2, swap a word and watch the steps:
  X: Prompt S/R: corgi, cat, fox
  Y: Steps: 10-30 (+10)
  The first value is the text searched in the prompt; the first column keeps it.

Prompt matrix: type "Prompt matrix" as the X axis and write the prompt as "a corgi | wearing a hat | in
the snow": every combination of the parts after the first, one seed for all (AUTOMATIC1111's script).

Every cell is saved as its own PNG with its full recipe; the grid PNG (outputs/grids/) carries the first
cell's settings and the axes, as AUTOMATIC1111 writes them. While it runs, arrow keys move between the
cells, enter restores a cell's settings into the form, ctrl+f shows the cell full screen, escape cancels
the plot (finished cells stay), F4 goes back to the form while it goes on (F4 shows it again)."""))

OUTLINE = (255, 200, 0)


class PlotGrid(ImagePane, can_focus=True):
    """The grid image with the chosen cell outlined; arrow keys move, enter restores."""

    BINDINGS = [Binding("left", "move(-1, 0)", "Cell left", show=False, id="plot_left"),
                Binding("right", "move(1, 0)", "Cell right", show=False, id="plot_right"),
                Binding("up", "move(0, -1)", "Cell up", show=False, id="plot_up"),
                Binding("down", "move(0, 1)", "Cell down", show=False, id="plot_down"),
                Binding("enter", "restore", "Restore cell", id="plot_restore")]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.guide_lines = []  # the main pane's first-run welcome is about single images; the caption says enough

    def action_move(self, dx: int, dy: int) -> None:
        self.screen.move(dx, dy)

    def action_restore(self) -> None:
        self.screen.restore()


class PlotScreen(Screen):
    BINDINGS = [Binding("escape", "back", "Cancel plot / back", id="plot_back"),
                Binding("ctrl+f", "full_image", "Image", priority=True, id="plot_full_image")]

    def action_full_image(self) -> None:
        from picotui.ui.screens.image_view import ImageModal

        shown = self.picture()
        if shown is None:
            self.app.say("This cell is not made yet.", timeout=3)
            return
        self.app.push_screen(ImageModal(*shown))

    def __init__(self, session=None):
        super().__init__()
        self.session = session
        self.plan = session.plan if session else None
        self.cell = (0, 0, 0)  # ix, iy, iz of the chosen cell
        self.confirm_for: tuple | None = None  # the axes a first enter asked to confirm
        self._drawn = None  # ((session, cells ended), the grid image drawn for them)

    def compose(self) -> ComposeResult:
        texts = self.session.texts if self.session else ("", "", "")
        with Horizontal(id="plot-main"):
            with Vertical(id="plot-left", classes="help-plot"):
                for axis, text, hint in zip("xyz", texts, ("CFG scale: 4-12 [5]", "Sampler: Euler a, DPM++ 2M Karras",
                                                           "optional, e.g. Steps: 10, 20")):
                    with Horizontal(classes="plot-axis"):
                        yield Label(f"{axis.upper()} ", classes="field-label")
                        yield Input(text, id=f"plot-{axis}", placeholder=hint, compact=True, classes="help-plot")
                yield Static("Type an axis: F1 shows the syntax and two examples.", id="plot-summary", markup=False)
                yield Static("", id="plot-cell", markup=False)
                yield Static("", id="plot-progress", markup=False)
            with Vertical(id="plot-right"):
                yield PlotGrid(empty="The grid fills in here, cell by cell.", id="plot-grid", classes="help-plot")
                yield ProgressPanel(id="progress")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#plot-x").focus()
        if self.session is not None:
            self.update_from(self.session, None)
        else:
            self._replan()

    # ---- typing the axes --------------------------------------------------------------------------
    def _texts(self) -> tuple[str, str, str]:
        return tuple(self.query_one(f"#plot-{a}", Input).value for a in "xyz")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("plot-"):
            self.confirm_for = None
            self._replan()

    def _replan(self):
        summary = self.query_one("#plot-summary", Static)
        texts = self._texts()
        if not any(t.strip() for t in texts):
            summary.update("Type an axis, e.g. CFG scale: 4-12 [5] (F1: syntax and examples).")
            return None
        try:
            plan = self.app.plan_plot(*texts)
        except RequestError as exc:
            summary.update(plain(str(exc)))
            return None
        summary.update(plain(f"{self.app.plot_summary(plan)} · enter starts"))
        return plan

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from picotui.ui.plot_link import CONFIRM_ABOVE

        plan = self._replan()
        if plan is None:
            return
        texts = self._texts()
        if plan.count > CONFIRM_ABOVE and self.confirm_for != texts:
            self.confirm_for = texts
            self.query_one("#plot-summary", Static).update(plain(
                f"{self.app.plot_summary(plan)} · that is a lot: enter again to start, or change the axes"))
            return
        self.confirm_for = None
        if self.app.start_plot(plan, texts):
            self.session, self.plan, self.cell = self.app.plot, plan, (0, 0, 0)
            self.update_from(self.session, None)
            self.query_one(PlotGrid).focus()

    # ---- the running plot -------------------------------------------------------------------------
    def update_from(self, session, event) -> None:
        """Redraw for a new state of `session` (called by the app for every plot event)."""
        from picotui.engine.events import Loading, Step

        if session is not self.session:
            self.session, self.plan = session, session.plan
        progress = self.query_one(ProgressPanel)
        if isinstance(event, Step):
            progress.step(event.index, event.total, event.it_per_s, event.eta_s, 0, 1)
        elif isinstance(event, Loading):
            progress.loading(event.stage, event.fraction)
        else:
            self._draw()
            if not session.running:
                progress.done("plot finished" if not session.cancelled else "plot cancelled",
                              "cancelled" if session.cancelled else "done")
        self.query_one("#plot-progress", Static).update(plain(session.progress_text()))
        if event is None:  # started, or shown again: the summary says what this plot is, not "enter starts"
            self.query_one("#plot-summary", Static).update(plain(session.plan.describe()))

    def _draw(self) -> None:
        from PIL import ImageDraw

        from picotui.engine.plots.drawing import draw_plot

        if self.plan is None or self.session is None:
            return
        made = len(self.session.grid.results)
        if self._drawn is None or self._drawn[0] != (self.session, made):  # arrow keys only move the outline
            self._drawn = ((self.session, made), draw_plot(self.plan, self.session.grid.images()))
        image = self._drawn[1].copy()
        box = self._cell_box(image)
        if box is not None:
            draw = ImageDraw.Draw(image)
            width = max(2, (box[2] - box[0]) // 40)
            draw.rectangle(box, outline=OUTLINE, width=width)
        self.query_one(PlotGrid).show(image, self._cell_caption())
        self.query_one("#plot-cell", Static).update(plain(self._cell_caption()))

    def _cell_box(self, image):
        """Where the chosen cell is in the drawn grid (cells are flush at the bottom right of each grid)."""
        nx, ny, nz = self.plan.shape
        ix, iy, iz = self.cell
        grid_w = image.width // nz
        cw = self._cell_size()[0]
        ch = self._cell_size()[1]
        left = grid_w * (iz + 1) - nx * cw
        top = image.height - ny * ch
        x0, y0 = left + ix * cw, top + iy * ch
        return (x0, y0, x0 + cw - 1, y0 + ch - 1)

    def _cell_size(self):
        images = self.session.grid.images() if self.session else {}
        first = next((images[i] for i in sorted(images)), None)
        return first.size if first is not None else (self.plan.base.width, self.plan.base.height)

    def _index(self) -> int:
        return self.plan.index(*self.cell)

    def _cell_caption(self) -> str:
        if self.plan is None:
            return ""
        index = self._index()
        captions = [a.caption(a.values[i]) for a, i in zip(self.plan.axes, self.cell) if a is not None]
        result = self.session.grid.results.get(index) if self.session else None
        state = ("made" if result.image is not None else result.error) if result else "waiting"
        return f"cell {index + 1}/{self.plan.count}: {' · '.join(captions)} · {state} · enter restores"

    def move(self, dx: int, dy: int) -> None:
        if self.plan is None:
            return
        nx, ny, nz = self.plan.shape
        ix, iy, iz = self.cell
        ix += dx
        if ix < 0 and iz > 0:  # left off the grid: the previous Z grid, and on from the right
            iz, ix = iz - 1, nx - 1
        elif ix >= nx and iz < nz - 1:
            iz, ix = iz + 1, 0
        self.cell = (min(max(ix, 0), nx - 1), min(max(iy + dy, 0), ny - 1), iz)
        self._draw()

    def picture(self):
        """The chosen cell's image and caption (ctrl+f), or None when it is not made yet."""
        if self.plan is None or self.session is None:
            return None
        result = self.session.grid.results.get(self._index())
        if result is None or result.image is None:
            return None
        return result.image, self._cell_caption().removesuffix(" · enter restores")

    def restore(self) -> None:
        if self.plan is None:
            return
        result = self.session.grid.results.get(self._index()) if self.session else None
        request = result.request if result is not None and result.request is not None else \
            self.plan.cells[self._index()].request
        where = str(result.path) if result is not None and result.path else f"plot cell {self._index() + 1}"
        self.app.restore_cell(request, where)

    def action_back(self) -> None:
        if self.app.cancel_plot():
            self.query_one("#plot-progress", Static).update("cancelling: finished cells stay…")
            return
        self.app.pop_screen()
