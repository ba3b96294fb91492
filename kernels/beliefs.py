"""Canvas beliefs: what the denoising loop needs from one step's (C, V) logits, in one pass over V.

    logits (C, V) -> constraints (banned ids per row kind) -> temperature -> softmax ->
        proposal (C,), confidence (C,), entropy (C,), log-probability of a given token (C,)

`reference` is the sampler's arithmetic (runtime/sampler.py: bias, log_softmax, argmax, the weak-end
rule, gather, entropy) written once in PyTorch; it is what the CPU path runs.  `triton_beliefs` runs
one program per canvas row that streams the row block by block with an online softmax (running max
m, sum s = sum exp(x - m), and t = sum exp(x - m) (x - m) for the entropy), so the (C, V)
probabilities are never written: the logits are read once (twice when sampling).

Probabilities.  With temperature T > 0 they are softmax(x / T) of the constrained logits x; with
T = 0 (greedy) they are softmax(x), the untempered distribution, and the proposal is its argmax:
the sampler's definition today.  Ties go to the lowest id (as `torch.argmax`).

Constraints are a (R, V) bool table of banned ids, one row per kind of canvas row, and a (C,) index
choosing each canvas row's kind (-1: nothing banned).  `constraint_table` and `constraint_rows` build
the sampler's kinds: banned ids, slot 0's allowed set (boundary healing), and the content rule's
blocked ends.  A row with every id banned has no distribution: its results are undefined (NaN in
the reference); the sampler never builds one.

Sampling (T > 0) is inverse-CDF with one uniform number per row: the proposal is the first id whose
cumulative probability exceeds u (`uniform`, (C,) in [0, 1)), so kernel and reference draw the same
id from the same u up to float rounding at a bin edge.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from kernels.lazy_triton import jit

END_PROBABILITY = 0.5
"""The sampler's default: pad is proposed only where its probability reaches this."""

LOGIT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Beliefs:
    proposal: Tensor  # (C,) int64: argmax (with the weak-end rule when pad_id is set), or the sample
    confidence: Tensor  # (C,) float32: probability of `proposal`
    entropy: Tensor  # (C,) float32: entropy in nats of each row's distribution
    token_logp: Tensor | None  # (C,) float32: log-probability of `token` per row; None without `token`

    @property
    def token_prob(self) -> Tensor | None:
        """(C,) probability of `token`: the sampler's `current_confidence`."""
        return None if self.token_logp is None else self.token_logp.exp()


# ---------------------------------------------------------------- constraints


