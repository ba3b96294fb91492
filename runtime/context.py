"""Prefix/suffix text -> the model's causal context, clipped to a token budget, with boundary healing.

Layout (the embedded model's, used by training and inference alike)::

    context = ([FILE_SEP] path "\n" snippet)* [FIM_SUFFIX] suffix-tokens
              [FIM_PREFIX] prefix-tokens-minus-the-last
    canvas  = heal-text + middle (see `runtime.canvas`)

Snippets (workspace text like the code around the cursor, `runtime.snippets`) come only for a
model trained with them, first, the best one last (nearest the cursor's context); they change
only when the lines above the cursor do, so the cached context stays valid while a line is typed.

The suffix comes first so that a keystroke at the cursor only changes the
tail of the context, which keeps the context cache effective.  The last
prefix token is moved into the canvas ("boundary healing"): the cursor may
sit inside a token, so the model re-generates that token constrained to
begin with the text already typed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.tokenizer import Tokenizer

CHARS_PER_TOKEN = 8
"""Code averages well under this many characters per token, so a window of `budget * CHARS_PER_TOKEN`
characters holds at least `budget` tokens: text is cut by characters to that window before it is
tokenized (a 5 MB file costs no more than a small one).  The one chars-per-token constant."""

PREFIX_LINE_QUANTUM = 32
"""When the prefix must be clipped, it starts on a multiple of this many lines,
so that typing does not shift the start (and invalidate the cache) every keystroke."""


@dataclass(frozen=True)
class Context:
    ids: list[int]
    """Context tokens: snippets, FIM_SUFFIX, suffix, FIM_PREFIX, prefix minus the healed token."""
    heal: str
    """Text at the end of the prefix that the canvas must re-generate first."""
    snippet_tokens: int = 0
    """How many of `ids` are snippets (at the start)."""
    snippets: tuple[tuple[str, int], ...] = ()
    """(path, tokens) of each snippet in `ids`, best first (the layout puts the best last)."""


def build_context(
    tok: Tokenizer,
    prefix: str,
    suffix: str,
    budget: int,
    snippets: Sequence[tuple[str, str]] = (),
    snippet_budget: int = 0,
) -> Context:
    """Tokenize prefix and suffix into a context of at most `budget` tokens, after at most
    `snippet_budget` tokens of `snippets` ((path, text), best first).

    The suffix gets at most a quarter of the budget (its start is kept); the
    prefix gets the rest (its end is kept, clipped on quantized line starts).
    """
    if budget < 8:
        raise ValueError(f"context budget {budget} is too small (need >= 8 tokens)")
    suffix_ids, kept = clip_suffix(tok, suffix, budget // 4)
    prefix_budget = budget - 2 - len(suffix_ids)
    prefix = clip_prefix(tok, prefix, prefix_budget)
    prefix_ids, heal = _split_heal(tok, prefix)
    blocks = snippet_blocks(tok, snippets, snippet_budget, prefix + suffix[:kept]) if snippet_budget else []
    snip = [t for _, block in reversed(blocks) for t in block]  # the best one nearest the context
    ids = [*snip, tok.fim_suffix_id, *suffix_ids, tok.fim_prefix_id, *prefix_ids]
    kept_snippets = tuple((path, len(block)) for path, block in blocks)
    return Context(ids=ids, heal=heal, snippet_tokens=len(snip), snippets=kept_snippets)


SNIPPET_HELD = 0.5
"""A snippet is left out when this fraction of its lines is already in the context."""


def snippet_blocks(
    tok: Tokenizer, snippets: Sequence[tuple[str, str]], budget: int, held: str
) -> list[tuple[str, list[int]]]:
    """(path, tokens) of the snippets that go in, `[FILE_SEP] path "\n" text` each, whole or not
    at all, best first within `budget`; those whose lines the context `held` mostly holds
    already are skipped."""
    held_lines = {ln.strip() for ln in held.split("\n") if ln.strip()}
    blocks: list[tuple[str, list[int]]] = []
    used = 0
    for path, text in snippets:
        lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        if not lines or sum(ln in held_lines for ln in lines) >= SNIPPET_HELD * len(lines):
            continue
        block = [tok.file_sep_id, *tok.encode(f"{path}\n{text}\n")]
        if used + len(block) <= budget:
            blocks.append((path, block))
            used += len(block)
    return blocks


def _split_heal(tok: Tokenizer, prefix: str) -> tuple[list[int], str]:
    if not prefix:
        return [], ""
    enc = tok.hf.encode(prefix, add_special_tokens=False)
    if not enc.ids:
        return [], ""
    heal_start = enc.offsets[-1][0]
    # a multi-byte character split over several byte tokens shares one start offset
    keep = [i for i, (start, _) in zip(enc.ids, enc.offsets, strict=True) if start < heal_start]
    return keep, prefix[heal_start:]


def clip_suffix(tok: Tokenizer, suffix: str, budget: int) -> tuple[list[int], int]:
    """Keep the start of the suffix within `budget` tokens, on whole lines where it can;
    returns (ids, characters kept)."""
    text = suffix[: budget * CHARS_PER_TOKEN]
    ids = tok.encode(text)
    if len(ids) <= budget:
        return ids, len(text)
    ends = list(itertools.accumulate(len(line) for line in text.splitlines(keepends=True)))
    lo, hi = 0, len(ends)  # the most whole lines that fit: binary search, a few encodes
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tok.encode(text[: ends[mid - 1]])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    kept = text[: ends[lo - 1]] if lo else ""
    if not kept:  # one very long first line: cut tokens
        ids = ids[:budget]
        return ids, len(tok.decode(ids))
    return tok.encode(kept), len(kept)


def clip_prefix(tok: Tokenizer, prefix: str, budget: int) -> str:
    """Keep the end of the prefix within `budget` tokens, starting on a line start where it can.

    Only the last `budget * CHARS_PER_TOKEN` characters are looked at."""
    window_start = max(0, len(prefix) - budget * CHARS_PER_TOKEN)
    if window_start == 0 and len(tok.encode(prefix)) <= budget:
        return prefix
    starts = _line_starts(prefix, window_start)  # (line number, offset), ascending
    lo, hi = 0, len(starts)
    while lo < hi:  # the first line start whose tail fits
        mid = (lo + hi) // 2
        if len(tok.encode(prefix[starts[mid][1] :])) <= budget:
            hi = mid
        else:
            lo = mid + 1
    if lo == len(starts):  # the cursor line alone is too long: cut characters
        return prefix[-budget:]
    # prefer a line number that is a multiple of the quantum, so the start is stable while typing
    start = next((off for line, off in starts[lo:] if line % PREFIX_LINE_QUANTUM == 0), starts[lo][1])
    return prefix[start:]


def _line_starts(text: str, window_start: int) -> list[tuple[int, int]]:
    line = text.count("\n", 0, window_start)
    out = []
    if window_start == 0 or text[window_start - 1] == "\n":
        out.append((line, window_start))
    p = text.find("\n", window_start)
    while p != -1:
        line += 1
        out.append((line, p + 1))
        p = text.find("\n", p + 1)
    return out


class _TokenCounter:
    """Adapter giving the clipping helpers above the two tokenizer methods they use."""

    def __init__(self, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str]) -> None:
        self.encode = encode
        self.decode = decode


def clip_context(
    prefix: str,
    suffix: str,
    budget: int,
    encode: Callable[[str], list[int]],
    decode: Callable[[list[int]], str],
) -> tuple[str, str]:
    """Clip prefix (keep its end) and suffix (keep its start) to about `budget` tokens together.

    Same rule as the embedded model's context (suffix <= a quarter of the budget, the prefix starts
    on a quantized line so typing does not move its start)."""
    if budget < 8:
        raise ValueError(f"context budget {budget} is too small (need >= 8 tokens)")
    counter = _TokenCounter(encode, decode)
    suffix_ids, kept = clip_suffix(counter, suffix, budget // 4)  # type: ignore[arg-type]
    return clip_prefix(counter, prefix, budget - len(suffix_ids)), suffix[:kept]  # type: ignore[arg-type]
