"""The Textual terminal app. Never imports torch/diffusers/transformers (the worker does, in its thread),
nor picotui.cli (the command line starts the app, not the other way round)."""
