"""Unmasking/remasking policies: given one step's model beliefs, which slots to commit.

Every policy is a small object with `decide(view) -> Decision`; the loop that
calls it (`runtime.sampler.denoise`) is written once and calls `Policy.next`,
which also guarantees progress.  Policies are looked up by name in `POLICIES`
from a `runtime.policy_spec.PolicySpec` (names and options are checked there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from runtime.policy_spec import OPTIONS, SCHEDULE_NAMES, parse_policy
from runtime.schedule import SCHEDULES, Schedule


@dataclass(frozen=True)
class StepView:
    step: int
    confidence: Tensor
    """(C,) probability of the proposed token at every slot."""
    entropy: Tensor
    """(C,) entropy (nats) of every slot's distribution."""
    proposal: Tensor
    """(C,) proposed token per slot (argmax, or a sample when temperature > 0)."""
    masked: Tensor
    """(C,) bool: slot still open."""
    current_confidence: Tensor
    """(C,) probability the model now gives to each committed slot's token."""
    committed_at: Tensor
    """(C,) step at which each slot was committed (-1 if open)."""
    remask_count: Tensor
    """(C,) how often each slot was re-masked so far."""
    previous_proposal: Tensor | None
    elapsed_ms: float
    step_ms: float
    """Estimated cost of one more step."""
    deadline_ms: float | None


@dataclass(frozen=True)
class Decision:
    commit: Tensor
    """(C,) bool: open slots to fill with their proposal."""
    remask: Tensor | None = None
    """(C,) bool: committed slots to open again (self-correction)."""
    finish: bool = False
    """Commit every open slot at its proposal and end the canvas."""
    deadline: bool = False
    """`finish` because one more step would overrun the deadline (reported in the stats)."""


class Policy:
    def decide(self, v: StepView) -> Decision:
        raise NotImplementedError

    def next(self, v: StepView) -> Decision:
        """`decide`, made to progress: when it commits no open slot, the most confident one."""
        d = self.decide(v)
        if d.finish or bool((d.commit & v.masked).any()):
            return d
        commit = torch.zeros_like(v.masked)
        commit[torch.where(v.masked, v.confidence, -1.0).argmax()] = True
        return Decision(commit=commit, remask=d.remask)


def _top(score: Tensor, masked: Tensor, k: int) -> Tensor:
    """Bool mask of the k open slots with the highest score; among equal scores the leftmost slots
    (`torch.topk` leaves ties to the implementation, which picked different slots on different CPUs)."""
    s = torch.where(masked, score, torch.full_like(score, -torch.inf))
    k = min(k, int(masked.sum()))
    out = torch.zeros_like(masked)
    out[torch.sort(s, descending=True, stable=True).indices[:k]] = True
    return out


@dataclass
class Sequential(Policy):
    """One slot per forward, most confident first: the autoregressive-speed baseline."""

    def decide(self, v: StepView) -> Decision:
        return Decision(commit=_top(v.confidence, v.masked, 1))


@dataclass
class LLaDA(Policy):
    """Fixed step count; commit the most confident slots, keep the rest masked
    (low-confidence remasking, as in LLaDA's generate.py)."""

    schedule: Schedule

    def decide(self, v: StepView) -> Decision:
        k = self.schedule.count(v.step, int(v.masked.sum()))
        return Decision(commit=_top(v.confidence, v.masked, k))


@dataclass
class Threshold(Policy):
    """Commit every slot with confidence >= tau, plus the single best (Fast-dLLM)."""

    tau: float = 0.9

    def decide(self, v: StepView) -> Decision:
        return Decision(commit=(v.masked & (v.confidence >= self.tau)) | _top(v.confidence, v.masked, 1))


def entropy_bounded(entropy: Tensor, masked: Tensor, gamma: float) -> Tensor:
    """Largest set of lowest-entropy open slots whose summed entropy minus its max <= gamma
    (EB-sampler).  Always at least one slot when any is open."""
    h = torch.where(masked, entropy, torch.full_like(entropy, torch.inf))
    order = torch.argsort(h, stable=True)  # ascending; ties: the leftmost first
    n_open = int(masked.sum())
    hs = h[order[:n_open]]
    within = (torch.cumsum(hs, 0) - hs) <= gamma  # sorted, so the max of the first k is the k-th
    k = max(1, int(within.sum()))
    out = torch.zeros_like(masked)
    out[order[:k]] = True
    return out


@dataclass
class Entropy(Policy):
    """EB-sampler (DiffusionGemma's acceptance rule, without renoising)."""

    gamma: float = 0.1

    def decide(self, v: StepView) -> Decision:
        return Decision(commit=entropy_bounded(v.entropy, v.masked, self.gamma))


@dataclass
class Adaptive(Policy):
    """Ours: entropy-bounded commits, bounded self-correction, early stop, deadline.

    * self-correction: a slot committed at an earlier step whose token the model
      now believes with probability < `remask_floor` is opened again, at most
      `max_remask_per_slot` times per slot, so the loop always terminates;
    * early stop: when the proposal for every open slot is the same as at the
      previous step and their mean entropy is below `stable_entropy`, commit all;
    * deadline: when one more step would overrun `deadline_ms`, commit all now
      (anytime decoding).
    """

    gamma: float = 0.25
    remask_floor: float = 0.05
    max_remask_per_slot: int = 1
    stable_entropy: float = 0.3

    def decide(self, v: StepView) -> Decision:
        if v.deadline_ms is not None and v.elapsed_ms + v.step_ms >= v.deadline_ms:
            return Decision(commit=v.masked.clone(), finish=True, deadline=True)
        remask = (
            ~v.masked
            & (v.committed_at < v.step)
            & (v.current_confidence < self.remask_floor)
            & (v.remask_count < self.max_remask_per_slot)
        )
        if v.previous_proposal is not None and v.masked.any() and not remask.any():
            same = bool((v.proposal[v.masked] == v.previous_proposal[v.masked]).all())
            if same and float(v.entropy[v.masked].mean()) < self.stable_entropy:
                return Decision(commit=v.masked.clone(), finish=True)
        return Decision(commit=entropy_bounded(v.entropy, v.masked, self.gamma), remask=remask)


PolicyFactory = Callable[..., Policy]

POLICIES: dict[str, PolicyFactory] = {
    "sequential": lambda canvas_len: Sequential(),
    "llada": lambda canvas_len, steps=None, schedule="linear": LLaDA(
        SCHEDULES[schedule](int(steps or max(1, canvas_len // 4)))
    ),
    "threshold": lambda canvas_len, tau=0.9: Threshold(tau=tau),
    "entropy": lambda canvas_len, gamma=0.1: Entropy(gamma=gamma),
    "adaptive": lambda canvas_len, **kw: Adaptive(**kw),
}
assert set(POLICIES) == set(OPTIONS), "runtime.policy_spec.OPTIONS names every policy"
assert set(SCHEDULES) == set(SCHEDULE_NAMES), "runtime.policy_spec.SCHEDULE_NAMES names every schedule"


def make_policy(
    spec: str, canvas_len: int, defaults: Mapping[str, Mapping[str, object]] | None = None, **options: object
) -> Policy:
    """The policy named by `spec` ('name' or 'name:key=value,...', checked by `parse_policy`).
    `defaults`: a model's option values per policy name (`runtime.decoding`), below the spec's;
    keyword `options` (tests, benchmarks) override both."""
    parsed = parse_policy(spec)
    model = (defaults or {}).get(parsed.name, {})
    return POLICIES[parsed.name](canvas_len, **{**model, **parsed.as_dict(), **options})
