"""The embedded model's infill engine: request -> context -> canvases -> text.

Block-autoregressive: a canvas that fills up with no pad is appended to the
context (it is causal, so the cache just grows) and a fresh canvas continues,
until a pad appears or `max_tokens` is reached.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

import torch

from runtime.cache import CacheStats, ContextCache
from runtime.canvas import build_context, canvas_target, strip_heal, trim_suffix_overlap
from runtime.model import KV, CanvasKV, InfillTransformer
from runtime.policies import make_policy
from runtime.sampler import CanvasSpec, ContentRule, Tally, denoise
from runtime.tokenizer import Tokenizer
from runtime.types import BadRequest, Cancelled, InfillRequest, InfillResult

ENCODE_CHUNK = 256
"""Context tokens encoded per forward; the cancel flag is checked between chunks."""


class EmbeddedEngine:
    """Runs one request at a time (a lock serialises callers from several threads)."""

    name = "embedded"

    def __init__(
        self,
        model: InfillTransformer,
        tokenizer: Tokenizer,
        *,
        cache_bytes: int = 256 * 2**20,
        device: str = "cpu",
        description: str = "",
        max_context_tokens: int | None = None,
        compute_dtype: torch.dtype | None = None,
    ) -> None:
        if model.args.vocab_size < tokenizer.vocab_size:
            raise ValueError(f"model vocabulary {model.args.vocab_size} < tokenizer's {tokenizer.vocab_size}")
        self.model = model.eval()
        self.tok = tokenizer
        self.cache = ContextCache(cache_bytes)
        self.device = torch.device(device)
        self.description = description
        self.max_context_tokens = max_context_tokens
        """Contexts are clipped to this (the longest the model was trained on): longer ones put
        the canvas at distances the model never saw, which hurts more than the lost text helps."""
        self.compute_dtype = compute_dtype
        """Autocast dtype of the matrix products (None: float32); see load.resolve_embedded_dtype."""
        self._lock = threading.Lock()
        specials = tokenizer.special_ids - {tokenizer.pad_id}
        self._banned = tuple(sorted(specials | set(range(tokenizer.vocab_size, model.args.vocab_size))))
        self._banned_with_pad = tuple(sorted({*self._banned, tokenizer.pad_id}))

    def cache_stats(self) -> CacheStats:
        return self.cache.stats()

    def close(self) -> None:
        self.cache.clear()

    @property
    def canvas_len(self) -> int:
        return self.model.args.canvas_len

    def infill(self, req: InfillRequest, should_cancel: Callable[[], bool] | None = None) -> InfillResult:
        if req.max_tokens < 1:
            raise BadRequest(f"max_tokens must be >= 1, got {req.max_tokens}")
        canvas_len = req.canvas_tokens or self.canvas_len
        policy = make_policy(req.policy, canvas_len)  # validates the name before any work
        with self._lock, torch.inference_mode(), self._autocast():
            return self._infill(req, policy, canvas_len, should_cancel)

    def _autocast(self) -> torch.autocast:
        dtype = self.compute_dtype or torch.float32
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.compute_dtype is not None)

    def _infill(self, req, policy, canvas_len, should_cancel) -> InfillResult:
        started = time.perf_counter()
        budget = min(req.context_tokens, self.max_context_tokens or req.context_tokens)
        ctx = build_context(self.tok, req.prefix, req.suffix, budget)
        ids = list(ctx.ids)
        kv, cached = self._encode(ids, should_cancel)
        generator = torch.Generator().manual_seed(req.seed)
        sample_gen = generator if req.temperature > 0 else None
        out: list[int] = []
        tally = Tally()
        heal_ids = self.tok.ids_starting_with(ctx.heal.encode()) if ctx.heal else None
        free_length = req.draft is None and not req.exact_length
        rule = self._content_rule(ctx.heal) if free_length and on_blank_line(req.prefix) else None
        drafts = self._draft_canvases(req, ctx.heal, canvas_len, generator) if req.draft is not None else None
        max_tokens = req.max_tokens if drafts is None else max(req.max_tokens, sum(map(len, drafts)))
        while len(out) < max_tokens:
            initial = None
            if drafts is not None:
                if tally.canvases >= len(drafts):
                    break
                initial = drafts[tally.canvases]
            elif req.exact_length and max_tokens - len(out) < canvas_len:
                # the text's last canvas: its open slots are exactly the tokens still to come
                k = max_tokens - len(out)
                initial = (self.tok.mask_id,) * k + (self.tok.pad_id,) * (canvas_len - k)
            spec = CanvasSpec(
                length=len(initial) if initial else canvas_len,
                mask_id=self.tok.mask_id,
                pad_id=self.tok.pad_id,
                banned_ids=self._banned_with_pad if req.exact_length else self._banned,
                first_slot_ids=heal_ids if tally.canvases == 0 else None,
                initial=initial,
                stop_ids=self.tok.newline_ids if req.single_line and initial is None else frozenset(),
                content_rule=rule if tally.canvases == 0 else None,
            )

            room = CanvasKV(kv, spec.length)  # the context's K/V, copied once for all the steps

            def forward(canvas: torch.Tensor, room: CanvasKV = room) -> torch.Tensor:
                return self.model.denoise(canvas[None].to(self.device), room)[0].cpu()  # (C, V)

            res = denoise(
                forward,
                spec,
                policy,
                temperature=req.temperature,
                generator=sample_gen,
                should_cancel=should_cancel,
                deadline_ms=req.deadline_ms,
                started=started,
            )
            tally.add(res)
            body = [t for t in res.tokens if t != self.tok.pad_id]
            out.extend(body)
            if drafts is None:
                ended = len(body) < canvas_len
                text_so_far = strip_heal(self.tok, ctx.heal, out)
                if ended or res.deadline_hit or (req.single_line and "\n" in text_so_far):
                    break
            elif tally.canvases >= len(drafts):
                break
            # the canvas is done: it becomes context for the next one
            ids.extend(body)
            kv = self.model.encode(torch.tensor([body], device=self.device), kv)
            self.cache.store(ids, kv)
        out = out[:max_tokens]
        text = strip_heal(self.tok, ctx.heal, out)
        if req.single_line:
            text = text.split("\n", 1)[0]
        prefix_line = req.prefix.rsplit("\n", 1)[-1]
        text = trim_suffix_overlap(text, req.suffix, prefix_line)
        stats = tally.stats(
            tokens=len(out), context_tokens=len(ctx.ids), cached_tokens=cached, started=started
        )
        return InfillResult(text=text, stats=stats)

    def _draft_canvases(
        self, req: InfillRequest, heal: str, canvas_len: int, generator: torch.Generator
    ) -> list[tuple[int, ...]]:
        """Rewrite mode: the draft's tokens in canvas-sized chunks, a fraction of them masked,
        plus a few open slots at the end so the text may grow (pads let it shrink)."""
        if not 0.0 <= req.remask <= 1.0:
            raise BadRequest(f"remask must be within [0, 1], got {req.remask}")
        ids = canvas_target(self.tok, heal, req.draft or "")
        chunks = [ids[i : i + canvas_len] for i in range(0, len(ids), canvas_len)] or [[]]
        slack = max(2, min(canvas_len, len(chunks[-1]) // 4 + 2))
        out = []
        for chunk in chunks:
            t = torch.tensor(chunk, dtype=torch.long)
            hide = torch.rand(len(chunk), generator=generator) < req.remask
            t[hide] = self.tok.mask_id
            out.append(tuple(t.tolist()))
        out[-1] = out[-1] + (self.tok.mask_id,) * slack
        return out

    @functools.lru_cache(maxsize=64)  # noqa: B019 - engines live as long as the process
    def _content_rule(self, heal: str) -> ContentRule:
        visible, breaks = self.tok.content_flags(0)
        first_visible, first_breaks = self.tok.content_flags(len(heal.encode()))
        flags = (torch.tensor(f) for f in (visible, breaks, first_visible, first_breaks))
        return ContentRule.from_flags(*flags, pad_id=self.tok.pad_id)

    def _encode(self, ids: list[int], should_cancel: Callable[[], bool] | None) -> tuple[KV, int]:
        """Context K/V for `ids`, reusing the longest cached prefix; returns (kv, reused tokens).

        A long uncached context is encoded in chunks with a cancel check between them."""
        n, past = self.cache.lookup(ids)
        if n == len(ids) and past is not None:  # identical context
            return past, n
        kv = past if n > 0 else None
        for start in range(n, len(ids), ENCODE_CHUNK):
            if start > n and should_cancel is not None and should_cancel():
                raise Cancelled("cancelled while encoding the context")
            chunk = torch.tensor([ids[start : start + ENCODE_CHUNK]], device=self.device)  # (1, T)
            kv = self.model.encode(chunk, kv)
        assert kv is not None
        self.cache.store(ids, kv)
        return kv, n


def on_blank_line(prefix: str) -> bool:
    """The cursor's line holds only whitespace before it: an empty completion there is useless,
    so the engine asks the sampler for at least one visible character (`ContentRule`)."""
    return not prefix.rsplit("\n", 1)[-1].strip()
