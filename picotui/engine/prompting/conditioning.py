"""Prompt text -> the UNet's conditioning, the way A1111 builds it (weights, chunks, BREAK, embeddings, clip skip).

diffusers' own encode_prompt cuts at 77 tokens, reads `(word:1.3)` literally and crashes on clip
skip with transformers 5, so the text encoder is driven here directly:

1. tags removed, weights parsed (prompts.py), tokens laid out in 75-token chunks (tokens.py);
2. all chunks of both prompts go through the text encoder in one batch of [start, 75, end] rows;
   embedding vectors are written over their placeholder rows of the token-embedding output;
3. clip skip k takes hidden_states[-k] through the final layer norm (k = 1 is the last hidden state);
4. each chunk's rows are multiplied by their weights and the chunk is rescaled to its old mean
   (A1111's "Original" emphasis);
5. the shorter prompt is padded with the encoding of an empty chunk (A1111's pad_cond_uncond), so
   cond and uncond can be batched for classifier-free guidance.

A prompt with no syntax and at most 75 tokens takes none of the extra steps and gives exactly what
StableDiffusionPipeline.encode_prompt gives.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from picotui.engine.errors import ModelError, RequestError
from picotui.engine.prompting.embeddings import load_embedding
from picotui.engine.prompting.prompts import MAX_WEIGHT, parse_prompt_attention, strip_extra_networks
from picotui.engine.prompting.tokens import Chunk, EmbeddingIndex, build_chunks
from picotui.engine.request import CLIP_SKIP

CACHE_SIZE = 8


class PromptEncoder:
    """Encodes (prompt, negative) pairs for one tokenizer + text encoder; remembers the last few."""

    def __init__(self, tokenizer, text_encoder, embeddings: dict[str, Path] | None = None, *,
                 allow_pickle: bool = False):
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.allow_pickle = allow_pickle
        self._embedding_paths = {str(k): Path(v) for k, v in (embeddings or {}).items()}
        self._vectors: dict[str, torch.Tensor] = {}  # loaded on first use
        self._index = EmbeddingIndex(self._embedding_paths, self._tokenize, self._vector_count)
        self._cache: OrderedDict = OrderedDict()

    # ---- public -------------------------------------------------------------------------------------
    def encode(self, prompt: str, negative: str, clip_skip: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, uncond), each [1, 77*k, hidden] with the same k, on the text encoder's device and dtype."""
        layers = self.text_encoder.config.num_hidden_layers
        if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or not (
                CLIP_SKIP[0] <= clip_skip <= min(CLIP_SKIP[1], layers)):
            raise RequestError(f"Clip skip {clip_skip!r} is out of range: use {CLIP_SKIP[0]} to "
                               f"{min(CLIP_SKIP[1], layers)}.")
        key = (prompt, negative, clip_skip, self._state())
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        cond_chunks, uncond_chunks = self.chunks(prompt), self.chunks(negative)
        k = max(len(cond_chunks), len(uncond_chunks))
        cond_chunks += [Chunk() for _ in range(k - len(cond_chunks))]
        uncond_chunks += [Chunk() for _ in range(k - len(uncond_chunks))]
        z = self._encode_chunks(cond_chunks + uncond_chunks, clip_skip)  # [2k, 77, hidden]
        hidden = z.shape[-1]
        result = (z[:k].reshape(1, 77 * k, hidden), z[k:].reshape(1, 77 * k, hidden))
        self._cache[key] = result
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def chunks(self, text: str) -> list[Chunk]:
        """The 75-token chunks one prompt is encoded as (tags stripped, weights parsed, embeddings found)."""
        if not isinstance(text, str):
            raise RequestError("Prompt must be text.")
        parsed = parse_prompt_attention(strip_extra_networks(text)[0])
        for piece, weight in parsed:
            # Refused rather than clamped, so an image is never made with weights other than the ones
            # written. `not <=` also catches NaN (from inf * 0).
            if not abs(weight) <= MAX_WEIGHT:
                raise RequestError(f"The weight of {piece.strip()[:30]!r} is {weight:.4g}, outside the usable "
                                   f"range -{MAX_WEIGHT:g} to {MAX_WEIGHT:g}: write weights like (word:1.3).")
        return build_chunks(parsed, self._tokenize, self._index if self._index else None)

    def clear_cache(self) -> None:
        self._cache.clear()

    # ---- internals ----------------------------------------------------------------------------------
    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        # verbose=False: chunking is how long prompts are handled, so the "longer than 77" warning is noise.
        return self.tokenizer(list(texts), truncation=False, add_special_tokens=False, verbose=False)["input_ids"]

    def _width(self) -> int:
        return self.text_encoder.get_input_embeddings().weight.shape[1]

    def _vector_count(self, name: str) -> int:
        return self._embedding(name).shape[0]

    def _embedding(self, name: str) -> torch.Tensor:
        if name not in self._vectors:
            self._vectors[name] = load_embedding(self._embedding_paths[name], self._width(),
                                                 allow_pickle=self.allow_pickle)
        return self._vectors[name]

    def _device(self) -> torch.device:
        """Where the encoder computes: an accelerate offload hook's execution device, else its weights' device."""
        for module in self.text_encoder.modules():
            device = getattr(getattr(module, "_hf_hook", None), "execution_device", None)
            if device is not None:
                return torch.device(device)
        return self.text_encoder.get_input_embeddings().weight.device

    def _state(self) -> tuple:
        """What besides the text decides the output: device, dtype, weight edits, LoRA adapters and scales.

        The cache must miss when a LoRA is fused into or attached to the same text encoder object.
        `_version` counts in-place edits of a tensor (fusing); adapters add parameters (new ids); peft
        keeps scales and active adapters on its layers.
        """
        te = self.text_encoder
        params = tuple((id(p), p._version, p.device, p.dtype) for p in te.parameters())
        adapters = []
        for name, module in te.named_modules():
            scaling = getattr(module, "scaling", None)
            if isinstance(scaling, dict) and scaling:
                adapters.append((name, tuple(sorted(scaling.items())),
                                 tuple(getattr(module, "active_adapters", ()) or ()),
                                 bool(getattr(module, "disable_adapters", False)),
                                 tuple(getattr(module, "merged_adapters", ()) or ())))
        return params, tuple(adapters)

    @torch.no_grad()
    def _encode_chunks(self, chunks: list[Chunk], clip_skip: int) -> torch.Tensor:
        te = self.text_encoder
        device = self._device()
        rows = [c.padded() for c in chunks]
        ids = torch.tensor([r[0] for r in rows], dtype=torch.long, device=device)
        fixes = [(row, 1 + offset, self._embedding(name))
                 for row, c in enumerate(chunks) for offset, name in c.fixes]
        hook = te.get_input_embeddings().register_forward_hook(_writer(fixes)) if fixes else None
        try:
            out = te(ids, output_hidden_states=clip_skip > 1)
        finally:
            if hook is not None:
                hook.remove()
        if clip_skip == 1:
            z = out.last_hidden_state
        else:
            final_norm = getattr(getattr(te, "text_model", te), "final_layer_norm", None)
            if final_norm is None:
                raise ModelError("This text encoder has no final layer norm, so clip skip cannot be applied: "
                                 "use clip skip 1.")
            z = final_norm(out.hidden_states[-clip_skip])
        weights = torch.tensor([r[1] for r in rows], dtype=torch.float32, device=device)
        return _emphasis(z, weights)


