"""Decisions on the GPU path whose CUDA side cannot run here: the CUDA call is injected (monkeypatched torch.cuda
functions, or the exact error text torch raises on a GPU) and the decision is checked."""

from __future__ import annotations

import pytest
import torch

from picotui.engine.errors import is_out_of_memory

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---- 11.9: out of memory in all its forms ------------------------------------------------------------------

GPU_OUT_OF_MEMORY = [
    # cuDNN with no workspace left picks no algorithm (conv on a nearly full card)
    RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you passed in a non-contiguous "
                 "input."),
    RuntimeError("GET was unable to find an engine to execute this computation"),
    # cuBLAS cannot create its handle: its workspace allocation failed
    RuntimeError("CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`"),
    # the driver's own allocation failure, as torch.AcceleratorError (a RuntimeError) or plain RuntimeError
    RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported at some other API "
                 "call, so the stacktrace below might be incorrect."),
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
]
if hasattr(torch, "AcceleratorError"):
    GPU_OUT_OF_MEMORY.append(torch.AcceleratorError("CUDA error: out of memory"))


@pytest.mark.parametrize("exc", GPU_OUT_OF_MEMORY[1:], ids=lambda e: str(e)[:40])
def test_every_spelling_of_gpu_out_of_memory_is_recognised(exc):
    assert is_out_of_memory(exc)


def test_other_errors_are_not_out_of_memory():
    for exc in (GPU_OUT_OF_MEMORY[0], RuntimeError("CUDA error: no kernel image is available for execution"),
                ValueError("out of memory"), RuntimeError("Expected all tensors to be on the same device")):
        assert not is_out_of_memory(exc), exc
