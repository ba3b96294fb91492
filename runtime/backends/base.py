"""The one interface every model backend implements (embedded, diffusiongemma, masked, remote).

The language server and the CLI only talk to `Backend`; what crosses it are the
plain dataclasses of `runtime.types`.  A request is already checked when it is
made (`InfillRequest.__post_init__`); `infill` adds what depends on the backend
(whether it has a rewrite mode) and serialises callers from several threads.
This module imports no torch.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

from runtime.types import BadRequest, CacheStats, InfillRequest, InfillResult


class Backend(ABC):
    name: str = "backend"
    """Backend kind: "embedded", "diffusiongemma", "masked" or "remote"."""
    description: str = ""
    """Human-readable model description for status messages."""
    rewrites: bool = False
    """Has a rewrite mode (`InfillRequest.draft`)."""
    canvas_len: int = 32
    """Canvas size the backend denoises (the server sizes selection canvases from it)."""
    snippet_tokens: int = 0
    """Context-snippet tokens the model was trained to read (0: it reads none, so the server
    does not retrieve them; `InfillRequest.snippets`)."""
    sizes_canvas: bool = True
    """Honours `InfillRequest.canvas_tokens` and `exact_length`; a backend that cannot says so
    here and such a request is refused instead of silently answered another way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def infill(self, req: InfillRequest, should_cancel: Callable[[], bool] | None = None) -> InfillResult:
        """Blocking; raises `Cancelled` within one denoising step of `should_cancel()` turning true."""
        if req.draft is not None and not self.rewrites:
            raise BadRequest(f"the {self.name} backend has no rewrite mode (draft)")
        if not self.sizes_canvas and (req.canvas_tokens is not None or req.exact_length):
            what = "canvas_tokens" if req.canvas_tokens is not None else "exact_length"
            raise BadRequest(
                f"the {self.name} backend cannot honour {what}: the model's canvas size is fixed "
                "and the length of its answer cannot be forced"
            )
        with self._lock:  # one request at a time: the model and its caches are not shared
            return self.run(req, should_cancel)

    @abstractmethod
    def run(self, req: InfillRequest, should_cancel: Callable[[], bool] | None) -> InfillResult:
        """The backend's work for one checked request, under its lock."""

    def cache_stats(self) -> CacheStats | None:
        """Context-cache counters, or None for a backend without one."""
        return None

    def release(self) -> None:
        """`close`, once the request in flight (if any) has finished: the backend is being replaced."""
        with self._lock:
            self.close()

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the model (and any connection)."""
