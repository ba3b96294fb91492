"""The denoising loop, written once.  Policies decide; this loop only does the bookkeeping.

    forward -> constrain -> beliefs -> policy.decide -> commit / remask / pad closure

A slot that commits to pad ends the infill: every slot after it becomes pad
(the model was trained with the middle followed by pads only).  For a single
line, a committed token holding a newline ends it the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from runtime.policies import Policy, StepView
from runtime.types import Cancelled, InfillStats

Forward = Callable[[Tensor], Tensor]
"""(C,) canvas ids -> (C, V) logits."""


@dataclass(frozen=True)
class CanvasSpec:
    length: int
    mask_id: int
    pad_id: int
    banned_ids: tuple[int, ...]
    """Ids never to propose (mask and the other specials except pad)."""
    first_slot_ids: tuple[int, ...] | None = None
    """If set, slot 0 may only hold one of these (boundary healing)."""
    initial: tuple[int, ...] | None = None
    """Starting canvas (rewrite mode): mask ids mark open slots, others start committed."""
    stop_ids: frozenset[int] = frozenset()
    """Committing one of these (e.g. tokens with a newline, for a single line) ends the
    canvas after it: later slots become pad."""
    content_rule: ContentRule | None = None
    """If set, the text may not end (pad) or break its line before it holds a visible
    character (a completion asked for on a blank line)."""


@dataclass(frozen=True)
class ContentRule:
    """Per-vocabulary tables for `CanvasSpec.content_rule`, built once per request.  Row 0 is
    for slot 0, which re-generates the healed prefix text (that text does not count); row 1
    for the other slots."""

    visible: Tensor  # (2, V) bool: the token holds a non-whitespace character
    ends: Tensor  # (2, V) bool: the token is pad or holds a line break

    @classmethod
    def from_flags(
        cls, visible: Tensor, breaks: Tensor, first_visible: Tensor, first_breaks: Tensor, pad_id: int
    ) -> ContentRule:
        """From (V,) bool flags for the other slots and for slot 0."""
        ends = torch.stack((first_breaks, breaks))  # (2, V)
        ends[:, pad_id] = True
        return cls(visible=torch.stack((first_visible, visible)), ends=ends)


@dataclass(frozen=True)
class CanvasOutcome:
    tokens: list[int]
    forwards: int
    remasked: int
    deadline_hit: bool


@dataclass
class Tally:
    """Counts summed over the canvases of one request (block continuation runs several)."""

    forwards: int = 0
    remasked: int = 0
    canvases: int = 0
    deadline_hit: bool = False

    def add(self, res: CanvasOutcome) -> None:
        self.canvases += 1
        self.forwards += res.forwards
        self.remasked += res.remasked
        self.deadline_hit |= res.deadline_hit

    def stats(
        self, *, tokens: int, context_tokens: int, started: float, cached_tokens: int = 0
    ) -> InfillStats:
        return InfillStats(
            forwards=self.forwards,
            tokens=tokens,
            remasked=self.remasked,
            canvases=self.canvases,
            context_tokens=context_tokens,
            cached_tokens=cached_tokens,
            ms=(time.perf_counter() - started) * 1000,
            deadline_hit=self.deadline_hit,
        )


def denoise(
    forward: Forward,
    spec: CanvasSpec,
    policy: Policy,
    *,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    should_cancel: Callable[[], bool] | None = None,
    deadline_ms: float | None = None,
    started: float | None = None,
) -> CanvasOutcome:
    started = time.perf_counter() if started is None else started
    c = spec.length
    if spec.initial is not None:
        assert len(spec.initial) == c, "initial canvas must fill the canvas"
        tokens = torch.tensor(spec.initial, dtype=torch.long)  # (C,)
    else:
        tokens = torch.full((c,), spec.mask_id, dtype=torch.long)  # (C,)
    masked = tokens == spec.mask_id
    committed_at = torch.where(masked, -1, -2)  # draft tokens count as committed before step 0
    remask_count = torch.zeros(c, dtype=torch.long)
    bias: Tensor | None = None
    previous: Tensor | None = None
    forwards = remasked = 0
    step_ms = 0.0
    deadline_hit = False
    step = 0
    while masked.any():
        if should_cancel is not None and should_cancel():
            raise Cancelled("cancelled between denoising steps")
        t0 = time.perf_counter()
        logits = forward(tokens).float()  # (C, V)
        forwards += 1
        if bias is None or bias.shape[-1] != logits.shape[-1]:
            bias = _constraint_bias(spec, forward_vocab=logits.shape[-1])
        logits = logits + bias
        if spec.content_rule is not None:
            _block_early_ends(spec, tokens, masked, logits)
        if temperature > 0:
            logits = logits / temperature
        logp = torch.log_softmax(logits, dim=-1)  # (C, V)
        probs = logp.exp()
        if temperature > 0:
            proposal = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (C,)
        else:
            proposal = probs.argmax(-1)  # (C,)
            proposal = _end_only_if_likely(probs, proposal, spec.pad_id)
        confidence = probs.gather(-1, proposal[:, None]).squeeze(-1)
        entropy = -(probs * logp.clamp_min(-1e9)).sum(-1)
        current = probs.gather(-1, tokens.clamp_max(probs.shape[-1] - 1)[:, None]).squeeze(-1)
        elapsed = (time.perf_counter() - started) * 1000
        this_ms = (time.perf_counter() - t0) * 1000
        step_ms = this_ms if step == 0 else 0.7 * step_ms + 0.3 * this_ms
        decision = policy.decide(
            StepView(
                step=step,
                confidence=confidence,
                entropy=entropy,
                proposal=proposal,
                masked=masked,
                current_confidence=current,
                committed_at=committed_at,
                remask_count=remask_count,
                previous_proposal=previous,
                elapsed_ms=elapsed,
                step_ms=step_ms,
                deadline_ms=deadline_ms,
            )
        )
        commit = decision.commit & masked
        if decision.finish:
            commit = masked.clone()
            deadline_hit = deadline_ms is not None and elapsed + step_ms >= deadline_ms
        elif not commit.any():  # a policy must make progress; take the most confident slot
            commit = torch.zeros_like(masked)
            commit[torch.where(masked, confidence, -1.0).argmax()] = True
        if decision.remask is not None and not decision.finish:
            reopen = decision.remask & ~masked & ~commit & (tokens != spec.pad_id)
            if reopen.any():
                tokens[reopen] = spec.mask_id
                masked |= reopen
                committed_at[reopen] = -1
                remask_count += reopen.long()
                remasked += int(reopen.sum())
        if spec.initial is None:  # a draft's canvas keeps its length; pads inside it are just dropped
            commit = _extend_pad_run(commit, masked, proposal, confidence, spec.pad_id)
        tokens[commit] = proposal[commit]
        masked &= ~commit
        committed_at[commit] = step
        if spec.content_rule is not None:
            _keep_content_first(spec, tokens, masked, committed_at)
        if spec.initial is None:
            _close_after_end(tokens, masked, spec)
        previous = proposal
        step += 1
    return CanvasOutcome(tokens.tolist(), forwards, remasked, deadline_hit)


def _extend_pad_run(
    commit: Tensor, masked: Tensor, proposal: Tensor, confidence: Tensor, pad_id: int
) -> Tensor:
    """Commit a pad at the start of the run of pad proposals that ends at a committed pad.

    The trailing pads of a short infill are the model's most confident slots, so a
    confidence-ordered policy would commit them one by one from the right, a forward
    each.  Where the model proposes pad for the whole run j..i with confidence at
    least `PAD_RUN_CONFIDENCE`, committing pad at j ends the text there and closes the run.
    """
    pads = commit & (proposal == pad_id)
    if not pads.any():
        return commit
    i = int(pads.nonzero()[0])
    j = i
    while j > 0 and masked[j - 1] and proposal[j - 1] == pad_id and confidence[j - 1] >= PAD_RUN_CONFIDENCE:
        j -= 1
    if j < i:
        commit = commit.clone()
        commit[j] = True
    return commit


PAD_RUN_CONFIDENCE = 0.5


def _close_after_end(tokens: Tensor, masked: Tensor, spec: CanvasSpec) -> None:
    """A committed pad ends the text there; a committed stop token ends it just after."""
    ends = (tokens == spec.pad_id) & ~masked
    first = int(ends.nonzero()[0]) if ends.any() else len(tokens)
    if spec.stop_ids:
        stops = ~masked & torch.isin(tokens, torch.tensor(sorted(spec.stop_ids)))
        if spec.first_slot_ids is not None:
            # slot 0 re-generates the healed prefix text, whose newline (a prefix ending in
            # "\n" or "\n    ") is not the end of the line being completed
            stops[0] = False
        if stops.any():
            first = min(first, int(stops.nonzero()[0]) + 1)
    if first < len(tokens):
        tokens[first:] = spec.pad_id
        masked[first:] = False


def _constraint_bias(spec: CanvasSpec, forward_vocab: int) -> Tensor:
    bias = torch.zeros(spec.length, forward_vocab)  # (C, V)
    bias[:, list(spec.banned_ids)] = -torch.inf
    if spec.first_slot_ids is not None:
        row = torch.full((forward_vocab,), -torch.inf)
        row[list(spec.first_slot_ids)] = 0.0
        bias[0] = row  # not pad either: an empty slot 0 would drop the healed text
    return bias


def _rule_rows(n: int) -> Tensor:
    """(n,) the `ContentRule` row of each slot: 0 for slot 0, 1 for the others."""
    return (torch.arange(n) > 0).long()


def _ends_and_content(rule: ContentRule, tokens: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
    """(is_end (C,), has_content (C,)) for the committed slots."""
    ids = tokens.clamp_max(rule.ends.shape[1] - 1)  # (C,)
    row = _rule_rows(len(tokens))
    return rule.ends[row, ids] & ~masked, rule.visible[row, ids] & ~masked


def _undecided_or_text_before(masked: Tensor, content: Tensor) -> Tensor:
    """(C,) bool: some slot before j is still open or holds text."""
    open_or_text = (masked | content).long()
    return (torch.cumsum(open_or_text, 0) - open_or_text) > 0


def _block_early_ends(spec: CanvasSpec, tokens: Tensor, masked: Tensor, logits: Tensor) -> None:
    """In place: -inf on pad and line breaks at a slot with only committed whitespace before it.

    A slot with open slots before it may still propose the end: text may come
    before it; `_keep_content_first` takes such an end back if it does not."""
    rule = spec.content_rule
    assert rule is not None
    _, content = _ends_and_content(rule, tokens, masked)
    blocked = (~_undecided_or_text_before(masked, content)).nonzero().flatten().tolist()
    for slot in blocked:  # few: slot 0, and the slots after committed whitespace
        logits[slot, : rule.ends.shape[1]].masked_fill_(rule.ends[min(slot, 1)], -torch.inf)


def _keep_content_first(spec: CanvasSpec, tokens: Tensor, masked: Tensor, committed_at: Tensor) -> None:
    """Re-open a committed end (pad or line break) that has only committed whitespace before it.

    Parallel policies may commit a pad at slot j and whitespace at every slot
    before it in one step; the re-opened slot then meets `_block_early_ends` as the
    first open slot and gets text.  Each re-open follows a step that committed
    another slot, so the loop still ends."""
    assert spec.content_rule is not None
    is_end, content = _ends_and_content(spec.content_rule, tokens, masked)
    if not is_end.any():
        return
    first = int(is_end.nonzero()[0])
    if not bool(_undecided_or_text_before(masked, content)[first]):
        tokens[first] = spec.mask_id
        masked[first] = True
        committed_at[first] = -1


END_PROBABILITY = 0.5


def _end_only_if_likely(probs: Tensor, proposal: Tensor, pad_id: int) -> Tensor:
    """Propose pad only where ending is more likely than going on.

    Pad gathers all the "the text ends here" mass in one token, while going on
    is spread over many tokens, so a weak model's argmax is often pad at a slot
    where it believes more in some text than in none.  Where pad wins the argmax
    with less than `END_PROBABILITY`, propose the best other token instead."""
    weak_end = ((proposal == pad_id) & (probs[:, pad_id] < END_PROBABILITY)).nonzero().flatten()
    if not len(weak_end):
        return proposal
    other = probs[weak_end]  # a copy of those rows only
    other[:, pad_id] = -1.0
    proposal = proposal.clone()
    proposal[weak_end] = other.argmax(-1)
    return proposal
