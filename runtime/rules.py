"""Canvas rules: the decisions about a canvas's text that are not the policy's.

The denoising loop (`runtime.sampler`) calls every rule of a `CanvasSpec` at four
fixed points of each step, in the spec's order:

    constrain(logits)   before the beliefs: forbid tokens at some slots
    propose(probs)      greedy proposals only: change a slot's proposed token
    widen(commit)       after the policy: commit more slots than it chose
    settle(state)       after committing: re-open or close slots

A rule does only what its docstring says; the defaults do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from runtime.sampler import CanvasState


class CanvasRule:
    def constrain(self, logits: Tensor, state: CanvasState) -> None:
        """In place on (C, V) logits (constraints already added)."""

    def propose(self, probs: Tensor, proposal: Tensor) -> Tensor:
        return proposal

    def widen(self, commit: Tensor, state: CanvasState, proposal: Tensor, confidence: Tensor) -> Tensor:
        return commit

    def settle(self, state: CanvasState) -> None:
        """In place on the state, after this step's commits."""


END_PROBABILITY = 0.5
PAD_RUN_CONFIDENCE = 0.5
"""The end-of-text bars of a model that declares none (`runtime.decoding`: a model's config.json
may declare its own, tuned on its held-out tasks)."""


@dataclass(frozen=True)
class EndBars:
    """Where a free canvas's text ends: `WeakEnd`'s `end_probability`, `VariableLength`'s
    `pad_run_confidence`.  Lower bars end texts sooner, in fewer forwards."""

    end_probability: float = END_PROBABILITY
    pad_run_confidence: float = PAD_RUN_CONFIDENCE


DEFAULT_BARS = EndBars()


@dataclass(frozen=True)
class WeakEnd(CanvasRule):
    """Propose the end (pad) only where ending is more likely than going on.

    Pad gathers all the "the text ends here" mass in one token, while going on
    is spread over many tokens, so a weak model's argmax is often pad at a slot
    where it believes more in some text than in none.  Where pad wins the argmax
    with less than `end_probability`, the best other token is proposed instead."""

    pad_id: int
    end_probability: float = END_PROBABILITY

    def propose(self, probs: Tensor, proposal: Tensor) -> Tensor:
        weak = (proposal == self.pad_id) & (probs[:, self.pad_id] < self.end_probability)
        weak_end = weak.nonzero().flatten()
        if not len(weak_end):
            return proposal
        other = probs[weak_end]  # a copy of those rows only
        other[:, self.pad_id] = -1.0
        proposal = proposal.clone()
        proposal[weak_end] = other.argmax(-1)
        return proposal


@dataclass(frozen=True)
class VariableLength(CanvasRule):
    """A free canvas's text ends at its first committed pad (every later slot becomes pad: the
    model was trained with the middle followed by pads only), or just after a committed stop
    token (a token holding a newline, for a single line)."""

    pad_id: int
    stop_ids: frozenset[int] = frozenset()
    healed_first_slot: bool = False
    """Slot 0 re-generates the healed prefix text, whose newline (a prefix ending in "\\n" or
    "\\n    ") is not the end of the line being completed."""
    pad_run_confidence: float = PAD_RUN_CONFIDENCE
    _stops: Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_stops", torch.tensor(sorted(self.stop_ids), dtype=torch.long))

    def widen(self, commit: Tensor, state: CanvasState, proposal: Tensor, confidence: Tensor) -> Tensor:
        """Commit a pad at the start of the run of pad proposals that ends at a committed pad.

        The trailing pads of a short infill are the model's most confident slots, so a
        confidence-ordered policy would commit them one by one from the right, a forward
        each.  Where the model proposes pad for the whole run j..i with confidence at
        least `pad_run_confidence`, committing pad at j ends the text there and closes the run."""
        pads = commit & (proposal == self.pad_id)
        if not pads.any():
            return commit
        masked = state.masked
        i = int(pads.nonzero()[0])
        j = i
        while j > 0 and masked[j - 1] and proposal[j - 1] == self.pad_id:
            if confidence[j - 1] < self.pad_run_confidence:
                break
            j -= 1
        if j < i:
            commit = commit.clone()
            commit[j] = True
        return commit

    def settle(self, state: CanvasState) -> None:
        tokens, masked = state.tokens, state.masked
        ends = (tokens == self.pad_id) & ~masked
        first = int(ends.nonzero()[0]) if ends.any() else len(tokens)
        if self.stop_ids:
            stops = ~masked & torch.isin(tokens, self._stops)
            if self.healed_first_slot:
                stops[0] = False
            if stops.any():
                first = min(first, int(stops.nonzero()[0]) + 1)
        if first < len(tokens):
            tokens[first:] = self.pad_id
            masked[first:] = False


