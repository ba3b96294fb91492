"""Length search: a single line whose length is not given is also decoded at a few exact lengths, or
written left to right by the causal head, and the causal head chooses among the texts.

A free canvas decides its own end, and the small model often ends too soon (`return` where `return
l[len(l) // 2]` goes): given the right length (the evaluation's `oracle`) the same model passes more of
HumanEval single-line (docs/eval.md). The context rows' causal head reads the context left to right (the
suffix first, then the prefix), so the log-probability it gives a candidate *followed by the suffix's
first tokens* is a judge of the join, where a line cut short or run on should lose. It costs a chain
per length (lengths 3 and 20: 23.9 forwards a held-out line against 3.6, `benchmarks/causal_lines.py`).

The causal line (`causal_line`) is the context rows' own decode: greedy tokens from the causal head
after the context through the first line break, a cached one-token forward each (a line of 10 tokens costs
10 such forwards, each far cheaper than a canvas forward; fewer where the canvas's text, read first as a
draft, agrees). A small model's canvas and its causal head get different lines right
(`benchmarks/causal_lines.py`), and the same joint score chooses.

The lengths a model searches, and whether it writes the causal line, are its own (config.json
`decoding.length_search` and `decoding.causal_line`, `runtime.decoding`): none for a model that declares
none. Measured for the shipped model with `benchmarks/causal_lines.py`, and `python -m runtime.eval
--model FOLDER` on a copy whose config.json declares it (docs/training.md, "The causal head" and "The causal
line as a decoding option"): with a cut of 6 the causal line gained 0.3 points on HumanEval single-line
and held-out lines without a workspace (0.7 on `benchmarks/workspace.py`'s tuning seeds 1-2); cut at
`CAUSAL_SLACK` tokens past the canvas's text it keeps ~3.5 tokens per forward on that benchmark's model +
drafts row (~2.4 uncut; the issue's target 2.5), so the shipped model declares it, and no length search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from runtime.cache import crop
from runtime.types import Cancelled

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from runtime.model import KV, InfillTransformer
    from runtime.tokenizer import Tokenizer

CAUSAL_SLACK = 3
"""Tokens the causal line may write beyond the canvas's text (heal included) before it is no candidate:
its run-on lines cost one-token steps for nothing. Chosen on `benchmarks/workspace.py`'s tuning seeds 1-2
(docs/training.md, "The cut"): every cut of 2 or more tokens keeps the uncut line's exact match there, 0-1
lose it; 3 leaves a token of margin, at 3.48 / 3.49 tokens per forward with drafts (6: 3.13 / 3.06)."""
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


def causal_limit(max_tokens: int, canvas_len: int, drafted: int | None = None) -> int:
    """The most tokens the causal line may write: a full canvas and its line break's token, and given
    `drafted` (the canvas's text in tokens, heal included) no more than `CAUSAL_SLACK` past it."""
    limit = min(max_tokens, canvas_len) + 1
    return limit if drafted is None else min(limit, drafted + CAUSAL_SLACK)


def join_tokens(tok: Tokenizer, suffix: str) -> list[int]:
    """The suffix's first tokens, as the causal head scores them after a candidate."""
    return tok.encode(suffix[:JOIN_CHARS])[:JOIN_TOKENS]


def causal_line(
    model: InfillTransformer,
    tok: Tokenizer,
    kv: KV,
    last: int,
    *,
    heal: str,
    banned: torch.Tensor,
    limit: int,
    draft: Sequence[int] = (),
    should_cancel: Callable[[], bool] | None = None,
) -> tuple[list[int] | None, int]:
    """Greedy tokens from the causal head after the context (`kv`, whose last position holds the token
    `last`), the first beginning with the healed text `heal`, through the first line break after it.
    `banned`: (V,) bool, tokens never written (the special ones). Returns the tokens (heal included, as a
    canvas's are), or None when no line break comes within `limit` tokens (a text that would not fit
    the canvas), and the forwards spent. The cancel flag is checked between steps.

    `draft`: tokens the line may begin with (the canvas's), read in the first forward: the greedy
    choices that follow draft tokens the head agrees with are taken at once (greedy speculative decoding:
    the same line, fewer forwards)."""
    device = kv[0][0].device
    past = crop(kv, kv[0][0].shape[2] - 1)  # the last row is computed again: its logits
    head = heal.encode()
    first = None
    if heal:
        first = torch.ones_like(banned)
        first[list(tok.ids_starting_with(head))] = False
    feed, out, data, forwards = [last, *draft[: limit - 1]], [], b"", 0
    while True:
        if forwards and should_cancel is not None and should_cancel():
            raise Cancelled("cancelled between causal steps")
        logits, grown = model.extend(torch.tensor([feed], device=device), past)
        forwards += 1
        logits = logits[0].float().cpu().masked_fill(banned, float("-inf"))  # (T, V)
        if first is not None and not out:
            logits[0] = logits[0].masked_fill(first, float("-inf"))
        greedy = logits.argmax(-1).tolist()  # greedy[j]: the head's choice after feed[: j + 1]
        n = 1
        while n < len(feed) and feed[n] == greedy[n - 1]:  # a draft token the head would have chosen
            n += 1
        for token in greedy[:n]:
            out.append(token)
            data += tok.token_bytes(token)
            if b"\n" in data[len(head) :]:
                return out, forwards
            if len(out) >= limit:
                return None, forwards
        past, feed = crop(grown, past[0][0].shape[2] + n), [greedy[n - 1]]