def _writer(fixes):
    """A forward hook on the token embedding that puts embedding vectors in their slots."""
    def hook(module, inputs, output):
        output = output.clone()
        for row, start, vectors in fixes:
            output[row, start:start + vectors.shape[0]] = vectors.to(output.device, output.dtype)
        return output
    return hook


def _emphasis(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Multiply each token's row by its weight, then rescale each chunk to its original mean (A1111)."""
    weighted = (weights != 1.0).any(dim=1)
    if not weighted.any():
        return z  # untouched: plain prompts stay bit-identical to diffusers' encoding
    out = z.clone()
    zf = z[weighted].float()
    before = zf.mean(dim=(1, 2), keepdim=True)
    scaled = zf * weights[weighted].to(z.device).unsqueeze(-1)
    after = scaled.mean(dim=(1, 2), keepdim=True)
    # A1111 rescales by before/after unconditionally. Where that ratio is not a finite positive number
    # (weights that zero a chunk, or means of opposite sign, which would flip the whole chunk) the
    # chunk is left as weighted instead. Real CLIP hidden states have a clearly non-zero mean.
    ratio = before / after
    scaled = (scaled * torch.where(torch.isfinite(ratio) & (ratio > 0), ratio, torch.ones_like(ratio))).to(z.dtype)
    # Weights within range can still overflow half precision, or meet the rescale in a chunk whose mean
    # they nearly cancel; inf here would only come back as a black (NaN) image. (A text encoder that
    # itself gives NaN is the model's fault and is reported as such after denoising.)
    if not torch.isfinite(scaled).all() and torch.isfinite(zf).all():
        raise RequestError("The prompt's weights make the text encoding overflow: use weights closer to 1 "
                           "(most prompts stay between 0.5 and 1.5).")
    out[weighted] = scaled
    return out