@dataclass(frozen=True)
class ContentRule(CanvasRule):
    """The text may not end (pad) or break its line before it holds a visible character:
    a completion asked for on a blank line must not be empty.

    Per-vocabulary tables, built once per request.  Row 0 is for slot 0, which re-generates
    the healed prefix text (that text does not count); row 1 for the other slots."""

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

    def _ends_and_content(self, tokens: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
        """(is_end (C,), has_content (C,)) for the committed slots."""
        ids = tokens.clamp_max(self.ends.shape[1] - 1)  # (C,)
        row = (torch.arange(len(tokens)) > 0).long()  # (C,) 0 for slot 0, 1 for the others
        return self.ends[row, ids] & ~masked, self.visible[row, ids] & ~masked

    def constrain(self, logits: Tensor, state: CanvasState) -> None:
        """-inf on pad and line breaks at a slot with only committed whitespace before it.

        A slot with open slots before it may still propose the end: text may come
        before it; `settle` takes such an end back if it does not."""
        for slot in self.blocked(state).nonzero().flatten().tolist():  # few: slot 0, after whitespace
            logits[slot, : self.ends.shape[1]].masked_fill_(self.ends[min(slot, 1)], -torch.inf)

    def blocked(self, state: CanvasState) -> Tensor:
        """(C,) bool: the slots where `constrain` forbids the ends this step (the kernel path
        bans them through its constraint table instead, `runtime.ops`)."""
        _, content = self._ends_and_content(state.tokens, state.masked)
        return ~_undecided_or_text_before(state.masked, content)

    def settle(self, state: CanvasState) -> None:
        """Re-open a committed end (pad or line break) that has only committed whitespace before it.

        Parallel policies may commit a pad at slot j and whitespace at every slot
        before it in one step; the re-opened slot then meets `constrain` as the
        first open slot and gets text.  Each re-open follows a step that committed
        another slot, so the loop still ends."""
        is_end, content = self._ends_and_content(state.tokens, state.masked)
        if not is_end.any():
            return
        first = int(is_end.nonzero()[0])
        if not bool(_undecided_or_text_before(state.masked, content)[first]):
            state.reopen_slot(first)


def _undecided_or_text_before(masked: Tensor, content: Tensor) -> Tensor:
    """(C,) bool: some slot before j is still open or holds text."""
    open_or_text = (masked | content).long()
    return (torch.cumsum(open_or_text, 0) - open_or_text) > 0


@dataclass(frozen=True)
class SpanEdits(CanvasRule):
    """DreamOn's variable span, in our loop's terms (its published sampler, docs/backends.md).

    The canvas is room for the span: the span is its leading slots; the room after it holds
    `delete_id`, committed, and the backend never shows it to the model (its forward feeds the
    span only).  After each step's commits:

    * a committed delete closes every open slot after it (they become deletes too), then every
      delete leaves the span: the slots after it move left and the room grows;
    * a committed expand becomes two open slots: the slots after it move right into the room.
      At most `budget` expansions per canvas; an expand beyond the room or the budget opens its
      slot again, and after the deadline it is dropped (the text is returned as it stands).

    Proposing expand is forbidden while there is no room or the budget is spent, so the loop
    still ends: each step commits a slot, and only the bounded expansions open new ones."""

    expand_id: int
    delete_id: int
    mask_id: int
    budget: int

    def _allowance(self, state: CanvasState) -> int:
        room = int((state.tokens == self.delete_id).sum())
        return 0 if state.deadline_hit else min(room, self.budget - state.counters.get("expand", 0))

    def constrain(self, logits: Tensor, state: CanvasState) -> None:
        if self._allowance(state) <= 0:
            logits[:, self.expand_id] = -torch.inf

    def settle(self, state: CanvasState) -> None:
        tokens, masked = state.tokens, state.masked
        if state.deadline_hit:
            tokens[tokens == self.expand_id] = self.delete_id
        deletes = tokens == self.delete_id
        first = int(deletes.nonzero()[0]) if deletes.any() else len(tokens)
        if bool(masked[first:].any()):  # a delete closes the open slots after it
            late = masked.clone()
            late[:first] = False
            tokens[late] = self.delete_id
            masked[late] = False
        keep = tokens != self.delete_id
        if bool((~keep[: int(keep.sum())]).any()):  # a delete inside the span: close the gap
            state.move(torch.cat([keep.nonzero().flatten(), (~keep).nonzero().flatten()]))
            self._to_room(state, int(keep.sum()))
        if bool((tokens == self.expand_id).any()):
            self._expand(state)

    def _to_room(self, state: CanvasState, start: int) -> None:
        state.tokens[start:] = self.delete_id
        state.masked[start:] = False
        state.committed_at[start:] = -2
        state.remask_count[start:] = 0

    def _expand(self, state: CanvasState) -> None:
        tokens, length = state.tokens, len(state.tokens)
        span = int((tokens != self.delete_id).sum())
        slots = (tokens[:span] == self.expand_id).nonzero().flatten().tolist()
        growing = set(slots[: max(0, self._allowance(state))])
        order: list[int] = []
        for i in range(span):
            order += [i, i] if i in growing else [i]
        order += list(range(span, length))[: length - len(order)]
        state.move(torch.tensor(order, dtype=torch.long))
        opened = (state.tokens == self.expand_id).nonzero().flatten()  # both halves, and the refused
        state.tokens[opened] = self.mask_id
        state.masked[opened] = True
        state.committed_at[opened] = -1
        state.remask_count[opened] = 0
        state.counters["expand"] = state.counters.get("expand", 0) + len(growing)
