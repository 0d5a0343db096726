"""Upscalers and source images: opening a picture to build on, A1111's resize modes, Lanczos/Nearest and model
upscalers (ESRGAN, Real-ESRGAN, SwinIR, DAT, HAT... through spandrel's architectures), tiled, and the Extras job's
request. Torch is imported inside functions only.
"""
