"""The canvases of a request: what each holds at the start and which rules it follows.

    CanvasSpec   one canvas: its starting ids (mask = open slot), constraints and rules
    CanvasPlan   the canvases of one request, in order, as the chain (`runtime.blocks`) asks:
                 free     all slots open; the text ends at a pad, else a next canvas continues
                 exact    free canvases, then a last one with exactly the tokens still to come
                 drafted  a draft's tokens in canvas-sized chunks, a fraction re-masked
                 span     one canvas whose span grows and shrinks (DreamOn's expand/delete)

A free canvas follows `VariableLength` (a pad or a stop token ends the text);
every canvas follows `WeakEnd`; the first canvas of a completion on a blank line
follows `ContentRule`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from runtime.rules import DEFAULT_BARS, CanvasRule, ContentRule, EndBars, SpanEdits, VariableLength, WeakEnd


@dataclass(frozen=True)
class CanvasSpec:
    initial: tuple[int, ...]
    """(C,) starting ids: `mask_id` marks an open slot, any other id starts committed."""
    mask_id: int
    pad_id: int
    banned_ids: tuple[int, ...]
    """Ids never to propose (mask and the other specials except pad)."""
    first_slot_ids: tuple[int, ...] | None = None
    """If set, slot 0 may only hold one of these (boundary healing)."""
    rules: tuple[CanvasRule, ...] = ()

    @property
    def length(self) -> int:
        return len(self.initial)

    def bias(self, vocab: int) -> Tensor:
        """(C, V) additive constraints: -inf on banned ids, and outside the first-slot set at slot 0."""
        bias = torch.zeros(self.length, vocab)  # (C, V)
        bias[:, list(self.banned_ids)] = -torch.inf
        if self.first_slot_ids is not None:
            row = torch.full((vocab,), -torch.inf)
            row[list(self.first_slot_ids)] = 0.0
            bias[0] = row  # not pad either: an empty slot 0 would drop the healed text
        return bias


def canvas_spec(
    length: int,
    *,
    mask_id: int,
    pad_id: int,
    banned_ids: tuple[int, ...],
    first_slot_ids: tuple[int, ...] | None = None,
    initial: tuple[int, ...] | None = None,
    stop_ids: frozenset[int] = frozenset(),
    content_rule: ContentRule | None = None,
    end_bars: EndBars = DEFAULT_BARS,
) -> CanvasSpec:
    """A canvas of `length` open slots, or starting from `initial`, with the rules that follow
    from that: a free canvas (no `initial`) ends at a pad or after a stop token (`end_bars`: how
    sure of the end the model must be); a canvas with starting text keeps its length (pads inside
    it are dropped from the text)."""
    rules: list[CanvasRule] = [content_rule] if content_rule is not None else []
    rules.append(WeakEnd(pad_id, end_bars.end_probability))
    if initial is None:
        initial = (mask_id,) * length
        healed = first_slot_ids is not None
        rules.append(VariableLength(pad_id, stop_ids, healed, end_bars.pad_run_confidence))
    assert len(initial) == length, "initial canvas must fill the canvas"
    return CanvasSpec(tuple(initial), mask_id, pad_id, tuple(banned_ids), first_slot_ids, tuple(rules))


@dataclass(frozen=True)
class CanvasPlan:
    """The canvases of one request; `spec(index, produced)` is None when there are no more."""

    max_tokens: int
    end_ids: frozenset[int]
    spec: Callable[[int, int], CanvasSpec | None]
    """(canvas index, tokens produced so far) -> the next canvas."""
    drafted: int = 0
    """Number of draft canvases (0: free or exact plan, whose text ends at an early end)."""

    def body(self, tokens: list[int]) -> list[int]:
        """A finished canvas's text tokens: up to its first end; a draft's without its pads."""
        if self.drafted:
            return [t for t in tokens if t not in self.end_ids]
        for i, t in enumerate(tokens):
            if t in self.end_ids:
                return tokens[:i]
        return tokens


def free_plan(
    canvas_len: int,
    max_tokens: int,
    *,
    mask_id: int,
    pad_id: int,
    banned_ids: tuple[int, ...],
    end_ids: frozenset[int] | None = None,
    first_slot_ids: tuple[int, ...] | None = None,
    stop_ids: frozenset[int] = frozenset(),
    content_rule: ContentRule | None = None,
    exact_length: bool = False,
    shrink_last: bool = False,
    end_bars: EndBars = DEFAULT_BARS,
) -> CanvasPlan:
    """Canvases of `canvas_len` open slots until the text ends or `max_tokens` are made.

    The first canvas gets the first-slot constraint and the content rule.  `exact_length`:
    the last canvas's open slots are exactly the tokens still to come (the rest start as
    pad, so the canvas keeps the size the model was trained on).  `shrink_last`: the last
    canvas is only as long as the tokens still allowed (models without a trained size)."""

    def spec(index: int, produced: int) -> CanvasSpec:
        left = max_tokens - produced
        initial = None
        if exact_length and left < canvas_len:
            initial = (mask_id,) * left + (pad_id,) * (canvas_len - left)
        return canvas_spec(
            min(canvas_len, left) if shrink_last else canvas_len,
            mask_id=mask_id,
            pad_id=pad_id,
            banned_ids=banned_ids,
            first_slot_ids=first_slot_ids if index == 0 else None,
            initial=initial,
            stop_ids=stop_ids if initial is None else frozenset(),
            content_rule=content_rule if index == 0 else None,
            end_bars=end_bars,
        )

    return CanvasPlan(max_tokens, end_ids or frozenset({pad_id}), spec)


def draft_plan(
    drafts: list[tuple[int, ...]],
    max_tokens: int,
    *,
    mask_id: int,
    pad_id: int,
    banned_ids: tuple[int, ...],
    first_slot_ids: tuple[int, ...] | None = None,
    end_bars: EndBars = DEFAULT_BARS,
) -> CanvasPlan:
    """One canvas per draft chunk (see `draft_canvases`); the text may be longer than `max_tokens`
    when the draft is."""

    def spec(index: int, produced: int) -> CanvasSpec | None:
        if index >= len(drafts):
            return None
        return canvas_spec(
            len(drafts[index]),
            mask_id=mask_id,
            pad_id=pad_id,
            banned_ids=banned_ids,
            first_slot_ids=first_slot_ids if index == 0 else None,
            initial=drafts[index],
            end_bars=end_bars,
        )

    total = max(max_tokens, sum(map(len, drafts)))
    return CanvasPlan(total, frozenset({pad_id}), spec, drafted=len(drafts))


def span_plan(
    start: int,
    room: int,
    *,
    mask_id: int,
    expand_id: int,
    delete_id: int,
    banned_ids: tuple[int, ...],
    end_ids: frozenset[int],
) -> CanvasPlan:
    """One canvas of `room` slots whose span starts as `start` open slots and grows or shrinks as
    the model commits expand or delete (`SpanEdits`; at most `room` expansions).  The text is the
    span; delete is the canvas's pad, so self-correction never re-opens the room."""
    start = max(1, min(start, room))
    initial = (mask_id,) * start + (delete_id,) * (room - start)
    rule = SpanEdits(expand_id, delete_id, mask_id, budget=room)
    canvas = CanvasSpec(initial, mask_id, delete_id, tuple(banned_ids), None, (rule,))

    def spec(index: int, produced: int) -> CanvasSpec | None:
        return canvas if index == 0 else None

    return CanvasPlan(room, end_ids | {delete_id}, spec)


