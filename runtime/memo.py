"""`Memo`: a bounded LRU map that an object keeps for its own memoised results (no torch import).

`functools.lru_cache` on a method keeps one cache for the whole class, keyed on `self`: every object
that was ever called stays alive until its entries are evicted.  A model reload builds a new backend
and tokenizer, so the old ones (the model's weights, its context cache) stayed in memory, 24 MB a
reload with the shipped model (benchmarks/reload.py).  A `Memo` is an attribute of its object and
goes with it.  It never calls back into its owner, so a request's path stays one-way.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """At most `maxsize` entries; the least recently used goes first."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
