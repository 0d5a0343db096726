"""TAESD: the tiny autoencoder that turns latents into a real picture for the live preview in a few ms.

Looked for in models/vae-approx/ (A1111 keeps it in models/VAE-taesd/, ComfyUI in models/vae_approx/;
those are searched too, so a models folder shared with them works). Never downloaded. The file is
madebyollin's decoder state dict (taesd_decoder.safetensors or .pth): an nn.Sequential whose index 0 is
a parameter-free clamp, so its key "N.x" is diffusers' AutoencoderTiny "decoder.layers.(N-1).x"
(diffusers' scripts/convert_tiny_autoencoder_to_diffusers.py); files already in diffusers' layout load as
they are. Decoding goes through diffusers' AutoencoderTiny: the preview is what diffusers would decode.

Torch is imported inside functions (the library and the UI import this module).
"""

from __future__ import annotations

from pathlib import Path

TAESD_FOLDERS = ("vae-approx", "VAE-taesd", "vae_approx")  # ours, A1111's, ComfyUI's
TAESD_NAMES = ("taesd_decoder.safetensors", "taesd_decoder.pth")  # SD1.x decoder; a .pth needs the pickle opt-in


def find_taesd(models_root, allow_pickle: bool = False) -> tuple[Path | None, str | None]:
    """(the decoder file to use, None) or (None, why a file that is there cannot be used) or (None, None)."""
    why = None
    for folder in TAESD_FOLDERS:
        for name in TAESD_NAMES:
            path = Path(models_root) / folder / name
            if not path.is_file():
                continue
            if path.suffix == ".pth" and not allow_pickle:
                why = (f"{path} is a pickle file: the live preview uses it with --allow-pickle, or get "
                       f"taesd_decoder.safetensors instead (huggingface.co/madebyollin/taesd).")
                continue
            return path, None
    return None, why


def decoder_state_dict(tensors: dict) -> dict:
    """AutoencoderTiny decoder keys ("layers.N.x") from madebyollin's ("N+1.x") or diffusers' layout."""
    out = {}
    for key, value in tensors.items():
        if key.startswith("decoder."):
            out[key.removeprefix("decoder.")] = value
        elif key.split(".", 1)[0].isdigit():
            index, rest = key.split(".", 1)
            out[f"layers.{int(index) - 1}.{rest}"] = value
    return out


def load_taesd(path: Path, device, dtype, allow_pickle: bool = False):
    """diffusers' AutoencoderTiny (SD1.x config) with the decoder weights from `path`; ModelError if unusable."""
    import torch
    from diffusers import AutoencoderTiny

    from picotui.engine.errors import ModelError
    from picotui.engine.models.weights import load_pickle, load_safetensors

    path = Path(path)
    tensors = load_pickle(path, allow_pickle) if path.suffix == ".pth" else load_safetensors(path)
    with torch.device("meta"):
        taesd = AutoencoderTiny()
    try:
        taesd.decoder.load_state_dict(decoder_state_dict(tensors), strict=True, assign=True)
    except RuntimeError:
        raise ModelError(f"{path.name} is not an SD1.5 TAESD decoder: use taesd_decoder.safetensors from "
                         f"huggingface.co/madebyollin/taesd.") from None
    taesd.encoder = None  # the preview only decodes; the encoder stayed on the meta device
    return taesd.to(device=device, dtype=dtype).eval()


class TaesdPreview:
    """latents -> a PIL image of the full picture through TAESD (the first image of the batch)."""

    def __init__(self, taesd):
        self.taesd = taesd

    def __call__(self, latents):
        import torch
        from PIL import Image

        with torch.no_grad():
            first = latents[:1].to(device=self.taesd.device, dtype=self.taesd.dtype)
            decoded = self.taesd.decode(first / self.taesd.config.scaling_factor, return_dict=False)[0]
        pixels = ((decoded[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy())
