"""`SpanEdits` (DreamOn's expand/delete) on a canvas state, without a model."""

from __future__ import annotations

import torch

from runtime.canvas import span_plan
from runtime.sampler import CanvasState

M, E, D = 90, 91, 92  # mask, expand, delete
A, B, C = 10, 11, 12


def state_of(tokens: list[int], room: int) -> tuple[CanvasState, object]:
    plan = span_plan(len(tokens), len(tokens) + room, mask_id=M, expand_id=E, delete_id=D,
                     banned_ids=(), end_ids=frozenset())  # fmt: skip
    spec = plan.spec(0, 0)
    state = CanvasState.start(spec)
    state.tokens[: len(tokens)] = torch.tensor(tokens)
    state.masked[:] = state.tokens == M
    state.committed_at[~state.masked] = 0
    state.committed_at[state.tokens == D] = -2
    return state, spec.rules[0]


def test_expands_grow_into_the_room_left_to_right():
    state, rule = state_of([A, E, M, E, B], room=1)  # room for one expansion only
    state.previous = torch.arange(6)
    rule.settle(state)
    assert state.tokens.tolist() == [A, M, M, M, M, B]  # the first grew, the second reopened
    assert state.masked.tolist() == [False, True, True, True, True, False]
    assert state.previous.tolist() == [0, 1, 1, 2, 3, 4]  # the records moved with their slots
    assert state.counters["expand"] == 1


def test_delete_closes_open_slots_after_it_and_keeps_committed_text():
    state, rule = state_of([A, D, M, B, M], room=2)
    rule.settle(state)
    assert state.tokens.tolist() == [A, B, D, D, D, D, D]
    assert not state.masked.any() and state.committed_at[2:].tolist() == [-2] * 5


def test_expansion_is_forbidden_without_room_or_budget():
    state, rule = state_of([A, M], room=0)
    logits = torch.zeros(2, 100)
    rule.constrain(logits, state)
    assert logits[:, E].eq(-torch.inf).all()
    state, rule = state_of([A, M], room=2)
    logits = torch.zeros(4, 100)
    rule.constrain(logits, state)
    assert logits[:, E].eq(0).all()
    state.counters["expand"] = rule.budget
    rule.constrain(logits, state)
    assert logits[:, E].eq(-torch.inf).all()
