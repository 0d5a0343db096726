"""History: this session's images and earlier ones from outputs/, newest first.

The left list is browsable with the arrow keys; the right side draws the highlighted image and shows
its settings and what differs from the current form. Enter (or r) restores the settings (seed
included, and locked) into the form; s saves again an image whose save failed (it is still in
memory); ctrl+f shows the image full screen. Recipes and pictures of older PNGs are read lazily, in
a thread, when highlighted.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from picotui.engine.errors import PicoError, one_line
from picotui.engine.request import GenerationRequest
from picotui.ui.screens.image_view import ImageModal
from picotui.ui.text import escape_controls, label, plain, say, shorten
from picotui.ui.widgets.image_pane import ImagePane

log = logging.getLogger("picotui.ui")
COMPARED = [("prompt", "prompt"), ("negative_prompt", "negative"), ("checkpoint", "checkpoint"), ("vae", "VAE"),
            ("loras", "LoRAs"), ("sampler", "sampler"), ("steps", "steps"), ("cfg", "CFG"), ("width", "width"),
            ("height", "height"), ("seed", "seed"), ("clip_skip", "clip skip"), ("batch_count", "batch")]
# A1111's noise settings: compared always, listed only when not the default (most recipes have none)
NOISE_COMPARED = [("rng", "RNG"), ("variation_seed", "var. seed"), ("variation_strength", "var. str."),
                  ("seed_resize_from", "seed resize"), ("eta_noise_seed_delta", "ENSD")]
# the second pass (img2img, hires fix): listed only when the image had one
SECOND_PASS_COMPARED = [("init_image", "source"), ("resize_mode", "resize"), ("denoising_strength", "denoising"),
                        ("hires", "hires fix"), ("hires_scale", "hires by"), ("hires_resize", "hires to"),
                        ("hires_upscaler", "upscaler"), ("hires_steps", "hires steps"),
                        ("hires_sampler", "hires smp."), ("hires_schedule_type", "hires sch."),
                        ("hires_prompt", "hires pr."), ("hires_negative_prompt", "hires neg.")]
PICTURES_KEPT = 8  # older PNGs' pictures decoded for this screen; a few MB each, so only the recent ones


@dataclass
class HistoryEntry:
    path: Path | None
    request: GenerationRequest | None = None  # None until read (older PNGs) or when unreadable
    session: bool = False
    problem: str | None = None  # why the recipe could not be read
    unmatched: list[str] = field(default_factory=list)
    source: str = "picotui"
    image: object = None  # the PIL image, kept for this session's entries
    parameters: str = ""  # the A1111 text written into the PNG (needed to save it again)
    save_error: str | None = None  # why it is not on disk (the image is still in memory)

    @property
    def unsaved(self) -> bool:
        return self.path is None and self.image is not None and self.request is not None

    @property
    def label(self):
        """One line for the list: file name, where it comes from, the start of the prompt."""
        name = self.path.name if self.path else "NOT SAVED"
        where = "this session" if self.session else (self.path.parent.name if self.path else "")
        prompt = shorten(self.request.prompt, 60) if self.request else ""
        return label(f"{shorten(name, 24):<24} {where:<12} {prompt}", "bold red" if self.unsaved else "")


def _value(request: GenerationRequest, name: str) -> str:
    value = getattr(request, name)
    if name == "loras":
        return ", ".join(f"{l.name}:{l.weight:g}" for l in value) or "none"
    if name == "vae":
        return value or "checkpoint's own"
    if name in ("cfg", "variation_strength", "denoising_strength", "hires_scale"):
        return f"{value:g}"
    if name == "init_image":
        return Path(value).name if value else "none"
    if name == "hires":
        return "on" if value else "off"
    if name == "hires_resize":
        return f"{value[0]}x{value[1]}" if value else "off"
    if name in ("hires_sampler", "hires_schedule_type", "hires_prompt", "hires_negative_prompt"):
        return value or "same"
    if name == "seed_resize_from":
        return f"{value[0]}x{value[1]}" if value else "off"
    return "random" if value is None else str(value)


def describe(entry: HistoryEntry, current: GenerationRequest | None) -> str:
    """The entry's file (or why it is not saved), what differs from the form (first: it is what one
    looks for), then every setting."""
    if entry.request is None:
        return entry.problem or "Reading its settings…"
    lines = []
    if entry.path:
        lines.append(f"file        {entry.path}")
    elif entry.unsaved:
        lines.append(f"NOT SAVED   {entry.save_error or 'saving failed'}")
        lines.append("            s saves it again (it is still in memory)")
    if current is not None:
        diffs = [f"  {label}: {_value(entry.request, name)!s:.40} → yours {_value(current, name)!s:.40}"
                 for name, label in compared_fields(entry.request, current)
                 if _value(entry.request, name) != _value(current, name)]
        lines.append("Differs from your form:" if diffs else "Same settings as your form.")
        lines.extend(diffs)
    lines.append("")
    lines.extend(f"{label:<11} {_value(entry.request, name)}" for name, label in COMPARED)
    default = GenerationRequest()
    lines.extend(f"{label:<11} {_value(entry.request, name)}" for name, label in NOISE_COMPARED
                 if _value(entry.request, name) != _value(default, name))
    lines.extend(f"{label:<11} {_value(entry.request, name)}" for name, label in _second_pass_fields(entry.request))
    if entry.unmatched:
        lines.append(f"not used    {', '.join(entry.unmatched)}")
    return escape_controls("\n".join(lines))


def compared_fields(*requests: GenerationRequest | None) -> list[tuple[str, str]]:
    """(field, label) of every setting worth comparing between `requests`: the main ones, A1111's noise
    settings, and the second pass's when one of them has one."""
    return COMPARED + NOISE_COMPARED + _second_pass_fields(*requests)


