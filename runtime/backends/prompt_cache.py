"""DiffusionGemma's encoder K/V for the last prompt, reused across keystrokes.

The encoder is causal, so the K/V of a prompt token depends only on the
tokens before it: for the next prompt we crop to the longest common token
prefix and encode only the new tail.

Why a "master" cache and a per-request "view": transformers' sliding-window
cache layers keep only the last `window - 1` positions, so they cannot be
cropped back past that.  The master cache records the full history of every
layer (`activate_past_recording`, and we never let transformers trim it);
`generate` gets a fresh view holding what its layers expect (sliding layers:
the last `window - 1` positions), which it may extend without touching the
master.  This reaches into the cache layers' tensors, so it is written for
transformers 5.24 (pinned) and checked by tests/backends/test_diffusiongemma.py.

A cold prompt is encoded `chunk` tokens at a time with `check()` called between
chunks, so cancel and the deadline also act during a long encode; what was
encoded before `check` raised stays in the master (a valid prefix) for the next
request.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

from runtime.cache import common_prefix
from runtime.types import CacheStats


class PromptCache:
    chunk: int = 512
    """Prompt tokens per encoder forward of a cold encode (cancel and deadline act between them)."""

    def __init__(self, model) -> None:
        self.model = model
        self.ids: list[int] = []
        self._master: DynamicCache | None = None
        self._lookups = self._hits = self._reused = 0

    def prepare(
        self, ids: list[int], check: Callable[[], None] | None = None
    ) -> tuple[DynamicCache, int]:
        """A cache holding the encoder K/V of `ids` (for `generate`), and how many were reused.

        `check` is called between encode chunks and may raise to stop (cancel, deadline)."""
        self._lookups += 1
        n = common_prefix(self.ids, ids) if self._master is not None else 0
        if n == 0 or not self._crop(n):
            self._master, n = self._fresh(), 0
        self.ids = list(ids[:n])
        if n:
            self._hits += 1
            self._reused += n
        for start in range(n, len(ids), self.chunk):
            if start > n and check is not None:
                check()  # the master holds ids[:start]: a consistent prefix if this raises
            end = min(start + self.chunk, len(ids))
            try:
                self._encode(ids[start:end], start=start)
            except BaseException:  # a half-written master is useless: start over next time
                self._master, self.ids = None, []
                raise
            self.ids = list(ids[:end])
        return self._view(), n

    def stats(self) -> CacheStats:
        nbytes = 0
        if self._master is not None:
            for layer in self._master.layers:
                if layer.is_initialized:
                    nbytes += layer.keys.numel() * layer.keys.element_size() * 2
        entries = 1 if self.ids else 0
        return CacheStats(self._lookups, self._hits, self._reused, entries, nbytes)

    def clear(self) -> None:
        self._master, self.ids = None, []

    def _fresh(self) -> DynamicCache:
        cache = DynamicCache(config=self.model.config.get_text_config(decoder=True))
        cache.activate_past_recording()
        return cache

    def _crop(self, n: int) -> bool:
        """Keep the first `n` positions of the master; False when a layer type cannot be cropped."""
        assert self._master is not None
        for layer in self._master.layers:
            if not isinstance(layer, DynamicSlidingWindowLayer | DynamicLayer):
                return False
        for layer in self._master.layers:
            if not layer.is_initialized:
                continue
            layer.keys = layer.keys[:, :, :n]  # (B, H, n, D)
            layer.values = layer.values[:, :, :n]
            if isinstance(layer, DynamicSlidingWindowLayer):
                layer.cumulative_length = n
        return True

    def _encode(self, new_ids: list[int], start: int) -> None:
        device = self.model.device
        input_ids = torch.tensor([new_ids], device=device)  # (1, T)
        total = start + len(new_ids)
        position_ids = torch.arange(start, total, dtype=torch.int32, device=device)[None]  # (1, T)
        attention_mask = torch.ones((1, total), dtype=torch.bool, device=device)  # (1, S)
        encoder = self.model.model.encoder
        dummy = torch.empty((1, len(new_ids), 0), dtype=self.model.dtype, device=device)  # (1, T, 0)
        masks = encoder.create_masks_for_generate(
            config=self.model.config,
            inputs_embeds=dummy,
            attention_mask=attention_mask,
            cache=self._master,
            position_ids=position_ids,
            mm_token_type_ids=None,
        )
        encoder(input_ids=input_ids, attention_mask=masks, cache=self._master, position_ids=position_ids)

    def _view(self) -> DynamicCache:
        assert self._master is not None
        view = DynamicCache(config=self.model.config.get_text_config(decoder=True))
        for src, dst in zip(self._master.layers, view.layers, strict=True):
            if not src.is_initialized:
                continue
            keys, values = src.keys, src.values  # (B, H, S, D)
            dst.lazy_initialization(keys, values)
            if isinstance(src, DynamicSlidingWindowLayer):
                w = src.sliding_window
                keys, values = keys[:, :, -(w - 1) :], values[:, :, -(w - 1) :]
                dst.cumulative_length = src.cumulative_length
            dst.keys, dst.values = keys, values
        return view
