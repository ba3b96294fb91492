"""The denoising loop, written once: it does the bookkeeping, the policy and the canvas rules decide.

    forward -> beliefs (constraints, rules' constrain/propose) -> policy.next -> apply
    (commit, self-correction re-masks, rules' widen/settle) -> ... until no slot is open

The beliefs step is dispatched (`runtime.ops`): on a GPU with kernels on, one fused Triton kernel
reads the logits where the model left them; otherwise they come to the CPU and `beliefs` runs.

The policy (`runtime.policies`) chooses which open slots to commit and which committed
ones to re-open; the canvas's rules (`runtime.rules`, listed by its `CanvasSpec`) decide
everything about the text itself (where it ends, what a slot may hold).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from runtime import ops
from runtime.canvas import CanvasSpec
from runtime.policies import Decision, Policy, StepView
from runtime.types import Cancelled

Forward = Callable[[Tensor], Tensor]
"""(C,) canvas ids -> (C, V) logits."""


@dataclass(frozen=True)
class CanvasOutcome:
    tokens: list[int]
    forwards: int
    remasked: int
    deadline_hit: bool


@dataclass
class CanvasState:
    """One canvas while it is denoised."""

    tokens: Tensor  # (C,) long
    masked: Tensor  # (C,) bool: slot still open
    committed_at: Tensor  # (C,) long: step of the commit, -1 open, -2 starting text
    remask_count: Tensor  # (C,) long
    mask_id: int
    step: int = 0
    forwards: int = 0
    remasked: int = 0
    deadline_hit: bool = False
    previous: Tensor | None = None
    """(C,) the proposals of the previous step."""
    counters: dict[str, int] = field(default_factory=dict)
    """Per-canvas counts a rule keeps (`runtime.rules.SpanEdits`: expansions so far)."""

    @classmethod
    def start(cls, spec: CanvasSpec) -> CanvasState:
        tokens = torch.tensor(spec.initial, dtype=torch.long)  # (C,)
        masked = tokens == spec.mask_id
        committed_at = torch.where(masked, -1, -2)  # starting text counts as committed before step 0
        return cls(tokens, masked, committed_at, torch.zeros(len(tokens), dtype=torch.long), spec.mask_id)

    def reopen_slot(self, slot: int) -> None:
        self.tokens[slot] = self.mask_id
        self.masked[slot] = True
        self.committed_at[slot] = -1

    def move(self, order: Tensor) -> None:
        """Rearrange every per-slot record: slot i takes what slot `order[i]` held (a rule that
        inserts or drops slots in a span, `runtime.rules.SpanEdits`)."""
        for t in (self.tokens, self.masked, self.committed_at, self.remask_count):
            t.copy_(t[order])
        if self.previous is not None:
            self.previous = self.previous[order]

    def outcome(self) -> CanvasOutcome:
        return CanvasOutcome(self.tokens.tolist(), self.forwards, self.remasked, self.deadline_hit)


@dataclass
class StepClock:
    """Elapsed time of the request and a running estimate of one step's cost."""

    started: float
    step_ms: float = 0.0
    _t0: float = 0.0

    def begin(self) -> None:
        self._t0 = time.perf_counter()

    def lap(self, step: int) -> float:
        """After the beliefs: update the step estimate; returns ms since the request started."""
        now = time.perf_counter()
        this_ms = (now - self._t0) * 1000
        self.step_ms = this_ms if step == 0 else 0.7 * self.step_ms + 0.3 * this_ms
        return (now - self.started) * 1000


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
    """Denoise one canvas until no slot is open; checks `should_cancel` before every forward."""
    state = CanvasState.start(spec)
    clock = StepClock(time.perf_counter() if started is None else started)
    step_beliefs = StepBeliefs(spec)
    while state.masked.any():
        if should_cancel is not None and should_cancel():
            raise Cancelled("cancelled between denoising steps")
        clock.begin()
        logits = forward(state.tokens)  # (C, V), on the model's device
        state.forwards += 1
        view = step_beliefs(logits, state, temperature, generator)
        elapsed = clock.lap(state.step)
        view = StepView(**view, elapsed_ms=elapsed, step_ms=clock.step_ms, deadline_ms=deadline_ms)
        apply(policy.next(view), view, spec, state)
    return state.outcome()