def _second_pass_fields(*requests: GenerationRequest | None) -> list[tuple[str, str]]:
    """The second-pass fields worth listing: img2img's or hires fix's, for whichever of `requests` has one."""
    used = [r for r in requests if r is not None and (r.hires or r.init_image)]
    img2img = {"init_image", "resize_mode", "denoising_strength"}
    hires = {"denoising_strength", *(name for name, _label in SECOND_PASS_COMPARED if name.startswith("hires"))}
    names = set().union(*(img2img if request.init_image else hires for request in used))
    return [(name, label) for name, label in SECOND_PASS_COMPARED if name in names]


def _source(entry: HistoryEntry) -> str | None:
    """The img2img source an entry was made from (drawn beside it), when its recipe names one."""
    return entry.request.init_image if entry.request is not None else None


def load_picture(path: Path):
    """The PNG's pixels as a PIL image (decoded fully, so the file is closed), or None if unreadable."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            return im.convert("RGB") if im.mode not in ("RGB", "RGBA") else im.copy()
    except Exception:
        return None


def history_entries(session: list[HistoryEntry], outputs_dir: Path, limit: int = 500) -> list[HistoryEntry]:
    """This session's entries, then earlier PNGs from outputs/ (newest first; their recipes are read lazily)."""
    seen = {str(e.path) for e in session if e.path}
    try:
        from picotui.engine.recipes.output import list_outputs

        older = [p for p in list_outputs(outputs_dir) if str(p) not in seen]
    except Exception as exc:
        log.warning("could not list outputs: %s", exc)
        older = []
    return list(session) + [HistoryEntry(Path(p)) for p in older[:limit]]


def read_entry(entry: HistoryEntry, library=None) -> None:
    """Fill a history entry from its PNG's recipe (picotui's JSON or A1111's parameters)."""
    try:
        from picotui.engine.recipes.metadata import read_recipe

        recipe = read_recipe(entry.path, library)
    except PicoError as exc:
        entry.problem = str(exc)
        return
    except Exception as exc:
        entry.problem = f"Could not read {entry.path.name}: {one_line(exc, 120)}"
        return
    entry.request, entry.unmatched, entry.source = recipe.request, list(recipe.unmatched), recipe.source


