"""Prefix/suffix text -> model input: a causal context plus a canvas of mask slots.

Layout (the embedded model's, used by training and inference alike)::

    context = [FIM_SUFFIX] suffix-tokens [FIM_PREFIX] prefix-tokens-minus-the-last
    canvas  = heal-text + middle, tokenized, then pad up to the canvas length

The suffix comes first so that a keystroke at the cursor only changes the
tail of the context, which keeps the context cache effective.  The last
prefix token is moved into the canvas ("boundary healing"): the cursor may
sit inside a token, so the model re-generates that token constrained to
begin with the text already typed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from runtime.tokenizer import Tokenizer

PREFIX_LINE_QUANTUM = 32
"""When the prefix must be clipped, it starts on a multiple of this many lines,
so that typing does not shift the start (and invalidate the cache) every keystroke."""


@dataclass(frozen=True)
class Context:
    ids: list[int]
    """Context tokens: FIM_SUFFIX, suffix, FIM_PREFIX, prefix minus the healed token."""
    heal: str
    """Text at the end of the prefix that the canvas must re-generate first."""
    prefix_chars_dropped: int = 0


def build_context(tok: Tokenizer, prefix: str, suffix: str, budget: int) -> Context:
    """Tokenize prefix and suffix into a context of at most `budget` tokens.

    The suffix gets at most a quarter of the budget (its start is kept); the
    prefix gets the rest (its end is kept, clipped on quantized line starts).
    """
    if budget < 8:
        raise ValueError(f"context budget {budget} is too small (need >= 8 tokens)")
    suffix_ids, _ = clip_suffix(tok, suffix, budget // 4)
    prefix_budget = budget - 2 - len(suffix_ids)
    prefix, dropped = clip_prefix(tok, prefix, prefix_budget)
    prefix_ids, heal = _split_heal(tok, prefix)
    ids = [tok.fim_suffix_id, *suffix_ids, tok.fim_prefix_id, *prefix_ids]
    return Context(ids=ids, heal=heal, prefix_chars_dropped=dropped)


def canvas_target(tok: Tokenizer, heal: str, middle: str) -> list[int]:
    """Tokens the canvas should hold for a known middle (training, oracle length).

    Normally the natural tokenization of heal+middle; if that would not begin
    with a token starting with the healed text, the heal is tokenized apart so
    the first-slot constraint used at inference still holds.
    """
    ids = tok.encode(heal + middle)
    if heal and ids and not tok.token_bytes(ids[0]).startswith(heal.encode()):
        ids = tok.encode(heal) + tok.encode(middle)
    return ids


def strip_heal(tok: Tokenizer, heal: str, ids: list[int]) -> str:
    """Decode canvas tokens and remove the healed text from their start."""
    data = b"".join(tok.token_bytes(i) for i in ids if i not in tok.special_ids)
    head = heal.encode()
    if data.startswith(head):
        data = data[len(head) :]
    # bytes that are not UTF-8 (a cut multi-byte character, a confused model) are dropped:
    # an editor must never receive replacement characters as a suggestion
    return data.decode("utf-8", errors="ignore")


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
    # Cheap character pre-cut (no token is shorter than one char) then whole lines.
    text = suffix[: budget * 8]
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


def clip_prefix(tok: Tokenizer, prefix: str, budget: int) -> tuple[str, int]:
    """Keep the end of the prefix within `budget` tokens; returns (text, chars dropped).

    Only the last `budget * 8` characters are looked at (code averages well
    under 8 characters per token), so a 5 MB file costs no more than a small one."""
    window_start = max(0, len(prefix) - budget * 8)
    if window_start == 0 and len(tok.encode(prefix)) <= budget:
        return prefix, 0
    starts = _line_starts(prefix, window_start)  # (line number, offset), ascending
    lo, hi = 0, len(starts)
    while lo < hi:  # the first line start whose tail fits
        mid = (lo + hi) // 2
        if len(tok.encode(prefix[starts[mid][1] :])) <= budget:
            hi = mid
        else:
            lo = mid + 1
    if lo == len(starts):  # the cursor line alone is too long: cut characters
        tail = prefix[-budget:]
        return tail, len(prefix) - len(tail)
    # prefer a line number that is a multiple of the quantum, so the start is stable while typing
    start = next((off for line, off in starts[lo:] if line % PREFIX_LINE_QUANTUM == 0), starts[lo][1])
    return prefix[start:], start


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


_OPEN = "([{"
_CLOSE = ")]}"


def _imbalance(text: str) -> int:
    return abs(sum(text.count(c) for c in _OPEN) - sum(text.count(c) for c in _CLOSE))


def trim_suffix_overlap(text: str, suffix: str, prefix_line: str = "") -> str:
    """Drop a tail of `text` that repeats the start of the suffix.

    Covers the rest of the cursor line (an auto-closed bracket or quote the
    model wrote again, or the whole rest of the line) and whole suffix lines at
    the end of a multi-line infill.  Closers are only trimmed when that makes
    the cursor line's brackets balance better, so `g(` + `f(x)` + `)` is kept.
    """
    first_line = suffix.split("\n", 1)[0]
    core = first_line.strip()
    body = text.rstrip(" \t")
    if core and "\n" not in body and body.endswith(core):
        trimmed = body[: -len(core)]
        closers_only = all(c in _CLOSE + "\"'`;:," for c in core)
        if not closers_only or _imbalance(prefix_line + trimmed + first_line) < _imbalance(
            prefix_line + text + first_line
        ):
            return trimmed
    suffix_lines = [ln for ln in suffix.splitlines() if ln.strip()][:3]
    text_lines = text.rstrip("\n").splitlines()
    for n in range(min(len(suffix_lines), len(text_lines)), 0, -1):
        if [ln.strip() for ln in text_lines[-n:]] == [ln.strip() for ln in suffix_lines[:n]]:
            kept = text_lines[:-n]
            return "\n".join(kept) + ("\n" if kept else "")
    return text
