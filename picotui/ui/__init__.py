"""The Textual terminal app. Never imports torch/diffusers/transformers: the worker does, in its thread."""
