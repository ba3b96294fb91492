"""Drafted canvases: candidate texts put on canvases and verified by the model in one forward.

    drafts (text, evidence) -> canvases: heal + text tokens, then pads (every slot visible)
    -> one batched forward over the shared context (B = drafts, `runtime.model.SharedKV`)
    -> each visible token's log-probability at its slot (the unmasked-slot head the model
       was trained with: its self-correction loss)
    -> choose: the weakest text token's log-probability (and the end slot's, `end_slot`)
       + evidence_weight * log(evidence)
    -> accept it; slots whose token the model gives less than doubt_probability are re-masked
       and denoised again (self-correction); below accept_score the drafts are dropped and
       the canvas is denoised as usual

The three numbers are a model's (`DraftRules`, the `drafts` section of its config.json): a model
trained on drafted canvases can be trusted to reject and correct, one that was not cannot.
Measured with the first shipped model on held-out tasks (`benchmarks/drafts_tuning.py`):
every acceptance bar and every re-masking of doubted tokens lowered exact match, so the rules
for a model that declares none accept the best draft whenever there is one and correct no token;
and its belief in a draft adds little to retrieval's ranking, so evidence weighs 8x (2x: 17.0 %,
8x: 19.5 % on seed 1 with the 2026-12-01 retrieval).
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


@dataclass(frozen=True)
class DraftRules:
    """How a model's verification pass is read (config.json's `drafts` section)."""

    evidence_weight: float = 8.0
    accept_score: float = -math.inf
    """Below this score the drafts are dropped (the canvas is denoised as usual)."""
    doubt_probability: float = 0.0
    """The accepted draft's slots whose token the model gives less than this are re-masked."""
    end_slot: bool = False
    """Whether the slot after the text (the draft's end) counts in the score."""

    @classmethod
    def from_config(cls, section: object) -> DraftRules:
        """The rules of a config.json `drafts` section (None or absent: the defaults); a bad value
        raises ValueError naming it."""
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ValueError(f"drafts must be an object, not {section!r}")
        known = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {}
        for key, value in section.items():
            if key not in known:
                continue  # notes such as "tuned_by"
            ok = isinstance(value, bool) if key == "end_slot" else (
                isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
            )  # fmt: skip
            if not ok:
                raise ValueError(f"drafts.{key}: bad value {value!r}")
            values[key] = value
        if not 0.0 <= values.get("doubt_probability", 0.0) < 1.0:
            raise ValueError(f"drafts.doubt_probability must be in [0, 1), not {values['doubt_probability']}")
        return cls(**values)


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


def judge(dc: DraftCanvases, logits: Tensor, rules: DraftRules = DraftRules()) -> Verdict:
    """The best draft by the model's belief in its weakest token and the retrieval evidence.
    logits: (B, C, V) of the all-visible draft canvases."""
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, dc.canvases[..., None])[..., 0]  # (B, C)
    best, best_score = 0, -math.inf
    for b, n in enumerate(dc.lengths):
        weakest = float(logp[b, : n + 1 if rules.end_slot else n].min())
        score = weakest + rules.evidence_weight * math.log(dc.evidence[b])
        if score > best_score:
            best, best_score = b, score
    n = dc.lengths[best]
    p = rules.doubt_probability
    floor = math.log(p) if p > 0 else -math.inf
    doubted = [j for j in range(n + 1) if float(logp[best, j]) < floor]
    return Verdict(best, best_score, doubted)


def verify(
    dc: DraftCanvases | None,
    forward: Callable[[Tensor], Tensor],
    mask_id: int,
    rules: DraftRules = DraftRules(),
) -> Verified:
    """Run the drafts' one forward (`forward`: (B, C) canvases -> (B, C, V) logits), judge them,
    and say what to do: nothing, drop them, accept one, or accept one with its doubted slots open."""
    if dc is None:
        return Verified()
    verdict = judge(dc, forward(dc.canvases), rules)
    tried = len(dc.lengths)
    if verdict.score < rules.accept_score:
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
