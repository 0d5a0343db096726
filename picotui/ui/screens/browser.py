"""The model browser: checkpoints, VAEs, LoRAs, embeddings, previews and upscalers from the library, one tab each.

Rows show name, family, size, hash (filled in as background hashing finishes) and, for files that
cannot be used, the reason, greyed. Enter picks the highlighted file: the screen closes with a `Pick`
(whoever opened it decides what picking means per kind); r rescans; 1–6 switch tabs (5: Previews, TAESD
decoders, used by themselves; 6: Upscalers, whose family column shows architecture and scale, e.g. "ESRGAN 4x";
f marks a LoRA few-step). The "demo" row is always offered in the checkpoints tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from picotui.engine.models.library import human_size, upscaler_label
from picotui.ui.text import label, plain, say, shorten

KINDS = [("checkpoint", "Checkpoints", "checkpoints"), ("vae", "VAEs", "vae"), ("lora", "LoRAs", "loras"),
         ("embedding", "Embeddings", "embeddings"), ("taesd", "Previews", "vae-approx"),
         ("upscaler", "Upscalers", "upscalers")]
UPSCALER_FOLDERS = ("upscalers", "ESRGAN", "RealESRGAN", "SwinIR", "DAT", "HAT")  # the library's, A1111's too
DEMO_KEY = "demo"
HASH_CHARS = 10  # AutoV2: the first 10 hex digits of the file's sha256, as A1111 and civitai show it


class Pick(NamedTuple):
    """What the browser closes with: the kind of file and its name."""
    kind: str
    name: str


class ModelBrowser(Screen[Pick | None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="browser_back"),
        Binding("r", "app.rescan_models", "Rescan", id="browser_rescan"),  # the library is the app's
        Binding("d", "pick_demo", "Use demo model", id="browser_demo"),
        Binding("1", "tab('checkpoint')", "Checkpoints", show=False, id="browser_checkpoints"),
        Binding("2", "tab('vae')", "VAEs", show=False, id="browser_vaes"),
        Binding("3", "tab('lora')", "LoRAs", show=False, id="browser_loras"),
        Binding("4", "tab('embedding')", "Embeddings", show=False, id="browser_embeddings"),
        Binding("5", "tab('taesd')", "Previews", show=False, id="browser_previews"),
        Binding("6", "tab('upscaler')", "Upscalers", show=False, id="browser_upscalers"),
        Binding("f", "mark_few_step", "Few-step mark", id="browser_few_step",
                tooltip="mark the highlighted LoRA as few-step (LCM, TCD, Hyper-SD...) or unmark it"),
    ]

    def __init__(self, models_dir: Path, files: list, hashes: dict, few_step=None):
        super().__init__()
        self.models_dir = models_dir
        self.few_step = few_step  # FewStepMarks: the user's few-step LoRA marks (None: not shown)
        self.files = list(files)
        self.hashes = dict(hashes)  # path -> 10-hex AutoV2

    def compose(self) -> ComposeResult:
        with Vertical(id="browser"):
            yield Static("", id="browser-intro")
            with TabbedContent(id="browser-tabs"):
                for kind, title, _folder in KINDS:
                    with TabPane(title, id=f"tab-{kind}"):
                        table = DataTable(id=f"table-{kind}", cursor_type="row", zebra_stripes=True,
                                          classes="help-browser-table")
                        yield table
        yield Footer()

    def on_mount(self) -> None:
        for kind, _title, _folder in KINDS:
            table = self.query_one(f"#table-{kind}", DataTable)
            table.add_column("name", key="name")
            table.add_column("family", key="family")
            table.add_column("size", key="size")
            # sized for the full hash now: rows start with "…" and a narrow column would cut it later
            table.add_column("hash", key="hash", width=HASH_CHARS)
            table.add_column("notes", key="notes")
        self.refill(self.files)
        self.query_one("#table-checkpoint", DataTable).focus()

    # ---- data -------------------------------------------------------------------------------------
    def refill(self, files: list) -> None:
        self.files = list(files)
        counts = {kind: 0 for kind, *_ in KINDS}
        for kind, _title, folder in KINDS:
            table = self.query_one(f"#table-{kind}", DataTable)
            table.clear()
            if kind == "checkpoint":
                table.add_row("demo", "SD1.x", "tiny", "", label("built in: random weights, paints noise", "dim"),
                              key=DEMO_KEY)
            folders = UPSCALER_FOLDERS if kind == "upscaler" else (folder,)
            mine = [f for f in self.files if f.kind == kind or (f.kind == "unknown" and f.folder in folders)]
            for mf in sorted(mine, key=lambda f: f.name.lower()):
                counts[kind] += 1
                style = "" if mf.usable else "dim"
                note = "" if mf.usable else f"can't use: {mf.reason or 'unknown reason'}"
                if kind == "lora" and mf.usable and self.few_step is not None:
                    found = self.few_step.profile(mf.name, mf.path)
                    if found is not None:  # what it needs, and how it was told ("by name", "marked"...)
                        note = f"few-step {found.kind} ({'marked' if found.source == 'marked' else 'by ' + found.source})" \
                               f": {found.settings_text()}"
                # "…" until hashing gets there; an empty file has nothing to hash
                hashed = self.hashes.get(str(mf.path), "…" if mf.size else "-")
                family = upscaler_label(mf) if kind == "upscaler" else mf.family  # architecture and scale
                cells = [shorten(mf.name, 48), family, human_size(mf.size), hashed, note]
                table.add_row(*(label(c, style) for c in cells), key=str(mf.path))
        unknown = len(self.files) - sum(counts.values())
        intro = self.query_one("#browser-intro", Static)
        if not any(counts.values()):
            folders = "\n".join(f"  {title:<12} {self.models_dir / folder}" for _k, title, folder in KINDS)
            intro.update(plain(
                f"No model files found yet. Put SD1.5 .safetensors files here, then press r:\n{folders}\n"
                "Until then, press d (or enter on the demo row) to use the tiny demo model."))
        else:
            summary = " · ".join(f"{t}: {counts[k]}" for k, t, _ in KINDS)
            extra = f", {unknown} other files" if unknown else ""
            intro.update(plain(f"{self.models_dir}  {summary}{extra}\nenter uses a file · r rescans · 1–6 switch tabs · f marks a few-step LoRA"))

    def set_hash(self, path: str, value: str) -> None:
        self.hashes[path] = value
        for kind, *_ in KINDS:
            table = self.query_one(f"#table-{kind}", DataTable)
            if path in [str(k.value) for k in table.rows]:
                mf = next((f for f in self.files if str(f.path) == path), None)
                table.update_cell(path, "hash", label(value, "" if mf is None or mf.usable else "dim"),
                                  update_width=True)

    # ---- actions ----------------------------------------------------------------------------------
    def action_tab(self, kind: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{kind}"
        self.query_one(f"#table-{kind}", DataTable).focus()

    def action_mark_few_step(self) -> None:
        table = self.query_one(TabbedContent).active_pane.query_one(DataTable)
        if table.id != "table-lora" or self.few_step is None or not table.row_count:
            say(self, "Few-step marks are for LoRAs: switch to the LoRAs tab (3) and highlight one.", "information")
            return
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        mf = next((f for f in self.files if str(f.path) == key), None)
        if mf is None:
            return
        found = self.few_step.toggle(mf.name, mf.path)
        row = table.cursor_row
        self.refill(self.files)
        table.move_cursor(row=row)
        from picotui.ui.few_step_hint import refresh_form_few_step

        refresh_form_few_step(self.app)
        if self.few_step.problem:
            say(self, self.few_step.problem, "warning")
        else:
            say(self, f"{mf.name}: " + (f"few-step ({found.settings_text()}); F6 in the form applies it."
                                        if found else "not few-step."), "information")

    def action_pick_demo(self) -> None:
        self.dismiss(Pick("checkpoint", "demo"))

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        kind = event.pane.id.removeprefix("tab-")
        self.query_one(f"#table-{kind}", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        kind = event.data_table.id.removeprefix("table-")
        key = str(event.row_key.value)
        if key == DEMO_KEY:
            self.dismiss(Pick("checkpoint", "demo"))
            return
        mf = next((f for f in self.files if str(f.path) == key), None)
        if mf is None:
            return
        if not mf.usable:
            say(self, f"{mf.name} can't be used: {mf.reason}", "warning")
            return
        if kind == "taesd":  # nothing to pick: the live preview uses it whenever it is there
            say(self, f"{mf.name} draws the live preview by itself: nothing to pick.", "information")
            return
        self.dismiss(Pick(kind, mf.name))
