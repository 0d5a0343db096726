"""Decisions on the GPU path whose CUDA side cannot run here: the CUDA call is injected (monkeypatched torch.cuda
functions, or the exact error text torch raises on a GPU) and the decision is checked."""

from __future__ import annotations

from pathlib import Path

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


# ---- 11.4: a card this torch build has no kernels for ------------------------------------------------------

PYPI_CU130 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]
PYTORCH_CU126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]


@pytest.fixture
def one_card(monkeypatch):
    """torch.cuda answering as on a machine with one card; `card(capability, arch_list)` sets which."""
    def card(capability, arch_list, name="NVIDIA GeForce GTX 1060 6GB"):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: name)
        monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: arch_list)
    return card


def test_pascal_on_a_build_without_its_kernels_is_refused_with_the_install_line(one_card):
    from picotui.engine.errors import PicoError
    from picotui.engine.hardware.memory import LEGACY_CUDA_INDEX, choose_device

    one_card((6, 1), PYPI_CU130)
    with pytest.raises(PicoError) as refused:
        choose_device("auto")
    message = str(refused.value)
    assert "\n" not in message and "sm_61" in message and "GTX 1060" in message
    assert f'+cu126" --extra-index-url {LEGACY_CUDA_INDEX}' in message
    assert LEGACY_CUDA_INDEX in (Path(__file__).resolve().parents[1] / "README.md").read_text()  # the README's own fix


def test_cards_the_build_can_run_are_accepted(one_card):
    from picotui.engine.hardware.memory import choose_device

    for capability, arch_list in (((6, 1), PYTORCH_CU126),  # sm_60 kernels run on sm_61
                                  ((8, 9), PYPI_CU130),  # sm_86 kernels run on sm_89 (same major)
                                  ((12, 1), PYPI_CU130),  # newer than any kernel: compute_120 PTX is compiled
                                  ((7, 5), [])):  # a build that does not say
        one_card(capability, arch_list)
        assert choose_device("cuda").capability == capability


def test_a_card_older_than_any_build_is_refused_without_a_false_fix(one_card):
    from picotui.engine.errors import PicoError
    from picotui.engine.hardware.memory import choose_device

    one_card((3, 5), PYTORCH_CU126, name="NVIDIA GeForce GTX 780")
    with pytest.raises(PicoError, match=r"GTX 780 \(sm_35\) is older than any current PyTorch build") as refused:
        choose_device("auto")
    assert "cu126" not in str(refused.value)


# ---- 11.5: --device cuda:N makes card N the worker thread's current device ---------------------------------

def test_the_worker_thread_makes_the_chosen_card_current(tmp_path, monkeypatch):
    import threading

    from paths_support import make_paths
    from worker_support import start_worker

    from picotui.engine.hardware import memory

    chosen = memory.DeviceChoice(torch.device("cuda", 1), torch.float16, "cuda:1 NVIDIA RTX A4000", (8, 6))
    monkeypatch.setattr(memory, "choose_device", lambda requested: chosen)
    monkeypatch.setattr(memory, "vram_info", lambda device: (15 * 1024**3, 16 * 1024**3, 0))
    current = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: current.append(
        (torch.device(device), threading.current_thread().name)))
    w = start_worker(make_paths(tmp_path))
    try:
        assert current == [(torch.device("cuda", 1), "picotui-worker")]
    finally:
        w.shutdown()
