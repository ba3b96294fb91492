"""The embedded model as a backend: request -> context -> canvas plan -> canvas chain -> text.

    runtime.context  build_context (clipped, healed)
    runtime.cache    the context's K/V, reused across keystrokes (EncodedContext)
    runtime.canvas   the plan: free, exact length, or drafted canvases
    runtime.blocks   the chain over the plan (runtime.sampler denoises each canvas)
    runtime.text     decode, single-line cut, suffix-overlap trim
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable

import torch

from runtime.backends.base import Backend
from runtime.blocks import Tally, run_chain
from runtime.cache import DEFAULT_CACHE_BYTES, ContextCache
from runtime.canvas import CanvasPlan, canvas_target, draft_canvases, draft_plan, free_plan
from runtime.context import Context, build_context
from runtime.decoding import Decoding
from runtime.drafts import DraftRules, Verified, verify
from runtime.drafts import draft_canvases as drafted_canvases
from runtime.lengths import causal_limit, causal_line, join_tokens, joint_log_probs
from runtime.memo import Memo
from runtime.model import InfillTransformer
from runtime.policies import Policy, make_policy
from runtime.rules import ContentRule
from runtime.text import finish, strip_heal
from runtime.tokenizer import Tokenizer
from runtime.types import CacheStats, InfillRequest, InfillResult


class EmbeddedBackend(Backend):
    name = "embedded"
    rewrites = True

    def __init__(
        self,
        model: InfillTransformer,
        tokenizer: Tokenizer,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        device: str = "cpu",
        description: str = "",
        max_context_tokens: int | None = None,
        compute_dtype: torch.dtype | None = None,
        draft_rules: DraftRules | None = None,
        snippet_tokens: int = 0,
        decoding: Decoding | None = None,
    ) -> None:
        super().__init__()
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
        self.snippet_tokens = snippet_tokens
        """The most snippet tokens the model was trained with (its config.json `layout`)."""
        self.draft_rules = draft_rules or DraftRules()
        """How this model's verification of drafts is read (its config.json `drafts` section)."""
        self.decoding = decoding or Decoding()
        """Its end-of-text bars and policy defaults (its config.json `decoding` section)."""
        specials = tokenizer.special_ids - {tokenizer.pad_id}
        self._banned = tuple(sorted(specials | set(range(tokenizer.vocab_size, model.args.vocab_size))))
        self._banned_with_pad = tuple(sorted({*self._banned, tokenizer.pad_id}))
        self.never_written = torch.zeros(model.args.vocab_size, dtype=torch.bool)
        self.never_written[list(self._banned_with_pad)] = True
        """The causal line's banned tokens (`runtime.lengths.causal_line`)."""
        self._rules: Memo[str, ContentRule] = Memo(64)
        """Blank-line content rules by healed text (kept here: a class-wide lru_cache kept every
        reloaded backend alive, its model included)."""

    def cache_stats(self) -> CacheStats:
        return self.cache.stats()

    def close(self) -> None:
        self.cache.clear()

    @property
    def canvas_len(self) -> int:  # type: ignore[override]
        return self.model.args.canvas_len

    def run(self, req: InfillRequest, should_cancel: Callable[[], bool] | None) -> InfillResult:
        started = time.perf_counter()
        canvas_len = req.canvas_tokens or self.canvas_len
        policy = make_policy(req.policy, canvas_len, self.decoding.policies)
        with torch.inference_mode(), self.autocast():
            budget = min(req.context_tokens, self.max_context_tokens or req.context_tokens)
            snippets = min(req.snippet_tokens, self.snippet_tokens) if req.snippets else 0
            ctx = build_context(self.tok, req.prefix, req.suffix, budget, req.snippets, snippets)
            context = self.cache.encode(self.model, list(ctx.ids), self.device, should_cancel)
            generator = torch.Generator().manual_seed(req.seed)
            verified = Verified()
            if req.drafts and req.draft is None and not req.exact_length:
                dc = drafted_canvases(self.tok, ctx.heal, req.drafts, canvas_len)
                verified = verify(dc, context.verify, self.tok.mask_id, self.draft_rules)  # one forward
            plan = self._plan(req, ctx.heal, canvas_len, generator, verified.initial)
            out, tally = verified.out, Tally()
            if out is None:
                run = functools.partial(
                    self._chain, policy=policy, ctx=ctx, started=started,
                    should_cancel=should_cancel, generator=generator,
                )  # fmt: skip
                base = context.fork() if self.decoding.searches else context  # before any append
                out, tally = run(plan, context, req=req)
                if self._searches_length(req, tally):
                    free = (out, tally)
                    out, tally = self._length_search(run, base, req, ctx, generator, free, should_cancel)
        text = finish(strip_heal(self.tok, ctx.heal, out), req)
        size, cached = len(ctx.ids), context.cached
        stats = tally.stats(
            tokens=len(out), context_tokens=size, cached_tokens=cached, started=started, snippets=ctx.snippets
        )
        return InfillResult(text=text, stats=verified.count(stats, out))

    def _chain(self, plan, context, *, policy: Policy, req, ctx: Context, started, should_cancel, generator):
        return run_chain(
            plan, context, policy, req, decode=functools.partial(strip_heal, self.tok, ctx.heal),
            started=started, should_cancel=should_cancel, generator=generator,
        )

    def _searches_length(self, req: InfillRequest, tally: Tally) -> bool:
        """A single line of unknown length, decoded greedily from masks in time, for a model that
        declares a length search or the causal line (`runtime.lengths`)."""
        return bool(
            self.decoding.searches and req.single_line and not req.exact_length and req.draft is None
            and req.temperature == 0 and req.canvas_tokens is None and not tally.deadline_hit
        )  # fmt: skip

    def _length_search(self, run, context, req: InfillRequest, ctx: Context, generator, free, should_cancel):
        """The free canvas's tokens, the exact-length canvases' (each chain on its own fork of the
        context) and the causal line's, the one whose text (as the request returns it) the causal head
        gives the highest joint log-probability with the suffix after it (on a blank line, of those that
        show something, as the free canvas must); counts summed, the scoring forward included (none
        when one text is left)."""
        runs, tally = [free], Tally()
        tally.merge(free[1])
        for n in self.decoding.length_search:
            if n >= req.max_tokens or n > self.canvas_len:
                continue
            exact = dataclasses.replace(req, max_tokens=n, exact_length=True)
            plan = self._plan(exact, ctx.heal, self.canvas_len, generator)
            runs.append(run(plan, context.fork(), req=exact))
            tally.merge(runs[-1][1])
        texts = [finish(strip_heal(self.tok, ctx.heal, out), req) for out, _ in runs]
        if self.decoding.causal_line:
            guess = canvas_target(self.tok, ctx.heal, texts[0])  # the free canvas's text: the line's draft
            line, spent = causal_line(
                self.model, self.tok, context.kv, ctx.ids[-1], heal=ctx.heal, banned=self.never_written,
                limit=causal_limit(req.max_tokens, self.canvas_len, len(guess)), draft=guess,
                should_cancel=should_cancel,
            )  # fmt: skip
            tally.forwards += spent
            if line is not None:
                runs.append((line, Tally()))
                texts.append(finish(strip_heal(self.tok, ctx.heal, line), req))
        keep = [i for i, t in enumerate(texts) if t not in texts[:i]]  # a text once
        if not req.prefix.rsplit("\n", 1)[-1].strip():  # a blank line: those that show something
            keep = [i for i in keep if texts[i].strip()] or keep
        if len(keep) == 1:  # nothing to choose between
            return runs[keep[0]][0], tally
        ids = [canvas_target(self.tok, ctx.heal, texts[i]) for i in keep]
        join = join_tokens(self.tok, req.suffix)
        scores = joint_log_probs(self.model, context.kv, ctx.ids[-1], ids, join)
        tally.forwards += 1
        best = max(range(len(keep)), key=lambda j: (scores[j], -j))  # ties: the free canvas
        return runs[keep[best]][0], tally

    def autocast(self) -> torch.autocast:
        """The matrix-product precision the model runs in (bfloat16 autocast where native)."""
        dtype = self.compute_dtype or torch.float32
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.compute_dtype is not None)

    def _plan(
        self, req: InfillRequest, heal: str, canvas_len: int, generator: torch.Generator,
        corrected: tuple[int, ...] | None = None,
    ) -> CanvasPlan:
        """The request's canvases; `corrected`: one verified draft canvas with its doubted slots open."""
        tok = self.tok
        heal_ids = tok.ids_starting_with(heal.encode()) if heal else None
        if req.draft is not None or corrected is not None:
            drafts = [corrected] if corrected is not None else draft_canvases(
                canvas_target(tok, heal, req.draft or ""), canvas_len, req.remask, tok.mask_id, generator
            )
            banned = self._banned_with_pad if req.exact_length else self._banned
            return draft_plan(
                drafts, req.max_tokens, mask_id=tok.mask_id, pad_id=tok.pad_id, banned_ids=banned,
                first_slot_ids=heal_ids, end_bars=self.decoding.end_bars,
            )
        blank_line = not req.prefix.rsplit("\n", 1)[-1].strip()
        return free_plan(
            canvas_len, req.max_tokens, mask_id=tok.mask_id, pad_id=tok.pad_id,
            banned_ids=self._banned_with_pad if req.exact_length else self._banned,
            first_slot_ids=heal_ids,
            stop_ids=tok.newline_ids if req.single_line else frozenset(),
            # on a blank line an empty completion is useless: the text must show something first
            content_rule=self._content_rule(heal) if blank_line and not req.exact_length else None,
            exact_length=req.exact_length, end_bars=self.decoding.end_bars,
        )

    def _content_rule(self, heal: str) -> ContentRule:
        if (known := self._rules.get(heal)) is not None:
            return known
        visible, breaks = self.tok.content_flags(0)
        first_visible, first_breaks = self.tok.content_flags(len(heal.encode()))
        flags = (torch.tensor(f) for f in (visible, breaks, first_visible, first_breaks))
        return self._rules.put(heal, ContentRule.from_flags(*flags, pad_id=self.tok.pad_id))

