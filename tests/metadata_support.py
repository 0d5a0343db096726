"""PNGs carrying metadata the way other tools write it, for the metadata and history tests."""

from __future__ import annotations

from PIL import Image, PngImagePlugin

# What AUTOMATIC1111 1.10 writes for a txt2img image with hires fix, a LoRA and an embedding.
A1111_SAMPLE = (
    "masterpiece, best quality, 1girl, (blue eyes:1.2),\n"
    "city street at night <lora:add_detail:0.6>\n"
    "Negative prompt: (worst quality, low quality:1.4), easynegative,\n"
    "lowres\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 3141592653, Size: 512x768, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, "
    "VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.45, Clip skip: 2, ENSD: 31337, "
    "Hires upscale: 2, Hires upscaler: Latent, Lora hashes: \"add_detail: 7c6bad76eb\", "
    "TI hashes: \"easynegative: c74b4e810b\", Version: v1.10.1")


def metadata_png(path, parameters: str | None = None, *, picotui: str | None = None, size=(8, 8)):
    """A PNG with A1111's `parameters` tEXt chunk (as its images.save_image writes it) and/or a `picotui`
    iTXt chunk; returns `path`."""
    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    if picotui is not None:
        info.add_itxt("picotui", picotui)
    Image.new("RGB", size, (30, 60, 90)).save(path, pnginfo=info)
    return path
