"""GPU kernels of the denoising step, each beside its PyTorch reference (kernels/README.md).

Importing this package imports torch, never triton: triton is imported on a kernel's first launch.
"""

from kernels.beliefs import END_PROBABILITY, Beliefs, constraint_rows, constraint_table
from kernels.dispatch import (
    ENV_SWITCH,
    attend_canvases,
    compute_beliefs,
    kernels_enabled,
    set_kernels_enabled,
    uses_kernels,
)

__all__ = [
    "END_PROBABILITY",
    "ENV_SWITCH",
    "Beliefs",
    "attend_canvases",
    "compute_beliefs",
    "constraint_rows",
    "constraint_table",
    "kernels_enabled",
    "set_kernels_enabled",
    "uses_kernels",
]
