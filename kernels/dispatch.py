"""The one place the runtime calls: each op runs its Triton kernel or its PyTorch reference.

The kernel runs when the tensor is on CUDA, triton imports, and kernels are on; otherwise the
reference (the CPU path, always).  Kernels are on unless the environment says DG_LSP_KERNELS=0, or
`set_kernels_enabled(False)` was called (a setting), or the call passes `use_kernels=False`; a call's
`use_kernels=True` cannot force a kernel where there is no CUDA tensor or no triton.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch import Tensor

from kernels import beliefs
from kernels import canvas_attention as attention
from kernels.beliefs import END_PROBABILITY, Beliefs
from kernels.lazy_triton import triton_available

ENV_SWITCH = "DG_LSP_KERNELS"
"""Environment variable: "0" turns the kernels off (read at every call, so tests may set it)."""

_enabled = True


def set_kernels_enabled(enabled: bool) -> None:
    """Turn the Triton kernels on or off for the whole process (a setting, for debugging)."""
    global _enabled
    _enabled = bool(enabled)


def kernels_enabled() -> bool:
    """Whether kernels are on: the process switch and DG_LSP_KERNELS (not the device)."""
    return _enabled and os.environ.get(ENV_SWITCH, "1").strip() != "0"


def uses_kernels(t: Tensor, use_kernels: bool | None = None) -> bool:
    """Whether an op on `t` runs the Triton kernel; `use_kernels=False` says no for this call."""
    if use_kernels is False or not kernels_enabled() or not t.is_cuda:
        return False
    return triton_available()


def compute_beliefs(
    logits: Tensor,
    banned: Tensor | Sequence[int] | None = None,
    ban_rows: Tensor | None = None,
    *,
    temperature: float = 0.0,
    token: Tensor | None = None,
    pad_id: int | None = None,
    end_probability: float = END_PROBABILITY,
    uniform: Tensor | None = None,
    use_kernels: bool | None = None,
) -> Beliefs:
    """Proposal, confidence, entropy and a token's log-probability per row of (C, V) logits
    (`kernels.beliefs.reference` documents the arguments)."""
    op = beliefs.triton_beliefs if uses_kernels(logits, use_kernels) else beliefs.reference
    return op(
        logits, banned, ban_rows, temperature=temperature, token=token, pad_id=pad_id,
        end_probability=end_probability, uniform=uniform,
    )  # fmt: skip


def attend_canvases(
    q: Tensor,
    ctx_k: Tensor,
    ctx_v: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    scale: float | None = None,
    use_kernels: bool | None = None,
) -> Tensor:
    """(K, H, C, D) attention of K canvases' queries over one shared context K/V (Hkv, T, D) and
    each canvas's own K/V (K, Hkv, C, D) (`kernels.canvas_attention.reference`)."""
    if uses_kernels(q, use_kernels):
        return attention.triton_canvas_attention(q, ctx_k, ctx_v, k, v, scale=scale)
    return attention.reference(q, ctx_k, ctx_v, k, v, scale=scale)
