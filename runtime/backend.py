"""The one interface every model backend implements (embedded, diffusiongemma, masked, remote).

The language server and the CLI only talk to this protocol; what crosses it
are the plain dataclasses of `runtime.types`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from runtime.cache import CacheStats
from runtime.types import InfillRequest, InfillResult


@runtime_checkable
class InfillBackend(Protocol):
    name: str
    """Backend kind: "embedded", "diffusiongemma", "masked" or "remote"."""
    description: str
    """Human-readable model description for status messages."""

    def infill(self, req: InfillRequest, should_cancel: Callable[[], bool] | None = None) -> InfillResult:
        """Blocking; raises `Cancelled` within one denoising step of `should_cancel()` turning true."""
        ...

    def cache_stats(self) -> CacheStats | None:
        """Context-cache counters, or None for a backend without one."""
        ...

    def close(self) -> None:
        """Release the model (and any connection)."""
        ...
