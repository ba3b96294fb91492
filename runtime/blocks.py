"""The canvas chain, shared by the embedded and masked backends: spec -> denoise -> append -> stop.

Block-autoregressive decoding, as DiffusionGemma does: a canvas that fills up with
text (no early end) becomes context, and the plan's next canvas continues, until
the text ends, the deadline is hit, a single line is complete or `max_tokens`
tokens are made.  A drafted plan runs each of its draft canvases once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from runtime.canvas import CanvasPlan, CanvasSpec
from runtime.policies import Policy
from runtime.sampler import CanvasOutcome, Forward, denoise
from runtime.types import InfillRequest, InfillStats


class ChainContext(Protocol):
    """What the chain needs of a backend's context: a forward for a canvas, and growth."""

    def forward(self, spec: CanvasSpec) -> Forward: ...

    def append(self, body: list[int]) -> None:
        """The finished canvas's text tokens become context for the next canvas."""
        ...


@dataclass
class Tally:
    """Counts summed over the canvases of one request."""

    forwards: int = 0
    remasked: int = 0
    canvases: int = 0
    deadline_hit: bool = False

    def add(self, res: CanvasOutcome) -> None:
        self.canvases += 1
        self.forwards += res.forwards
        self.remasked += res.remasked
        self.deadline_hit |= res.deadline_hit

    def merge(self, other: Tally) -> None:
        """Another chain's counts, for a request that ran several (`runtime.lengths`)."""
        self.forwards += other.forwards
        self.remasked += other.remasked
        self.canvases += other.canvases
        self.deadline_hit |= other.deadline_hit

    def stats(
        self,
        *,
        tokens: int,
        context_tokens: int,
        started: float,
        cached_tokens: int = 0,
        snippets: tuple[tuple[str, int], ...] = (),
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
            snippets=snippets,
        )


def run_chain(
    plan: CanvasPlan,
    context: ChainContext,
    policy: Policy,
    req: InfillRequest,
    *,
    decode: Callable[[list[int]], str],
    started: float,
    should_cancel: Callable[[], bool] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[list[int], Tally]:
    """The text tokens of the whole chain (at most `plan.max_tokens`) and their counts.

    `decode` turns the tokens so far into text, for the single-line stop test."""
    out: list[int] = []
    tally = Tally()
    while len(out) < plan.max_tokens:
        spec = plan.spec(tally.canvases, len(out))
        if spec is None:
            break
        res = denoise(
            context.forward(spec),
            spec,
            policy,
            temperature=req.temperature,
            generator=generator if req.temperature > 0 else None,
            should_cancel=should_cancel,
            deadline_ms=req.deadline_ms,
            started=started,
        )
        tally.add(res)
        body = plan.body(res.tokens)
        out.extend(body)
        if plan.drafted:
            if tally.canvases >= plan.drafted:
                break
        elif len(body) < spec.length or res.deadline_hit or (req.single_line and "\n" in decode(out)):
            break
        context.append(body)
    return out[: plan.max_tokens], tally
