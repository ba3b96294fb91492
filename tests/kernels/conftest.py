"""Kernel tests run Triton's interpreter on the CPU (NumPy, no GPU): TRITON_INTERPRET=1 must be set
before triton is imported, and `kernels` imports triton only on a kernel's first launch.  On a
machine with CUDA the same tests run the compiled kernels on the GPU instead."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
