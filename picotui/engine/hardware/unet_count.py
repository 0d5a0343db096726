"""Counting UNet evaluations: what a sampler setting really costs, whatever loop runs it.

One evaluation is one latent through the UNet: a CFG step is one batched call of two (the prompt and the
negative prompt), CFG 1 one call of one, Heun two calls a step. A forward pre-hook on the UNet sees every
call, including those the CUDA-graph path replays (it wraps `unet.forward`, which `__call__` runs after
the hooks).
"""

from __future__ import annotations


class UNetEvaluations:
    """A context manager counting `calls` and `evaluations` (batch rows) of `unet` while it is open."""

    def __init__(self, unet):
        self.unet = unet
        self.calls = 0
        self.evaluations = 0
        self._handle = None

    def _hook(self, module, args, kwargs):
        sample = args[0] if args else kwargs.get("sample")
        self.calls += 1
        self.evaluations += int(sample.shape[0]) if hasattr(sample, "shape") else 1

    def __enter__(self):
        self._handle = self.unet.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        return False
