"""Every action in the command palette (ctrl+p), so nothing needs a memorised key.

The palette shows only these: Textual's own system commands (themes, screenshots, a second "Keys"
and "Quit") are left out, so each of picotui's actions appears exactly once."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, help, action)
COMMANDS = [
    ("Generate", "Start a job with the form's settings (ctrl+g); queues when busy", "generate"),
    ("Cancel running job", "Stop the image being made (escape)", "cancel_job"),
    ("Cancel all jobs", "Stop the running job and empty the queue", "cancel_all"),
    ("New random seed", "Put a fresh random seed in the seed field (ctrl+r)", "new_seed"),
    ("Lock / unlock seed", "Keep the seed between jobs, or draw a new one each time (ctrl+l)", "toggle_lock"),
    ("Model browser", "Checkpoints, VAEs, LoRAs, embeddings (ctrl+o)", "browser"),
    ("History", "Earlier images and their settings (ctrl+t)", "history"),
    ("X/Y/Z plot", "A grid of images where only the axes' settings change (F4)", "plot"),
    ("Open image recipe… (PNG, JPEG, WebP)", "Load the settings stored in an image: picotui's, AUTOMATIC1111's, "
     "...; Tab completes the path, the outputs folder is browsable, a pasted or dropped path works", "open_png"),
    ("Add LoRA row", "Add a LoRA to the job (ctrl+n)", "add_lora"),
    ("Help for the focused control", "What it does and how to choose a value (F1)", "help_focused"),
    ("Show all keys", "Every key of the app, and where the log file is (F2 or ?)", "keys"),
    ("Show the image full screen", "The current image on the whole terminal (ctrl+f)", "full_image"),
    ("Engine details", "Device, VRAM, memory mode and speed path, and why they were chosen (F3)", "engine_details"),
    ("Save again", "Retry saving images whose save failed (they are still in memory)", "save_again"),
    ("Rescan models folder", "Find files added to models/ since the start", "rescan_models"),
    ("Use the demo model", "The tiny built-in model: paints noise, needs no download", "use_demo"),
    ("Size 512×512", "Square, what SD1.5 was trained on", "size(512,512)"),
    ("Size 512×768", "Portrait", "size(512,768)"),
    ("Size 768×512", "Landscape", "size(768,512)"),
    ("Size 768×768", "Large square: needs more VRAM", "size(768,768)"),
    ("Reset form to defaults", "Every control back to its default (prompt included)", "reset_form"),
    ("Quit", "Cancel running jobs and leave (ctrl+q)", "quit"),
]


class PicoCommands(Provider):
    async def discover(self) -> Hits:
        for title, help_text, action in COMMANDS:
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help_text)
