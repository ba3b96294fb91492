"""Drafted canvases: candidate texts put on canvases and verified by the model in one forward.

    drafts (text, evidence) -> canvases: heal + text tokens, then pads (every slot visible)
    -> one batched forward over the shared context (B = drafts, `runtime.model.SharedKV`)
    -> each visible token's log-probability at its slot (the unmasked-slot head the model
       was trained with: its self-correction loss)
    -> choose: the weakest text token's log-probability + EVIDENCE_WEIGHT * log(evidence)
    -> accept it; slots whose token the model gives less than DOUBT_PROBABILITY are re-masked
       and denoised again (self-correction); below ACCEPT_SCORE the drafts are dropped and
       the canvas is denoised as usual

Measured with the shipped model on held-out tasks (`benchmarks/drafts_tuning.py`, one seed of
tasks; docs/workspace.md reports another): every acceptance bar and every re-masking of doubted
tokens lowered exact match, so the defaults accept the best draft whenever there is one and
correct no token.  A model that knows the workspace layout should raise ACCEPT_SCORE and
DOUBT_PROBABILITY.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from runtime.canvas import canvas_target
from runtime.types import InfillStats

EVIDENCE_WEIGHT = 2.0
ACCEPT_SCORE = -math.inf
DOUBT_PROBABILITY = 0.0


@dataclass(frozen=True)
class DraftCanvases:
    canvases: Tensor  # (B, C) ids: heal + text tokens, then pads
    lengths: list[int]  # text tokens per canvas
    evidence: list[float]


@dataclass(frozen=True)
class Verdict:
    index: int
    """The chosen draft."""
    score: float
    doubted: list[int]
    """Its slots (text and the end) to re-mask and denoise again."""


def draft_canvases(
    tok, heal: str, drafts: tuple[tuple[str, float], ...], canvas_len: int, *, encode=None, end_id=None
) -> DraftCanvases | None:
    """The drafts that fit a canvas with room for their end (a pad); None when none does.
    `encode`/`end_id`: for a model with another tokenizer (the masked backend: no healing)."""
    rows, lengths, evidence = [], [], []
    end = tok.pad_id if end_id is None else end_id
    for text, weight in drafts:
        ids = canvas_target(tok, heal, text) if encode is None else encode(text)
        if not ids or len(ids) >= canvas_len:
            continue
        rows.append(ids + [end] * (canvas_len - len(ids)))
        lengths.append(len(ids))
        evidence.append(weight)
    if not rows:
        return None
    return DraftCanvases(torch.tensor(rows, dtype=torch.long), lengths, evidence)


def judge(
    dc: DraftCanvases,
    logits: Tensor,
    *,
    evidence_weight: float | None = None,
    doubt_probability: float | None = None,
) -> Verdict:
    """The best draft by the model's belief in its weakest token and the retrieval evidence.
    logits: (B, C, V) of the all-visible draft canvases.  The weights default to this module's."""
    evidence_weight = EVIDENCE_WEIGHT if evidence_weight is None else evidence_weight
    doubt_probability = DOUBT_PROBABILITY if doubt_probability is None else doubt_probability
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, dc.canvases[..., None])[..., 0]  # (B, C)
    best, best_score = 0, -math.inf
    for b, n in enumerate(dc.lengths):
        score = float(logp[b, :n].min()) + evidence_weight * math.log(dc.evidence[b])
        if score > best_score:
            best, best_score = b, score
    n = dc.lengths[best]
    floor = math.log(doubt_probability) if doubt_probability > 0 else -math.inf
    doubted = [j for j in range(n + 1) if float(logp[best, j]) < floor]
    return Verdict(best, best_score, doubted)


def verify(dc: DraftCanvases | None, forward: Callable[[Tensor], Tensor], mask_id: int) -> Verified:
    """Run the drafts' one forward (`forward`: (B, C) canvases -> (B, C, V) logits), judge them,
    and say what to do: nothing, drop them, accept one, or accept one with its doubted slots open."""
    if dc is None:
        return Verified()
    verdict = judge(dc, forward(dc.canvases))
    tried = len(dc.lengths)
    if verdict.score < ACCEPT_SCORE:
        return Verified(tried=tried)
    ids = dc.canvases[verdict.index].tolist()
    if not verdict.doubted:
        return Verified(tried=tried, out=ids[: dc.lengths[verdict.index]], draft=ids)
    initial = tuple(mask_id if j in verdict.doubted else t for j, t in enumerate(ids))
    return Verified(tried=tried, initial=initial, draft=ids)


@dataclass(frozen=True)
class Verified:
    """What draft verification decided: nothing (no drafts fit), drop them (`tried` only),
    accept one as it is (`out`), or accept one with its doubted slots open (`initial`)."""

    tried: int = 0
    out: list[int] | None = None
    initial: tuple[int, ...] | None = None
    draft: list[int] | None = None
    """The accepted draft's canvas (before any correction)."""

    def count(self, stats: InfillStats, out: list[int]) -> InfillStats:
        """The request's stats with the verification pass and its outcome added."""
        if not self.tried:
            return stats
        corrected = 0
        if self.initial is not None and self.draft is not None:
            corrected = sum(1 for a, b in zip(self.draft, out, strict=False) if a != b)
        return dataclasses.replace(
            stats, forwards=stats.forwards + 1, drafts_tried=self.tried,
            drafts_accepted=int(self.draft is not None), tokens_corrected=corrected,
        )
