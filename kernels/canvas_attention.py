"""Batched canvas attention over a shared context: K canvases attend to one cached context and to themselves.

    q (K, H, C, D)  x  [context K/V (Hkv, T, D), shared  |  canvas K/V (K, Hkv, C, D), one per canvas]
        -> out (K, H, C, D)

Every canvas slot sees the whole context and every slot of its own canvas (bidirectional, no mask),
as the embedded model's `denoise` step does (runtime/model.py); canvases never see each other.  Heads
may be grouped (H a multiple of Hkv: query head h reads kv head h // (H / Hkv)).  `reference` is
`scaled_dot_product_attention` over the context expanded to every canvas and concatenated with its
own K/V, which is what the CPU path runs.

The Triton path never copies the context (flash-decoding): `context_partials_kernel` splits T into S
ranges, and one program per (range, kv head, block of query rows) holds the query rows of *all* K
canvases and all heads of the group, so each context tile is read once for every canvas; it writes
a normalised partial output and its log2-sum-exp2 per row.  `canvas_merge_kernel` then attends each
canvas to its own C keys and folds in the S partials by their log-sum-exp weights.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from kernels.lazy_triton import jit

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
LOG2E = 1.4426950408889634


def reference(
    q: Tensor, ctx_k: Tensor, ctx_v: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None
) -> Tensor:
    """(K, H, C, D) attention of q (K, H, C, D) over ctx_k/ctx_v (Hkv, T, D) then k/v (K, Hkv, C, D)."""
    n, h, _, _ = _check(q, ctx_k, ctx_v, k, v)
    hkv = k.shape[1]
    keys = torch.cat((ctx_k[None].expand(n, -1, -1, -1), k), dim=2)  # (K, Hkv, T + C, D)
    values = torch.cat((ctx_v[None].expand(n, -1, -1, -1), v), dim=2)  # (K, Hkv, T + C, D)
    return F.scaled_dot_product_attention(q, keys, values, scale=scale, enable_gqa=h != hkv)  # (K, H, C, D)


def triton_canvas_attention(
    q: Tensor,
    ctx_k: Tensor,
    ctx_v: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    scale: float | None = None,
    splits: int | None = None,
    block_m: int | None = None,
    block_t: int | None = None,
) -> Tensor:
    """`reference` from the two Triton kernels; same arguments, plus the tiling: `splits` context
    ranges (default: enough programs for twice the GPU's SMs), `block_m` query rows and `block_t`
    keys per tile (powers of two >= 16).  CUDA tensors (CPU ones only under TRITON_INTERPRET=1)."""
    n, h, c, d = _check(q, ctx_k, ctx_v, k, v)
    for name, t in (("q", q), ("ctx_k", ctx_k), ("ctx_v", ctx_v), ("k", k), ("v", v)):
        if t.stride(-1) != 1:
            raise ValueError(f"{name} must be contiguous along D, got strides {t.stride()}")
    if not q.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(f"the Triton kernels need CUDA tensors, got {q.device} (or set TRITON_INTERPRET=1)")
    hkv, t_len = ctx_k.shape[0], ctx_k.shape[1]
    group = h // hkv
    block_d = max(16, _next_pow2(d))
    block_t = block_t or (64 if block_d <= 128 else 32)
    rows = n * group * c  # query rows that share one kv head of the context
    widest = 128 if block_d <= 64 else 64 if block_d <= 128 else 32  # registers: acc is (BLOCK_M, BLOCK_D)
    block_m = block_m or min(widest, max(16, _next_pow2(rows)))
    for name, b in (("block_m", block_m), ("block_t", block_t)):
        if b < 16 or b & (b - 1):
            raise ValueError(f"{name} must be a power of two >= 16, got {b}")
    qk_scale = (1.0 / math.sqrt(d) if scale is None else scale) * LOG2E  # scores in log2 units: exp2
    precision = "ieee" if q.dtype == torch.float32 else "tf32"  # fp32 stays fp32; tf32 only names the default
    # Triton's interpreter multiplies bfloat16 tiles as their raw bits (triton issue 11584): there,
    # and only there, the tile products run in float32
    dot_fp32 = q.dtype == torch.bfloat16 and not q.is_cuda
    row_blocks = _cdiv(rows, block_m)
    if splits is None:
        sms = torch.cuda.get_device_properties(q.device).multi_processor_count if q.is_cuda else 1
        splits = max(1, min(_cdiv(t_len, block_t), _cdiv(2 * sms, hkv * row_blocks)))
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    split_len = _cdiv(_cdiv(t_len, splits), block_t) * block_t  # whole tiles per range
    splits = _cdiv(t_len, split_len) if t_len else 0  # every range holds at least one key

    out = torch.empty_like(q, memory_format=torch.contiguous_format)  # (K, H, C, D)
    o_part = q.new_empty((max(splits, 1), n, h, c, d), dtype=torch.float32)  # (S, K, H, C, D)
    lse_part = q.new_empty((max(splits, 1), n, h, c), dtype=torch.float32)  # (S, K, H, C)
    if splits:
        context_partials_kernel[(splits, hkv, row_blocks)](
            q, q.stride(0), q.stride(1), q.stride(2),
            ctx_k, ctx_k.stride(0), ctx_k.stride(1),
            ctx_v, ctx_v.stride(0), ctx_v.stride(1),
            o_part, lse_part,
            n, h, c, t_len, split_len, qk_scale,
            G=group, D=d, BLOCK_M=block_m, BLOCK_T=block_t, BLOCK_D=block_d, PRECISION=precision,
            DOT_FP32=dot_fp32,
        )  # fmt: skip
    merge_m = min(block_m, max(16, _next_pow2(group * c)))
    canvas_merge_kernel[(n, hkv, _cdiv(group * c, merge_m))](
        q, q.stride(0), q.stride(1), q.stride(2),
        k, k.stride(0), k.stride(1), k.stride(2),
        v, v.stride(0), v.stride(1), v.stride(2),
        o_part, lse_part,
        out, out.stride(0), out.stride(1), out.stride(2),
        n, h, c, splits, qk_scale,
        G=group, D=d, BLOCK_M=merge_m, BLOCK_T=block_t, BLOCK_D=block_d, PRECISION=precision,
        DOT_FP32=dot_fp32,
    )  # fmt: skip
    return out


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


# ---------------------------------------------------------------- kernels

tl: Any = None  # triton.language, bound on the first launch (kernels/lazy_triton.py)


@jit
def context_partials_kernel(
    q_ptr, sq_k, sq_h, sq_c,  # (K, H, C, D)
    ck_ptr, sck_h, sck_t,  # (Hkv, T, D) context keys
    cv_ptr, scv_h, scv_t,  # (Hkv, T, D) context values
    o_ptr, lse_ptr,  # (S, K, H, C, D) and (S, K, H, C) float32, contiguous
    K, H, C, T, split_len, qk_scale,
    G: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
    PRECISION: tl.constexpr, DOT_FP32: tl.constexpr,
):
    split = tl.program_id(0)
    hkv = tl.program_id(1)
    r = tl.program_id(2) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) rows of (K, G, C), flattened
    row_ok = r < K * G * C
    kk, g, c = r // (G * C), (r // C) % G, r % C
    h = hkv * G + g  # (BLOCK_M,) query head of each row
    d = tl.arange(0, BLOCK_D)
    d_ok = d < D
    q = tl.load(
        q_ptr + kk[:, None] * sq_k + h[:, None] * sq_h + c[:, None] * sq_c + d[None, :],
        mask=row_ok[:, None] & d_ok[None, :], other=0.0,
    )  # (BLOCK_M, BLOCK_D)
    if DOT_FP32:
        q = q.to(tl.float32)
    ck_head = ck_ptr + hkv.to(tl.int64) * sck_h
    cv_head = cv_ptr + hkv.to(tl.int64) * scv_h

    m = tl.full((BLOCK_M,), float("-inf"), tl.float32)  # running max score (log2 units)
    norm = tl.zeros((BLOCK_M,), tl.float32)  # running sum of exp2(score - m)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)  # running sum of exp2(score - m) * value
    t_lo = split * split_len
    t_hi = tl.minimum(t_lo + split_len, T)
    for t0 in range(t_lo, t_hi, BLOCK_T):
        t = t0 + tl.arange(0, BLOCK_T)  # (BLOCK_T,)
        t_ok = t < t_hi
        kt = tl.load(ck_head + t[None, :] * sck_t + d[:, None], mask=d_ok[:, None] & t_ok[None, :], other=0.0)
        vt = tl.load(cv_head + t[:, None] * scv_t + d[None, :], mask=t_ok[:, None] & d_ok[None, :], other=0.0)
        if DOT_FP32:
            kt, vt = kt.to(tl.float32), vt.to(tl.float32)
        scores = tl.dot(q, kt, input_precision=PRECISION) * qk_scale  # (BLOCK_M, BLOCK_T)
        scores = tl.where(t_ok[None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, axis=1))
        alpha = tl.exp2(m - m_new)
        p = tl.exp2(scores - m_new[:, None])  # (BLOCK_M, BLOCK_T)
        norm = norm * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(vt.dtype), vt, input_precision=PRECISION)
        m = m_new
    part = ((split * K + kk) * H + h) * C + c  # (BLOCK_M,) row of the (S, K, H, C) partials
    out_ok = row_ok[:, None] & d_ok[None, :]
    tl.store(o_ptr + part[:, None] * D + d[None, :], acc / norm[:, None], mask=out_ok)
    tl.store(lse_ptr + part, m + tl.log2(norm), mask=row_ok)


@jit
def canvas_merge_kernel(
    q_ptr, sq_k, sq_h, sq_c,  # (K, H, C, D)
    k_ptr, sk_k, sk_h, sk_c,  # (K, Hkv, C, D) each canvas's keys
    v_ptr, sv_k, sv_h, sv_c,  # (K, Hkv, C, D) each canvas's values
    o_ptr, lse_ptr,  # (S, K, H, C, D) and (S, K, H, C) float32 partials of the context
    out_ptr, so_k, so_h, so_c,  # (K, H, C, D)
    K, H, C, S, qk_scale,
    G: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
    PRECISION: tl.constexpr, DOT_FP32: tl.constexpr,
):
    kk = tl.program_id(0)
    hkv = tl.program_id(1)
    r = tl.program_id(2) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) rows of (G, C), flattened
    row_ok = r < G * C
    g, c = r // C, r % C
    h = hkv * G + g
    d = tl.arange(0, BLOCK_D)
    d_ok = d < D
    q = tl.load(
        q_ptr + kk * sq_k + h[:, None] * sq_h + c[:, None] * sq_c + d[None, :],
        mask=row_ok[:, None] & d_ok[None, :], other=0.0,
    )  # (BLOCK_M, BLOCK_D)
    if DOT_FP32:
        q = q.to(tl.float32)
    k_head = k_ptr + kk * sk_k + hkv * sk_h
    v_head = v_ptr + kk * sv_k + hkv * sv_h

    m = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    norm = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    for j0 in range(0, C, BLOCK_T):  # the canvas's own keys: every slot sees every slot
        j = j0 + tl.arange(0, BLOCK_T)  # (BLOCK_T,)
        j_ok = j < C
        kt = tl.load(k_head + j[None, :] * sk_c + d[:, None], mask=d_ok[:, None] & j_ok[None, :], other=0.0)
        vt = tl.load(v_head + j[:, None] * sv_c + d[None, :], mask=j_ok[:, None] & d_ok[None, :], other=0.0)
        if DOT_FP32:
            kt, vt = kt.to(tl.float32), vt.to(tl.float32)
        scores = tl.dot(q, kt, input_precision=PRECISION) * qk_scale  # (BLOCK_M, BLOCK_T)
        scores = tl.where(j_ok[None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, axis=1))
        alpha = tl.exp2(m - m_new)
        p = tl.exp2(scores - m_new[:, None])
        norm = norm * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(vt.dtype), vt, input_precision=PRECISION)
        m = m_new
    for split in range(0, S):  # fold in the context: each partial weighs 2**lse (its unnormalised mass)
        part = ((split * K + kk) * H + h) * C + c  # (BLOCK_M,)
        lse = tl.load(lse_ptr + part, mask=row_ok, other=float("-inf"))
        o = tl.load(o_ptr + part[:, None] * D + d[None, :], mask=row_ok[:, None] & d_ok[None, :], other=0.0)
        m_new = tl.maximum(m, lse)
        alpha = tl.exp2(m - m_new)
        w = tl.exp2(lse - m_new)  # (BLOCK_M,)
        norm = norm * alpha + w
        acc = acc * alpha[:, None] + o * w[:, None]
        m = m_new
    out = acc / norm[:, None]
    tl.store(
        out_ptr + kk * so_k + h[:, None] * so_h + c[:, None] * so_c + d[None, :],
        out.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :],
    )


# ---------------------------------------------------------------- checks


def _check(q: Tensor, ctx_k: Tensor, ctx_v: Tensor, k: Tensor, v: Tensor) -> tuple[int, int, int, int]:
    """(K, H, C, D) after checking the five tensors' shapes, dtypes and devices against each other."""
    named = {"q": q, "ctx_k": ctx_k, "ctx_v": ctx_v, "k": k, "v": v}
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
    if q.dim() != 4:
        raise ValueError(f"q must be (K, H, C, D), got shape {tuple(q.shape)}")
    n, h, c, d = q.shape
    if ctx_k.dim() != 3 or ctx_k.shape[2] != d:
        raise ValueError(f"ctx_k must be (Hkv, T, D) with D = {d}, got shape {tuple(ctx_k.shape)}")
    hkv = ctx_k.shape[0]
    if ctx_v.shape != ctx_k.shape:
        raise ValueError(f"ctx_v must match ctx_k {tuple(ctx_k.shape)}, got {tuple(ctx_v.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.shape != (n, hkv, c, d):
            raise ValueError(f"{name} must be (K, Hkv, C, D) = {(n, hkv, c, d)}, got {tuple(t.shape)}")
    if hkv == 0 or h % hkv:
        raise ValueError(f"query heads ({h}) must be a multiple of kv heads ({hkv})")
    if min(n, c, d) == 0:
        raise ValueError(f"q has an empty dimension: shape {tuple(q.shape)}")
    if q.dtype not in DTYPES:
        raise ValueError(f"q must be float32, float16 or bfloat16, got {q.dtype}")
    for name, t in named.items():
        if t.dtype != q.dtype:
            raise ValueError(f"{name} is {t.dtype} but q is {q.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name} is on {t.device} but q is on {q.device}")
    return n, h, c, d
