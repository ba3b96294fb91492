"""Length search: a single line whose length is not given is also decoded at a few exact lengths, and
the causal head chooses among the texts.

A free canvas decides its own end, and the small model often ends too soon (`return` where `return
l[len(l) // 2]` goes): given the right length (the evaluation's `oracle`) the same model passes more of
HumanEval single-line (docs/eval.md). The context rows' causal head reads the context left to right (the
suffix first, then the prefix), so the log-probability it gives a candidate *followed by the suffix's
first tokens* is a judge of the join, where a line cut short or run on should lose. It costs a chain
per length (lengths 3 and 20: 23.9 forwards a held-out line against 3.6, `benchmarks/causal_lines.py`).

The lengths a model searches are its own (config.json `decoding.length_search`, `runtime.decoding`):
none for a model that declares none. Measured for the shipped model (`benchmarks/causal_lines.py`, and
`python -m runtime.eval --model FOLDER` on a copy whose config.json declares it; docs/training.md, "The
causal head"): no robust gain, so it declares none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from runtime.model import KV, InfillTransformer
    from runtime.tokenizer import Tokenizer

JOIN_TOKENS = 12
"""Suffix tokens after a candidate that the causal head's score includes."""
JOIN_CHARS = JOIN_TOKENS * 16
"""Suffix characters tokenized for them (more than 12 tokens ever take)."""


def joint_log_probs(
    model: InfillTransformer, kv: KV, last: int, texts: list[list[int]], join: list[int]
) -> list[float]:
    """Per candidate (the canvas tokens of its text: heal + text): the causal head's log-probability of
    the candidate, then of the `join` tokens after it, given the context. `kv`: the context's K/V, whose
    last position holds the token `last` (its row is the one that predicts a candidate's first token).
    One batched forward."""
    short = [(k[:, :, :-1], v[:, :, :-1]) for k, v in kv]
    rows = [[last, *ids, *join] for ids in texts]
    width = max(len(r) for r in rows)
    padded = [r + [last] * (width - len(r)) for r in rows]  # right padding: never read
    batch = torch.tensor(padded, device=kv[0][0].device)
    logp = torch.log_softmax(model.continuation_logits(batch, short).float(), dim=-1)  # (B, T, V)
    picked = logp[:, :-1].gather(-1, batch[:, 1:, None])[..., 0]  # (B, T-1): each next token's
    return [float(picked[b, : len(r) - 1].sum().cpu()) for b, r in enumerate(rows)]


def join_tokens(tok: Tokenizer, suffix: str) -> list[int]:
    """The suffix's first tokens, as the causal head scores them after a candidate."""
    return tok.encode(suffix[:JOIN_CHARS])[:JOIN_TOKENS]
