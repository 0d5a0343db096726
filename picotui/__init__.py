"""picotui: a keyboard-driven terminal app for Stable Diffusion 1.5."""

__version__ = "0.1.0"
