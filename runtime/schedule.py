"""Step schedules: how many canvas slots a fixed-step policy commits at a step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class Schedule(Protocol):
    steps: int

    def count(self, step: int, remaining: int) -> int:
        """Slots to commit at `step` (0-based) when `remaining` are still masked."""
        ...


@dataclass(frozen=True)
class LinearSchedule:
    """LLaDA's: spread the remaining slots evenly over the remaining steps."""

    steps: int

    def count(self, step: int, remaining: int) -> int:
        left = max(1, self.steps - step)
        return max(1, math.ceil(remaining / left))


@dataclass(frozen=True)
class CosineSchedule:
    """MaskGIT's: few commits early (when the model knows least), more later."""

    steps: int

    def count(self, step: int, remaining: int) -> int:
        left = self.steps - step
        if left <= 1:
            return max(1, remaining)
        # fraction that should still be masked after this step
        keep = math.cos(math.pi / 2 * (step + 1) / self.steps) / math.cos(math.pi / 2 * step / self.steps)
        return max(1, remaining - math.floor(remaining * keep))


SCHEDULES = {"linear": LinearSchedule, "cosine": CosineSchedule}
