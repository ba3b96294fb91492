"""What the kernel tests share: the device they run on and the marks that skip them."""

from __future__ import annotations

import importlib.util

import pytest
import torch

GPU = torch.cuda.is_available()
DEVICE = "cuda" if GPU else "cpu"  # CPU tensors run under TRITON_INTERPRET=1 (conftest.py)

needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None,
    reason="triton is not installed: pip install -e '.[dev]' brings it (its interpreter runs kernels on CPU)",
)
gpu_only = pytest.mark.skipif(not GPU, reason="real shapes need a CUDA GPU")

