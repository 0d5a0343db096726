"""Every action in the command palette (ctrl+p), so nothing needs a memorised key.

The palette shows only these: Textual's own system commands (themes, screenshots, a second "Keys"
and "Quit") are left out, so each of picotui's actions appears exactly once. The key in a command's
help comes from the binding that runs the same action (with the [keymap]'s changes), so it never goes
stale. An action runs on the main screen when the main screen has it, else on the app."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from picotui.ui.keymap import keys_for_action

# (title, help, action)
COMMANDS = [
    ("Generate", "Start a job with the form's settings; queues when busy", "generate"),
    ("Cancel running job", "Stop the image being made", "cancel_job"),
    ("Cancel all jobs", "Stop the running job and empty the queue", "cancel_all"),
    ("New random seed", "Put a fresh random seed in the seed field", "new_seed"),
    ("Lock / unlock seed", "Keep the seed between jobs, or draw a new one each time", "toggle_lock"),
    ("Model browser", "Checkpoints, VAEs, LoRAs, embeddings", "browser"),
    ("History", "Earlier images and their settings", "history"),
    ("X/Y/Z plot", "A grid of images where only the axes' settings change", "plot"),
    ("Open image recipe… (PNG, JPEG, WebP)", "Load the settings stored in an image: picotui's, AUTOMATIC1111's, "
     "...; Tab completes the path, the outputs folder is browsable, a pasted or dropped path works", "open_png"),
    ("Second pass: open / fold", "img2img source, denoising strength, hires fix (upscale, then denoise again)",
     "toggle_second_pass"),
    ("Use the image as img2img source", "The image on screen becomes the next job's source picture", "use_as_source"),
    ("Source image from a file… (img2img; PNG, JPEG, WebP)", "Pick the picture img2img starts from; Tab completes "
     "the path, the outputs folder is browsable", "choose_source"),
    ("Upscale this image (Extras)", "Enlarge the image on screen with Lanczos or an upscaler model; saved in "
     "outputs/extras/", "upscale"),
    ("Add LoRA row", "Add a LoRA to the job", "add_lora"),
    ("Help for the focused control", "What it does and how to choose a value", "help_focused"),
    ("Show all keys", "Every key of the app, and where the log file is", "keys"),
    ("Show the image full screen", "The current image on the whole terminal", "full_image"),
    ("Engine details", "Device, VRAM, memory mode and speed path, and why they were chosen", "engine_details"),
    ("Save again", "Retry saving images whose save failed (they are still in memory)", "save_again"),
    ("Rescan models folder", "Find files added to models/ since the start", "rescan_models"),
    ("Use the demo model", "The tiny built-in model: paints noise, needs no download", "use_demo"),
    ("Size 512×512", "Square, what SD1.5 was trained on", "size(512,512)"),
    ("Size 512×768", "Portrait", "size(512,768)"),
    ("Size 768×512", "Landscape", "size(768,512)"),
    ("Size 768×768", "Large square: needs more VRAM", "size(768,768)"),
    ("Reset form to defaults", "Every control back to its default (prompt included)", "reset_form"),
    ("Quit", "Cancel running jobs and leave", "quit"),
]


class PicoCommands(Provider):
    def _commands(self):
        """(title, help with the action's keys, the callback) for each command."""
        app = self.app
        bindings, keymap = app.all_bindings(), app.keymap  # type: ignore[attr-defined]
        main = app.main  # type: ignore[attr-defined]
        for title, help_text, action in COMMANDS:
            name = action.split("(")[0]
            keys = keys_for_action(name, bindings, keymap)
            target = main if hasattr(main, f"action_{name}") else app
            yield title, f"{help_text} ({keys})" if keys else help_text, partial(app.run_action, action, target)

    async def discover(self) -> Hits:
        for title, help_text, run in self._commands():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
