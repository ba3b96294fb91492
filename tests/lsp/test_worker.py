"""Unit tests of dg_lsp.worker and dg_lsp.typing_cache: the worker thread, cancel flags,
bounded queue, typing cache.

They run the real random-weight "tiny" embedded backend (no mocks).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from dg_lsp.typing_cache import TypingCache
from dg_lsp.worker import InfillService
from runtime.load import load_embedded
from runtime.measure import percentile
from runtime.types import InfillRequest


@pytest.fixture(scope="module")
def engine():
    return load_embedded("tiny", threads=1)


def long_request(n: int = 4096) -> InfillRequest:
    return InfillRequest(prefix="def f():\n    ", suffix="\n", max_tokens=n)


async def test_result_and_stats(engine):
    service = InfillService(engine)
    result = await service.infill(InfillRequest(prefix="x = ", suffix="\n", max_tokens=8))
    assert result is not None and result.stats.forwards > 0
    assert service.stats.completed == 1 and service.stats.forwards == result.stats.forwards
    service.close()


async def test_no_engine_gives_none():
    assert await InfillService(None).infill(InfillRequest(prefix="", suffix="")) is None


async def test_cancel_previous_stops_the_running_request_within_a_step(engine):
    started = threading.Event()
    service = InfillService(engine, on_busy=lambda busy: busy and started.set())
    first = asyncio.ensure_future(service.infill(long_request(), key="doc"))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
    second = await service.infill(InfillRequest(prefix="y = ", suffix="\n", max_tokens=4), key="doc")
    assert await first is None and second is not None
    assert service.stats.cancelled == 1 and service.stats.steps_after_cancel <= 1
    assert max(service.stats.cancel_latency_ms) < 250
    service.close()


async def test_cancelling_the_awaiting_task_sets_the_flag(engine):
    started = threading.Event()
    service = InfillService(engine, on_busy=lambda busy: busy and started.set())
    task = asyncio.ensure_future(service.infill(long_request()))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    follow = await service.infill(InfillRequest(prefix="z", suffix="", max_tokens=2))
    assert follow is not None  # the worker is free again, so the long one stopped
    assert service.stats.cancelled == 1 and service.stats.steps_after_cancel <= 1
    service.close()


async def test_queue_is_bounded(engine):
    service = InfillService(engine, max_pending=4)
    results = await asyncio.gather(*[service.infill(long_request(64)) for _ in range(20)])
    assert service.stats.dropped >= 15
    assert sum(r is not None for r in results) <= 6
    assert service.pending == 0
    service.close()


def test_typing_cache():
    cache = TypingCache()
    text = "x = \nrest"
    cache.remember("u", text, 4, ["compute(1)", "count"])
    typed = "x = co\nrest"
    assert cache.lookup("u", typed, 6) == ["mpute(1)", "unt"]
    assert cache.lookup("u", "x = cz\nrest", 6) is None  # disagrees with the suggestion
    assert cache.lookup("u", "x = co\nREST", 6) is None  # text after the cursor changed
    assert cache.lookup("u", "y = co\nrest", 6) is None  # text before changed
    assert cache.lookup("u", "x = count\nrest", 9) is None  # fully typed
    assert cache.lookup("other", typed, 6) is None
    assert cache.stats() == {"typingLookups": 6, "typingHits": 1}


def test_percentile():
    assert percentile([], 50) == 0.0
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile(list(range(1, 101)), 95) == 95
