"""The worker: the server's event loop hands infill requests to one thread that runs the backend.

One worker thread runs `backend.infill`, one request at a time, so model work
never blocks the event loop.  Each request carries a cancel flag
(`threading.Event`) that the runtime checks between denoising steps: an
awaiting handler that is cancelled (`$/cancelRequest`) or superseded (a newer
request with the same key, cancel-previous) stops the model within one step.
The queue is bounded: when it is full the oldest waiting request is dropped.
`ServiceStats` keeps what `dg.stats` reports about requests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runtime.measure import percentile
from runtime.types import CacheStats, Cancelled, InfillRequest, InfillResult, InfillStats

if TYPE_CHECKING:
    from runtime.backends.base import Backend

log = logging.getLogger(__name__)


@dataclass
class ServiceStats:
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    """End to end (submitted -> result) of requests that finished with a result."""
    completed: int = 0
    cancelled: int = 0
    """Cancelled while queued or running (cancel-previous, $/cancelRequest, dropped)."""
    dropped: int = 0
    """Dropped from a full queue."""
    errors: int = 0
    forwards: int = 0
    tokens: int = 0
    cancel_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    """Cancel flag set -> model work stopped, for requests cancelled while running."""
    steps_after_cancel: int = 0
    """Most denoising steps any running request made after its cancel flag was set."""
    snippet_requests: int = 0
    """Completed requests whose context held context snippets."""
    snippet_tokens: int = 0
    last_snippets: tuple[tuple[str, int], ...] = ()
    """(path, tokens) of the snippets in the last completed request's context."""

    def count(self, stats: InfillStats) -> None:
        """Add a completed request's model work."""
        self.forwards += stats.forwards
        self.tokens += stats.tokens
        self.snippet_requests += bool(stats.snippets)
        self.snippet_tokens += stats.snippet_tokens
        self.last_snippets = stats.snippets

    def as_dict(self, cache_stats: CacheStats | None = None, pending: int = 0) -> dict[str, object]:
        lat = list(self.latencies_ms)
        out: dict[str, object] = {
            "requests": self.completed + self.cancelled + self.errors,
            "completed": self.completed,
            "cancelled": self.cancelled,
            "dropped": self.dropped,
            "errors": self.errors,
            "pending": pending,
            "latencyP50Ms": round(percentile(lat, 50), 2),
            "latencyP95Ms": round(percentile(lat, 95), 2),
            "latencyP99Ms": round(percentile(lat, 99), 2),
            "forwards": self.forwards,
            "tokens": self.tokens,
            "forwardsPerToken": round(self.forwards / self.tokens, 3) if self.tokens else 0.0,
            "maxCancelLatencyMs": round(max(self.cancel_latency_ms, default=0.0), 2),
            "maxStepsAfterCancel": self.steps_after_cancel,
            "snippetRequests": self.snippet_requests,
            "snippetTokens": self.snippet_tokens,
            "lastSnippets": [{"path": p, "tokens": n} for p, n in self.last_snippets],
        }
        if cache_stats is not None:
            s = cache_stats
            out.update(
                contextCacheLookups=s.lookups,
                contextCacheHits=s.hits,
                contextCacheHitRate=round(s.hits / s.lookups, 3) if s.lookups else 0.0,
                contextCacheReusedTokens=s.reused_tokens,
                contextCacheBytes=s.nbytes,
            )
        return out


@dataclass(eq=False)
class _Job:
    request: InfillRequest
    key: str | None
    future: concurrent.futures.Future[InfillResult | None]
    cancel: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.perf_counter)
    steps: int = 0
    steps_at_cancel: int = 0
    cancelled_at: float = 0.0

    def should_cancel(self) -> bool:
        # called by the runtime before each denoising step, on the worker thread
        if self.cancel.is_set():
            return True
        self.steps += 1
        return False


class InfillService:
    """Runs infill requests on one worker thread, with cancel flags and a bounded queue."""

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        max_pending: int = 8,
        on_busy: Callable[[bool], None] | None = None,
    ) -> None:
        self.backend = backend
        self.max_pending = max_pending
        self.on_busy = on_busy
        self.stats = ServiceStats()
        self._queue: deque[_Job] = deque()
        self._latest: dict[str, _Job] = {}
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="dg-infill", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        with self._cv:
            return sum(1 for j in self._queue if not j.cancel.is_set())

    async def infill(self, request: InfillRequest, key: str | None = None) -> InfillResult | None:
        """The result, or None when there is no backend or the request was cancelled or dropped.

        A request with a `key` cancels the previous one with the same key.
        Cancelling the awaiting task sets the cancel flag and re-raises.
        """
        if self.backend is None or self._closed:
            return None
        job = _Job(request, key, concurrent.futures.Future())
        with self._cv:
            if key is not None:
                if (old := self._latest.get(key)) is not None:
                    self._cancel(old)
                self._latest[key] = job
            waiting = [j for j in self._queue if not j.cancel.is_set()]
            if len(waiting) >= self.max_pending:
                self.stats.dropped += 1
                self._cancel(waiting[0])
            self._queue.append(job)
            self._cv.notify()
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            self._cancel(job)
            raise

    def close(self) -> None:
        with self._cv:
            self._closed = True
            for job in self._queue:
                self._cancel(job)
            self._cv.notify()

    def _cancel(self, job: _Job) -> None:
        if not job.cancel.is_set():
            job.steps_at_cancel = job.steps
            job.cancelled_at = time.perf_counter()
            job.cancel.set()

    def _work(self) -> None:
        busy = False
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    if busy and self.on_busy is not None:
                        busy = False
                        self._notify_busy(False)
                    self._cv.wait()
                if self._closed and not self._queue:
                    return
                job = self._queue.popleft()
            if not job.future.set_running_or_notify_cancel() or job.cancel.is_set():
                self._finish(job, None, cancelled=True, ran=False)
                continue
            if not busy:
                busy = True
                self._notify_busy(True)
            self._run(job)

    def _notify_busy(self, busy: bool) -> None:
        if self.on_busy is not None:
            try:
                self.on_busy(busy)
            except Exception:  # a notification must never kill the worker
                log.exception("busy callback failed")

    def _run(self, job: _Job) -> None:
        backend = self.backend
        if backend is None:
            self._finish(job, None, cancelled=True, ran=False)
            return
        try:
            result = backend.infill(job.request, job.should_cancel)
        except Cancelled:
            self._finish(job, None, cancelled=True, ran=True)
        except Exception as e:  # reported to the awaiting handler, never kills the worker
            self.stats.errors += 1
            self._release(job)
            job.future.set_exception(e)
        else:
            self._finish(job, result, cancelled=False, ran=True)

    def _finish(self, job: _Job, result: InfillResult | None, *, cancelled: bool, ran: bool) -> None:
        now = time.perf_counter()
        if cancelled:
            self.stats.cancelled += 1
            if ran:
                self.stats.cancel_latency_ms.append((now - job.cancelled_at) * 1000)
                self.stats.steps_after_cancel = max(
                    self.stats.steps_after_cancel, job.steps - job.steps_at_cancel
                )
        elif result is not None:
            self.stats.completed += 1
            self.stats.latencies_ms.append((now - job.submitted) * 1000)
            self.stats.count(result.stats)
        self._release(job)
        if not job.future.done():
            job.future.set_result(result)

    def _release(self, job: _Job) -> None:
        with self._cv:
            if job.key is not None and self._latest.get(job.key) is job:
                del self._latest[job.key]