class StepBeliefs:
    """One canvas's beliefs step, dispatched once per step (`runtime.ops.kernel_path`): the fused
    Triton kernel where the logits are on CUDA and kernels are on, else `beliefs` on the CPU."""

    def __init__(self, spec: CanvasSpec) -> None:
        self.spec = spec
        self.bias: Tensor | None = None  # (C, V) the reference's additive constraints
        self.fused: ops.KernelBeliefs | None = None  # the kernel path's constraint table

    def __call__(
        self, logits: Tensor, state: CanvasState, temperature: float, generator: torch.Generator | None
    ) -> dict:
        if ops.kernel_path(logits):
            if self.fused is None or not self.fused.fits(logits):
                self.fused = ops.KernelBeliefs.for_canvas(self.spec, logits)
            if self.fused is not None:
                proposal, confidence, entropy, current = self.fused(logits, state, temperature, generator)
                return _view(state, proposal, confidence, entropy, current)
        logits = logits.cpu().float()  # (C, V)
        if self.bias is None or self.bias.shape[-1] != logits.shape[-1]:
            self.bias = self.spec.bias(logits.shape[-1])  # (C, V)
        return beliefs(logits + self.bias, self.spec, state, temperature, generator)


def beliefs(
    logits: Tensor,
    spec: CanvasSpec,
    state: CanvasState,
    temperature: float,
    generator: torch.Generator | None,
) -> dict:
    """One step's beliefs about every slot, from constrained (C, V) logits (changed in place)."""
    for rule in spec.rules:
        rule.constrain(logits, state)
    if temperature > 0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)  # (C, V)
    probs = logp.exp()  # (C, V)
    if temperature > 0:
        proposal = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (C,)
    else:
        proposal = probs.argmax(-1)  # (C,)
        for rule in spec.rules:
            proposal = rule.propose(probs, proposal)
    current = state.tokens.clamp_max(probs.shape[-1] - 1)[:, None]  # (C, 1)
    return _view(
        state,
        proposal,
        probs.gather(-1, proposal[:, None]).squeeze(-1),  # (C,)
        -(probs * logp.clamp_min(-1e9)).sum(-1),  # (C,)
        probs.gather(-1, current).squeeze(-1),  # (C,)
    )


def _view(state: CanvasState, proposal: Tensor, confidence: Tensor, entropy: Tensor, current: Tensor) -> dict:
    """The `StepView` fields of one step's beliefs, each (C,)."""
    return dict(
        step=state.step,
        confidence=confidence,
        entropy=entropy,
        proposal=proposal,
        masked=state.masked,
        current_confidence=current,
        committed_at=state.committed_at,
        remask_count=state.remask_count,
        previous_proposal=state.previous,
    )


def apply(decision: Decision, view: StepView, spec: CanvasSpec, state: CanvasState) -> None:
    """Commit what the policy chose, re-open what it doubts, then let the rules widen and settle."""
    masked, tokens = state.masked, state.tokens
    commit = decision.commit & masked
    if decision.finish:
        commit = masked.clone()
        state.deadline_hit = decision.deadline
    elif decision.remask is not None:
        reopen = decision.remask & ~masked & ~commit & (tokens != spec.pad_id)
        if reopen.any():
            tokens[reopen] = spec.mask_id
            masked |= reopen
            state.committed_at[reopen] = -1
            state.remask_count += reopen.long()
            state.remasked += int(reopen.sum())
    for rule in spec.rules:
        commit = rule.widen(commit, state, view.proposal, view.confidence)
    tokens[commit] = view.proposal[commit]
    masked &= ~commit
    state.committed_at[commit] = state.step
    state.previous = view.proposal  # before the rules settle: a rule that moves slots moves it too
    for rule in spec.rules:
        rule.settle(state)
    state.step += 1