def constraint_table(
    vocab: int,
    banned_ids: Sequence[int],
    first_slot_ids: Sequence[int] | None = None,
    ends: Tensor | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """The sampler's constraints as a (R, V) bool table of banned ids; build it once per request.

    Row 0: other slots (`banned_ids`).  Row 1: slot 0 (only `first_slot_ids` allowed when given, and
    then `banned_ids` do not apply there, as in `runtime.canvas.CanvasSpec.bias`; else row 0).
    With `ends` ((2, W) bool, W <= V: the content rule's pad-or-line-break ids, row 0 for slot 0,
    row 1 for the others), rows 2 and 3 are rows 0 and 1 with those ends banned too (a blocked
    slot of `runtime.rules.ContentRule.constrain`)."""
    other = torch.zeros(vocab, dtype=torch.bool)  # (V,)
    other[list(banned_ids)] = True
    first = other.clone()
    if first_slot_ids is not None:
        first = torch.ones(vocab, dtype=torch.bool)
        first[list(first_slot_ids)] = False
    rows = [other, first]
    if ends is not None:
        if ends.dim() != 2 or ends.shape[0] != 2 or ends.shape[1] > vocab:
            raise ValueError(f"ends must be (2, W) with W <= {vocab}, got {tuple(ends.shape)}")
        padded = torch.zeros(2, vocab, dtype=torch.bool)  # (2, V): ids past W are not ends
        padded[:, : ends.shape[1]] = ends.cpu()
        rows += [other | padded[1], first | padded[0]]
    return torch.stack(rows).to(device)  # (R, V)


def constraint_rows(length: int, blocked: Tensor | None = None, device: torch.device | str = "cpu") -> Tensor:
    """(C,) int32 row of `constraint_table` for each slot: 1 for slot 0, 0 for the others, plus 2
    where `blocked` ((C,) bool: pad and line breaks not allowed at this step) is set."""
    rows = torch.zeros(length, dtype=torch.int32, device=device)  # (C,)
    rows[:1] = 1
    if blocked is not None:
        rows += 2 * blocked.to(device=device, dtype=torch.int32)
    return rows


# ---------------------------------------------------------------- reference


def reference(
    logits: Tensor,
    banned: Tensor | Sequence[int] | None = None,
    ban_rows: Tensor | None = None,
    *,
    temperature: float = 0.0,
    token: Tensor | None = None,
    pad_id: int | None = None,
    end_probability: float = END_PROBABILITY,
    uniform: Tensor | None = None,
) -> Beliefs:
    """The sampler's arithmetic on (C, V) logits; materialises (C, V) float32 probabilities.

    banned: (R, V) or (V,) bool table of banned ids, or a list of ids (every row); ban_rows: (C,)
    int row of `banned` per canvas row, -1 for none (default: row 0 everywhere).  pad_id: with
    greedy proposals, where pad wins the argmax with probability below `end_probability`, propose
    the best other id instead (`runtime.rules.WeakEnd`).  token: (C,) ids whose
    log-probability to return (clamped into the vocabulary, as the sampler does).  uniform: (C,)
    in [0, 1): sample by inverse CDF instead of taking the argmax (needs temperature > 0)."""
    c, v = _check(logits, banned, ban_rows, temperature, token, uniform, pad_id)
    x = logits.float()  # (C, V)
    table, rows = _table_and_rows(banned, ban_rows, c, v, logits.device)
    if table is not None:
        ban = table[rows.clamp_min(0).long()] & (rows >= 0)[:, None]  # (C, V)
        x = x.masked_fill(ban, -torch.inf)
    if temperature > 0:
        x = x / temperature
    logp = torch.log_softmax(x, dim=-1)  # (C, V)
    probs = logp.exp()
    if uniform is not None:
        cdf = probs.cumsum(-1)  # (C, V)
        proposal = (cdf <= uniform[:, None].float() * cdf[:, -1:]).sum(-1).clamp_max(v - 1)  # (C,)
    else:
        proposal = probs.argmax(-1)  # (C,)
        if pad_id is not None:  # as runtime.rules.WeakEnd: copies the weak rows only
            weak_end = ((proposal == pad_id) & (probs[:, pad_id] < end_probability)).nonzero().flatten()
            if len(weak_end):
                other = probs[weak_end]  # (W, V)
                other[:, pad_id] = -1.0
                proposal = proposal.clone()
                proposal[weak_end] = other.argmax(-1)
    confidence = probs.gather(-1, proposal[:, None]).squeeze(-1)  # (C,)
    entropy = -(probs * logp.clamp_min(-1e9)).sum(-1)  # (C,)
    token_logp = None
    if token is not None:
        token_logp = logp.gather(-1, token.clamp(0, v - 1)[:, None].long()).squeeze(-1)  # (C,)
    return Beliefs(proposal, confidence, entropy, token_logp)


# ---------------------------------------------------------------- launcher


def triton_beliefs(
    logits: Tensor,
    banned: Tensor | Sequence[int] | None = None,
    ban_rows: Tensor | None = None,
    *,
    temperature: float = 0.0,
    token: Tensor | None = None,
    pad_id: int | None = None,
    end_probability: float = END_PROBABILITY,
    uniform: Tensor | None = None,
    block_v: int | None = None,
) -> Beliefs:
    """`reference`'s results from the Triton kernel; same arguments.  CUDA tensors (CPU ones only
    under TRITON_INTERPRET=1).  block_v: vocabulary ids per block (a power of two)."""
    c, v = _check(logits, banned, ban_rows, temperature, token, uniform, pad_id)
    _check_device(logits)
    if block_v is None:
        block_v = min(4096, _next_pow2(v))
    if block_v < 16 or block_v & (block_v - 1):
        raise ValueError(f"block_v must be a power of two >= 16, got {block_v}")
    dev = logits.device
    table, rows = _table_and_rows(banned, ban_rows, c, v, dev)
    proposal = torch.empty(c, dtype=torch.int64, device=dev)  # (C,)
    confidence = torch.empty(c, dtype=torch.float32, device=dev)  # (C,)
    entropy = torch.empty(c, dtype=torch.float32, device=dev)  # (C,)
    token_logp = torch.empty(c, dtype=torch.float32, device=dev) if token is not None else None
    if c == 0:
        return Beliefs(proposal, confidence, entropy, token_logp)
    dummy = confidence  # stands for the pointers a disabled feature never reads
    table_u8 = table.view(torch.uint8) if table is not None else dummy  # (R, V): bool's bytes
    beliefs_kernel[(c,)](
        logits, logits.stride(0),
        table_u8, table.stride(0) if table is not None else 0,
        rows.to(torch.int32) if table is not None else dummy,
        token.clamp(0, v - 1) if token is not None else dummy,
        uniform.float() if uniform is not None else dummy,
        proposal, confidence, entropy,
        token_logp if token_logp is not None else dummy,
        v, float(temperature) if temperature > 0 else 1.0,
        pad_id if pad_id is not None else -1, float(end_probability),
        HAS_BAN=table is not None, HAS_TOKEN=token is not None, SAMPLE=uniform is not None,
        END_RULE=pad_id is not None and uniform is None, BLOCK_V=block_v,
        num_warps=8 if block_v >= 2048 else 4,
    )
    return Beliefs(proposal, confidence, entropy, token_logp)


def _next_pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


# ---------------------------------------------------------------- kernel

tl: Any = None  # triton.language, bound on the first launch (kernels/lazy_triton.py)


@jit
def beliefs_kernel(
    logits_ptr, stride_logits,  # (C, V) bf16/fp16/fp32, rows `stride_logits` apart
    ban_ptr, stride_ban,  # (R, V) uint8: 1 = banned
    ban_rows_ptr,  # (C,) int32: row of the ban table, -1 = none
    token_ptr,  # (C,) int64 ids, already clamped into [0, V)
    uniform_ptr,  # (C,) float32 in [0, 1)
    proposal_ptr, confidence_ptr, entropy_ptr, token_logp_ptr,  # (C,) outputs
    V, temperature, pad_id, end_probability,
    HAS_BAN: tl.constexpr, HAS_TOKEN: tl.constexpr, SAMPLE: tl.constexpr, END_RULE: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    logits_row = logits_ptr + row * stride_logits
    if HAS_BAN:
        ban_row = tl.load(ban_rows_ptr + row)
        ban_row_ptr = ban_ptr + tl.maximum(ban_row, 0).to(tl.int64) * stride_ban
    neg_inf = float("-inf")

    m = tl.full((), neg_inf, tl.float32)  # running max of x
    s = tl.full((), 0.0, tl.float32)  # sum exp(x - m)
    t = tl.full((), 0.0, tl.float32)  # sum exp(x - m) * (x - m): entropy = log s - t / s
    arg = tl.full((), 0, tl.int32)  # first id holding m
    m_other = tl.full((), neg_inf, tl.float32)  # the same two over the ids other than pad
    arg_other = tl.full((), 0, tl.int32)
    for start in range(0, V, BLOCK_V):
        cols = start + tl.arange(0, BLOCK_V)  # (BLOCK_V,)
        inside = cols < V
        x = tl.load(logits_row + cols, mask=inside, other=neg_inf).to(tl.float32)  # (BLOCK_V,)
        if HAS_BAN:
            banned = tl.load(ban_row_ptr + cols, mask=inside & (ban_row >= 0), other=0)
            x = tl.where(banned != 0, neg_inf, x)
        x = x / temperature
        block_max = tl.max(x, axis=0)
        # strictly greater: an earlier block keeps a tie, and tl.argmax breaks ties to the left
        arg = tl.where(block_max > m, start + tl.argmax(x, axis=0), arg)
        if END_RULE:
            x_other = tl.where(cols == pad_id, neg_inf, x)
            other_max = tl.max(x_other, axis=0)
            arg_other = tl.where(other_max > m_other, start + tl.argmax(x_other, axis=0), arg_other)
            m_other = tl.maximum(m_other, other_max)
        m_new = tl.maximum(m, block_max)
        base = tl.where(m_new == neg_inf, 0.0, m_new)  # no finite logit yet: keep exp() NaN-free
        alpha = tl.exp(m - base)  # rescales the old sums; 0 while m is -inf
        p = tl.exp(x - base)  # (BLOCK_V,)
        dx = tl.where(x == neg_inf, 0.0, x - base)  # p = 0 there: no -inf * 0
        shift = tl.where(alpha > 0, m - base, 0.0)
        t = alpha * (t + s * shift) + tl.sum(p * dx, axis=0)
        s = alpha * s + tl.sum(p, axis=0)
        m = m_new
    log_s = tl.log(s)
    lse = m + log_s  # log of the softmax normaliser
    tl.store(entropy_ptr + row, log_s - t / s)

    if SAMPLE:
        # second pass: the first id whose running mass exceeds u * s
        target = tl.load(uniform_ptr + row) * s
        mass = tl.full((), 0.0, tl.float32)
        pick = tl.full((), V, tl.int32)  # V: none yet
        last = tl.full((), 0, tl.int32)  # last id with mass: the pick if rounding never crosses
        for start in range(0, V, BLOCK_V):
            cols = start + tl.arange(0, BLOCK_V)
            inside = cols < V
            x = tl.load(logits_row + cols, mask=inside, other=neg_inf).to(tl.float32)
            if HAS_BAN:
                banned = tl.load(ban_row_ptr + cols, mask=inside & (ban_row >= 0), other=0)
                x = tl.where(banned != 0, neg_inf, x)
            p = tl.exp(x / temperature - m)  # (BLOCK_V,)
            cdf = mass + tl.cumsum(p, axis=0)
            pick = tl.minimum(pick, tl.min(tl.where((cdf > target) & inside, cols, V), axis=0))
            last = tl.maximum(last, tl.max(tl.where(p > 0, cols, 0), axis=0))
            mass += tl.sum(p, axis=0)
        proposal = tl.where(pick < V, pick, last)
        x_pick = tl.load(logits_row + proposal).to(tl.float32)  # a picked id has mass: not banned
        confidence = tl.exp(x_pick / temperature - lse)
    else:
        proposal = arg
        confidence = tl.exp(m - lse)
        if END_RULE:
            weak_end = (arg == pad_id) & (confidence < end_probability)
            proposal = tl.where(weak_end, arg_other, arg)
            confidence = tl.where(weak_end, tl.exp(m_other - lse), confidence)
    tl.store(proposal_ptr + row, proposal.to(tl.int64))
    tl.store(confidence_ptr + row, confidence)

    if HAS_TOKEN:
        tok = tl.load(token_ptr + row)
        x_tok = tl.load(logits_row + tok).to(tl.float32)
        if HAS_BAN:
            x_tok = tl.where(tl.load(ban_row_ptr + tok, mask=ban_row >= 0, other=0) != 0, neg_inf, x_tok)
        tl.store(token_logp_ptr + row, x_tok / temperature - lse)



# ---------------------------------------------------------------- checks


def _check(
    logits: Tensor,
    banned: Tensor | Sequence[int] | None,
    ban_rows: Tensor | None,
    temperature: float,
    token: Tensor | None,
    uniform: Tensor | None,
    pad_id: int | None,
) -> tuple[int, int]:
    """(C, V) after checking every argument's shape, dtype and device against `logits`."""
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        raise ValueError(f"logits must be a (C, V) tensor, got {_shape(logits)}")
    if logits.dtype not in LOGIT_DTYPES:
        raise ValueError(f"logits must be float32, float16 or bfloat16, got {logits.dtype}")
    c, v = logits.shape
    if v == 0:
        raise ValueError("logits has an empty vocabulary (V = 0)")
    if pad_id is not None and not 0 <= pad_id < v:
        raise ValueError(f"pad_id {pad_id} is outside the vocabulary of {v} ids")
    if not temperature >= 0:  # also NaN
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if isinstance(banned, Tensor):
        if banned.dtype != torch.bool or banned.dim() not in (1, 2) or banned.shape[-1] != v:
            raise ValueError(
                f"banned must be a (V,) or (R, V) bool tensor with V = {v}, "
                f"got {banned.dtype} {_shape(banned)}"
            )
        _same_device("banned", banned, logits)
    if ban_rows is not None:
        if banned is None:
            raise ValueError("ban_rows given without a banned table")
        if ban_rows.shape != (c,) or ban_rows.dtype.is_floating_point or ban_rows.dtype == torch.bool:
            raise ValueError(f"ban_rows must be a (C,) integer tensor with C = {c}, got {_shape(ban_rows)}")
        _same_device("ban_rows", ban_rows, logits)
    for name, vec in (("token", token), ("uniform", uniform)):
        if vec is not None:
            if vec.shape != (c,):
                raise ValueError(f"{name} must be a (C,) tensor with C = {c}, got {_shape(vec)}")
            _same_device(name, vec, logits)
    if token is not None and (token.dtype.is_floating_point or token.dtype == torch.bool):
        raise ValueError(f"token must hold integer ids, got {token.dtype}")
    if uniform is not None:
        if not uniform.dtype.is_floating_point:
            raise ValueError(f"uniform must be floating point in [0, 1), got {uniform.dtype}")
        if temperature == 0:
            raise ValueError("uniform given with temperature 0: greedy decoding does not sample")
    return c, v


def _check_device(logits: Tensor) -> None:
    if not logits.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            f"the Triton kernel needs CUDA tensors, got {logits.device} (or set TRITON_INTERPRET=1)"
        )
    if logits.stride(1) != 1:
        raise ValueError(f"logits must be contiguous along V, got strides {logits.stride()}")


def _table_and_rows(
    banned: Tensor | Sequence[int] | None, ban_rows: Tensor | None, c: int, v: int, device: torch.device
) -> tuple[Tensor | None, Tensor]:
    """(R, V) bool ban table (None: nothing banned) and (C,) row per canvas row."""
    if banned is None:
        return None, torch.full((c,), -1, dtype=torch.int32, device=device)
    if not isinstance(banned, Tensor):
        ids = list(banned)
        if any(not 0 <= i < v for i in ids):
            raise ValueError(f"banned ids must lie in [0, {v}), got {[i for i in ids if not 0 <= i < v][:5]}")
        table = torch.zeros(1, v, dtype=torch.bool)
        table[0, ids] = True
        banned = table.to(device)
    table = banned if banned.dim() == 2 else banned[None]  # (R, V)
    if ban_rows is None:
        ban_rows = torch.zeros(c, dtype=torch.int32, device=device)  # (C,)
    return table.contiguous(), ban_rows


def _same_device(name: str, t: Tensor, logits: Tensor) -> None:
    if t.device != logits.device:
        raise ValueError(f"{name} is on {t.device} but logits are on {logits.device}")


def _shape(x: object) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