def draft_canvases(
    ids: list[int], canvas_len: int, remask: float, mask_id: int, generator: torch.Generator
) -> list[tuple[int, ...]]:
    """Rewrite mode: the draft's tokens in canvas-sized chunks, a fraction `remask` of them masked,
    plus a few open slots at the end so the text may grow (pads let it shrink)."""
    chunks = [ids[i : i + canvas_len] for i in range(0, len(ids), canvas_len)] or [[]]
    slack = max(2, min(canvas_len, len(chunks[-1]) // 4 + 2))
    out = []
    for chunk in chunks:
        t = torch.tensor(chunk, dtype=torch.long)  # (n,)
        hide = torch.rand(len(chunk), generator=generator) < remask  # (n,)
        t[hide] = mask_id
        out.append(tuple(t.tolist()))
    out[-1] = out[-1] + (mask_id,) * slack
    return out


def canvas_target(tok, heal: str, middle: str) -> list[int]:
    """Tokens the canvas should hold for a known middle (training, oracle length, drafts).

    Normally the natural tokenization of heal+middle; if that would not begin
    with a token starting with the healed text, the heal is tokenized apart so
    the first-slot constraint used at inference still holds.
    """
    ids = tok.encode(heal + middle)
    if heal and ids and not tok.token_bytes(ids[0]).startswith(heal.encode()):
        ids = tok.encode(heal) + tok.encode(middle)
    return ids