class HistoryScreen(Screen[HistoryEntry | None]):
    """Closes with the entry whose settings to restore (enter), or nothing (escape)."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="history_back"),
                Binding("enter", "restore", "Restore settings", priority=True, id="history_restore"),
                Binding("r", "restore", "Restore", show=False, id="history_restore_r"),
                Binding("s", "save_again", "Save again", id="history_save_again"),
                Binding("m", "mark", "Mark", id="history_mark"),
                Binding("c", "compare", "Compare marked", id="history_compare"),
                Binding("i", "use_source", "img2img source", id="history_use_source",
                        tooltip="use the highlighted image as the img2img source of the next job"),
                Binding("ctrl+f", "full_image", "Image", priority=True, id="history_full_image")]

    def __init__(self, entries: list[HistoryEntry], current: GenerationRequest | None, read_recipe, save_entry,
                 use_source=None):
        super().__init__()
        self.use_source = use_source  # makes a file the form's img2img source (the main screen's)
        self.entries = entries
        self.current = current
        self.read_recipe = read_recipe  # fills a HistoryEntry from its PNG (runs in a thread)
        self.save_entry = save_entry  # saves an unsaved entry's image; True when it worked
        self._pictures: OrderedDict[int, object] = OrderedDict()  # index -> PIL image (older PNGs)
        self._reading: set[int] = set()  # entries whose recipe is being (or was) read
        self.marked: list[int] = []  # up to two entries marked for comparing (screens/compare.py)

    def compose(self) -> ComposeResult:
        with Horizontal(id="history"):
            if self.entries:
                yield OptionList(*[Option(e.label, id=str(i)) for i, e in enumerate(self.entries)],
                                 id="history-list")
            else:
                yield Static("No images yet: generate one with ctrl+g (they are saved in outputs/).",
                             id="history-list")
            with Vertical(id="history-side"):
                yield ImagePane(empty="", id="history-image")
                with VerticalScroll(id="history-detail-box"):
                    yield Static("", id="history-detail")
        yield Footer()

    def on_mount(self) -> None:
        if self.entries:
            options = self.query_one(OptionList)
            options.highlighted = 0
            options.focus()
            self._show(0)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show(int(event.option.id))

    @property
    def highlighted(self) -> HistoryEntry | None:
        if not self.entries:
            return None
        index = self.query_one(OptionList).highlighted
        return None if index is None else self.entries[index]

    def picture(self) -> tuple[object, str] | None:
        """The highlighted entry's picture and a caption, for the full-screen view (None: not loaded)."""
        pane = self.query_one("#history-image", ImagePane)
        return (pane.image, pane.caption) if pane.image is not None else None

    def _show(self, index: int) -> None:
        entry = self.entries[index]
        self.query_one("#history-detail", Static).update(plain(describe(entry, self.current)))
        if entry.request is None and entry.problem is None and entry.path is not None and index not in self._reading:
            self._reading.add(index)  # one read per entry, however often the arrow keys pass over it
            self.run_worker(lambda: self._read(index), thread=True, group="recipe")
        picture = entry.image if entry.image is not None else self._pictures.get(index)
        pane = self.query_one("#history-image", ImagePane)
        if picture is not None:
            pane.show(picture, self._caption(entry), source=_source(entry))
        else:
            pane.show(None, "loading the picture…" if entry.path else "")
            if entry.path is not None:
                self.run_worker(lambda: self._load_picture(index), thread=True, group="picture", exclusive=True)

    @staticmethod
    def _caption(entry: HistoryEntry) -> str:
        name = entry.path.name if entry.path else "not saved"
        return f"{name} · seed {entry.request.seed}" if entry.request else name

    def _read(self, index: int) -> None:
        entry = self.entries[index]
        self.read_recipe(entry)
        self.app.call_from_thread(self._refresh_entry, index)

    def _load_picture(self, index: int) -> None:
        picture = load_picture(self.entries[index].path)
        self.app.call_from_thread(self._picture_loaded, index, picture)

    def _picture_loaded(self, index: int, picture) -> None:
        if picture is None:
            if self.query_one(OptionList).highlighted == index:
                self.query_one("#history-image", ImagePane).show(None, "the picture could not be read")
            return
        self._pictures[index] = picture
        while len(self._pictures) > PICTURES_KEPT:
            self._pictures.popitem(last=False)
        if self.query_one(OptionList).highlighted == index:
            entry = self.entries[index]
            self.query_one("#history-image", ImagePane).show(picture, self._caption(entry), source=_source(entry))

    def _refresh_entry(self, index: int) -> None:
        options = self.query_one(OptionList)
        options.replace_option_prompt_at_index(index, self.entries[index].label)
        if options.highlighted == index:
            self._show(index)

    def action_restore(self) -> None:
        entry = self.highlighted
        if entry is None:
            return
        if entry.request is None:
            say(self, entry.problem or "Its settings are still being read; try again.", "warning")
            return
        # An earlier session's picture is read here, not kept in the entry: the main screen shows it too
        # (so ctrl+s, F8 and ctrl+f work on it at once).
        index = self.query_one(OptionList).highlighted
        picture = self._pictures.get(index) if entry.image is None and index is not None else None
        self.dismiss(replace(entry, image=picture) if picture is not None else entry)

    def action_full_image(self) -> None:
        shown = self.picture()
        if shown is None:
            say(self, "No image to show yet: ctrl+g generates one.", timeout=3)
            return
        self.app.push_screen(ImageModal(*shown))

    def action_mark(self) -> None:
        """Mark (or unmark) the highlighted image for comparing; a third mark drops the oldest."""
        options = self.query_one(OptionList) if self.entries else None
        if options is None or options.highlighted is None:
            return
        index = options.highlighted
        changed = [index] + ([] if index in self.marked or len(self.marked) < 2 else [self.marked.pop(0)])
        if index in self.marked:
            self.marked.remove(index)
        else:
            self.marked.append(index)
        for i in changed:
            prompt = self.entries[i].label
            options.replace_option_prompt_at_index(i, label("◆ ", "bold yellow") + prompt if i in self.marked else prompt)
        say(self, f"{len(self.marked)} marked: c compares " + ("them." if len(self.marked) == 2 else
                                                               "it with the highlighted image."), timeout=3)

    def action_compare(self) -> None:
        from picotui.ui.screens.compare import CompareScreen

        highlighted = self.query_one(OptionList).highlighted if self.entries else None
        pair = self.marked if len(self.marked) == 2 else [*self.marked, highlighted] if self.marked else []
        if len(pair) != 2 or pair[0] == pair[1] or None in pair:
            say(self, "Mark two images with m (or one, then highlight another), then c compares them.", timeout=4)
            return
        entries = [self.entries[i] for i in pair]
        for entry in entries:
            if entry.request is None and entry.path is not None:
                self.read_recipe(entry)
        if any(e.request is None for e in entries):
            say(self, "The settings of one of them could not be read.", "warning")
            return
        self.app.push_screen(CompareScreen(*entries))

    def action_use_source(self) -> None:
        entry = self.highlighted
        if entry is None or self.use_source is None:
            return
        if entry.path is None:
            say(self, "This image is not saved: s saves it again, then i uses it as the source.", "warning")
            return
        self.app.pop_screen()
        self.use_source(entry.path)

    def action_save_again(self) -> None:
        entry = self.highlighted
        if entry is None:
            return
        if not entry.unsaved:
            say(self, "This image is already saved." if entry.path else "Only images still in memory can be "
                "saved again.", timeout=3)
            return
        if self.save_entry(entry):
            self._refresh_entry(self.entries.index(entry))
