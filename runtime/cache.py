"""Context cache: keys/values of recent contexts, reused by longest common token prefix.

Context tokens are encoded causally, so the K/V of a token depends only on the
tokens before it: for a new context we can take the K/V of the longest common
prefix with any cached context and encode only the tail.  Memory is bounded by
bytes, evicting the least recently used entry.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from runtime.model import KV


@dataclass
class _Entry:
    ids: tuple[int, ...]
    kv: KV
    nbytes: int


@dataclass(frozen=True)
class CacheStats:
    lookups: int
    hits: int
    reused_tokens: int
    entries: int
    nbytes: int


def kv_nbytes(kv: KV) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


def crop(kv: KV, n: int) -> KV:
    """The first `n` positions of every layer's K/V (views, no copy)."""
    return [(k[:, :, :n], v[:, :, :n]) for k, v in kv]


def _common_prefix(a: tuple[int, ...], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class ContextCache:
    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next_key = 0
        self._bytes = 0
        self._lookups = self._hits = self._reused = 0

    def lookup(self, ids: list[int]) -> tuple[int, KV | None]:
        """Longest cached prefix of `ids`: (its length, its K/V cropped to it)."""
        self._lookups += 1
        best_key, best_n = None, 0
        for key, entry in self._entries.items():
            n = _common_prefix(entry.ids, ids)
            if n > best_n:
                best_key, best_n = key, n
        if best_key is None:
            return 0, None
        self._entries.move_to_end(best_key)
        self._hits += 1
        self._reused += best_n
        return best_n, crop(self._entries[best_key].kv, best_n)

    def store(self, ids: list[int], kv: KV) -> None:
        """Remember `kv` for `ids`; drops entries it makes redundant, then evicts by LRU."""
        t = tuple(ids)
        for key in [k for k, e in self._entries.items() if t[: len(e.ids)] == e.ids]:
            self._drop(key)  # a strict prefix of the new context: fully covered by it
        nbytes = kv_nbytes(kv)
        if nbytes > self.max_bytes:
            return
        self._entries[self._next_key] = _Entry(t, kv, nbytes)
        self._next_key += 1
        self._bytes += nbytes
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def stats(self) -> CacheStats:
        return CacheStats(self._lookups, self._hits, self._reused, len(self._entries), self._bytes)

    def _drop(self, key: int) -> None:
        self._bytes -= self._entries.pop(key).nbytes
