"""Context cache: keys/values of recent contexts, reused by longest common token prefix.

Context tokens are encoded causally, so the K/V of a token depends only on the
tokens before it: for a new context we can take the K/V of the longest common
prefix with any cached context and encode only the tail.  Memory is bounded by
bytes, evicting the least recently used entry.

`ContextCache.encode` gives a request its `EncodedContext`: the context's K/V
(reused where it can), the forward of a canvas over it, and its growth when a
finished canvas becomes context (`runtime.blocks`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch

from runtime.model import KV, CanvasKV, InfillTransformer, SharedKV
from runtime.types import CacheStats, Cancelled

DEFAULT_CACHE_BYTES = 16 * 2**20
"""The context cache's default cap.  Typing 600 characters of real code through the shipped model
(a request per keystroke, `benchmarks/cache_hits.py`), 88.6 % of the hits were on the most recent
context, 97.5 % on the last two and 98.8 % on the last ten; an entry (320 tokens, bfloat16) is
~1.45 MB, so 16 MiB (about eleven entries) keeps nearly every hit, where 256 MiB let the cache hold
84 MB in that replay."""

ENCODE_CHUNK = 64
"""Context tokens are encoded in chunks that start at multiples of this (the cancel flag is
checked between them), and a cached prefix is reused only up to such a multiple: so every chunk
is computed from the same inputs whatever the cache held, and greedy decoding gives the same
answer for the same document and position, cold or warm (reused K/V otherwise differ by a
rounding, enough to flip a near tie).  Typing re-encodes at most this many tokens per keystroke."""


@dataclass
class _Entry:
    ids: tuple[int, ...]
    kv: KV
    nbytes: int


def kv_nbytes(kv: KV) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


def crop(kv: KV, n: int) -> KV:
    """The first `n` positions of every layer's K/V (views, no copy)."""
    return [(k[:, :, :n], v[:, :, :n]) for k, v in kv]


def common_prefix(a: tuple[int, ...] | list[int], b: list[int]) -> int:
    """Length of the common prefix of two id sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class ContextCache:
    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next_key = 0
        self._bytes = 0
        self._lookups = self._hits = self._reused = 0

    def lookup(self, ids: list[int], *, aligned: int = 1) -> tuple[int, KV | None]:
        """Longest cached prefix of `ids`: (its length, its K/V cropped to it).  With `aligned`, a
        prefix is cut to a multiple of `aligned` unless it is exactly a cached context."""
        self._lookups += 1
        best_key, best_n = None, 0
        for key, entry in self._entries.items():
            n = common_prefix(entry.ids, ids)
            if n > best_n:
                best_key, best_n = key, n
        if best_key is not None and not best_n == len(ids) == len(self._entries[best_key].ids):
            best_n -= best_n % aligned
        if best_key is None or best_n == 0:
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

    def encode(
        self,
        model: InfillTransformer,
        ids: list[int],
        device: torch.device,
        should_cancel: Callable[[], bool] | None = None,
    ) -> EncodedContext:
        """The context K/V for `ids`, reusing the longest cached prefix (cut to a chunk start).

        A long uncached context is encoded in chunks with a cancel check between them."""
        n, past = self.lookup(ids, aligned=ENCODE_CHUNK)
        if n == len(ids) and past is not None:  # identical context
            return EncodedContext(model, self, list(ids), past, device, cached=n)
        kv = past if n > 0 else None
        for start in range(n, len(ids), ENCODE_CHUNK):
            if start > n and should_cancel is not None and should_cancel():
                raise Cancelled("cancelled while encoding the context")
            chunk = torch.tensor([ids[start : start + ENCODE_CHUNK]], device=device)  # (1, T)
            kv = model.encode(chunk, kv)
        assert kv is not None
        self.store(ids, kv)
        return EncodedContext(model, self, list(ids), kv, device, cached=n)


class EncodedContext:
    """One request's context K/V: canvases are denoised over it, finished ones appended to it."""

    def __init__(
        self, model: InfillTransformer, cache: ContextCache, ids: list[int], kv: KV, device: torch.device,
        *, cached: int,
    ) -> None:
        self.model, self.cache, self.ids, self.kv, self.device = model, cache, ids, kv, device
        self.cached = cached
        """Context tokens whose K/V came from the cache."""

    def forward(self, spec) -> Callable[[torch.Tensor], torch.Tensor]:
        room = CanvasKV(self.kv, spec.length)  # the context's K/V, copied once for all the steps
        model, device = self.model, self.device

        def forward(canvas: torch.Tensor) -> torch.Tensor:
            return model.denoise(canvas[None].to(device), room)[0]  # (C, V) on the device: runtime.sampler

        return forward

    def verify(self, canvases: torch.Tensor) -> torch.Tensor:
        """(B, C) all-visible canvases -> (B, C, V) logits, in one forward over the shared context."""
        return self.model.denoise(canvases.to(self.device), SharedKV(self.kv)).cpu()

    def fork(self) -> EncodedContext:
        """The same context for another chain: its appends leave this one as it is (the K/V tensors are
        never written in place, so both share them)."""
        ids, cached = list(self.ids), self.cached
        return EncodedContext(self.model, self.cache, ids, self.kv, self.device, cached=cached)

    def append(self, body: list[int]) -> None:
        """Not stored in the cache: these K/V were not computed in aligned chunks."""
        self.ids.extend(body)
        self.kv = self.model.encode(torch.tensor([body], device=self.device), self.kv)
