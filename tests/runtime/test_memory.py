"""Issue 14 item 8: a model reload must not keep the old model.  The per-model memos were
`functools.lru_cache`s on methods, one cache per class keyed on `self`, so every backend and
tokenizer that ever answered stayed alive (24 MB a reload with the shipped model; the RSS table is
benchmarks/reload.py's, too noisy for a unit test with the tiny model).  These tests check the
mechanism: once the last reference goes, the backend, its model and its tokenizer are collected."""

from __future__ import annotations

import gc
import threading
import weakref

from runtime.memo import Memo
from runtime.types import InfillRequest


def test_a_used_backend_is_collected_once_dropped():
    from runtime.load import load_backend

    backend = load_backend("tiny", threads=1)
    # a blank line (the content rule memo), a half-typed word (the healing memo), drafts
    backend.infill(InfillRequest("def f(x):\n    ", "\n", max_tokens=4))
    backend.infill(InfillRequest("def f(x):\n    ret", "\n", max_tokens=4, single_line=True))
    refs = [weakref.ref(o) for o in (backend, backend.model, backend.tok)]
    del backend
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_memo_is_bounded_and_lru():
    memo: Memo[int, int] = Memo(2)
    assert memo.get(3) is None
    memo.put(3, 9)
    memo.put(4, 16)
    assert memo.get(3) == 9  # 3 is now the most recent
    memo.put(5, 25)  # evicts 4
    assert (memo.get(4), memo.get(3), memo.get(5), len(memo)) == (None, 9, 25, 2)


def test_the_memos_are_per_tokenizer():
    from runtime.tokenizer import Tokenizer

    a, b = Tokenizer.byte_level(), Tokenizer.byte_level()
    assert a.ids_starting_with(b"a") == b.ids_starting_with(b"a")
    assert len(a._starting) == len(b._starting) == 1
    ref = weakref.ref(a)
    del a
    assert ref() is None  # reference counting alone frees it: no cycle through its memos


def test_release_waits_for_the_request_in_flight_then_closes():
    from runtime.load import load_backend

    backend = load_backend("tiny", threads=1)
    backend.infill(InfillRequest("x = ", "\n", max_tokens=2))
    assert backend.cache_stats().entries > 0
    running, go = threading.Event(), threading.Event()

    def slow_cancel() -> bool:  # holds the request (and the backend's lock) until told to go on
        running.set()
        go.wait(10)
        return False

    worker = threading.Thread(target=backend.infill, args=(InfillRequest("y = ", "\n", max_tokens=2),
                                                          slow_cancel))
    worker.start()
    assert running.wait(10)
    released = threading.Thread(target=backend.release)
    released.start()
    released.join(0.2)
    assert released.is_alive()  # waits for the request
    go.set()
    worker.join(10)
    released.join(10)
    assert not released.is_alive() and backend.cache_stats().entries == 0
