"""Generated tokens -> the text to insert: decoding, heal stripping, the single-line cut and the
suffix-overlap trim.  Every backend ends with `finish`, so each rule is stated here once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.tokenizer import Tokenizer
    from runtime.types import InfillRequest

_OPEN = "([{"
_CLOSE = ")]}"
_AUTO_CLOSED = set(_CLOSE + ">\"'`;,: \t")
"""Characters an editor inserts right of the cursor by itself (closers, quotes, their punctuation)."""


def strip_heal(tok: Tokenizer, heal: str, ids: list[int]) -> str:
    """Decode canvas tokens and remove the healed text from their start."""
    data = b"".join(tok.token_bytes(i) for i in ids if i not in tok.special_ids)
    head = heal.encode()
    if data.startswith(head):
        data = data[len(head) :]
    # bytes that are not UTF-8 (a cut multi-byte character, a confused model) are dropped:
    # an editor must never receive replacement characters as a suggestion
    return data.decode("utf-8", errors="ignore")


def first_line(text: str) -> str:
    """The single-line cut: the text up to its first line break."""
    return text.split("\n", 1)[0]


def _imbalance(text: str) -> int:
    return abs(sum(text.count(c) for c in _OPEN) - sum(text.count(c) for c in _CLOSE))


def trim_suffix_overlap(text: str, suffix: str, prefix_line: str = "") -> str:
    """Drop a tail of `text` that repeats the start of the suffix.

    Covers the rest of the cursor line (an auto-closed bracket or quote the
    model wrote again, or the whole rest of the line) and whole suffix lines at
    the end of a multi-line infill.  Closers are only trimmed when that makes
    the cursor line's brackets balance better, so `g(` + `f(x)` + `)` is kept.
    """
    line = suffix.split("\n", 1)[0]
    core = line.strip()
    body = text.rstrip(" \t")
    closers_only = all(c in _CLOSE + "\"'`;:," for c in core)
    # the whole rest of the line repeated, or (closers only) the start of it: `len(` + `s)` + `))`
    # repeats one of the two closers, and the editor's `))` stays after the fill
    for n in range(len(core), 0 if closers_only else len(core) - 1, -1):
        if not core or "\n" in body or not body.endswith(core[:n].rstrip()):
            continue
        trimmed = body[: len(body) - len(core[:n].rstrip())]
        if not closers_only or _imbalance(prefix_line + trimmed + line) < _imbalance(
            prefix_line + text + line
        ):
            return trimmed
    suffix_lines = [ln.strip() for ln in suffix.splitlines() if ln.strip()]
    text_lines = text.rstrip("\n").splitlines()
    candidates = [suffix_lines[:3]]
    if core and all(c in _AUTO_CLOSED for c in core):
        # an auto-closed rest of the line ("))") stays after the fill: the lines that the fill's
        # tail may repeat are also the ones after it
        candidates.append(suffix_lines[1:4])
    for lines in candidates:
        for n in range(min(len(lines), len(text_lines)), 0, -1):
            if [ln.strip() for ln in text_lines[-n:]] == lines[:n]:
                kept = text_lines[:-n]
                return "\n".join(kept) + ("\n" if kept else "")
    return text


def finish(text: str, req: InfillRequest) -> str:
    """The decoded infill -> what goes between prefix and suffix: cut to one line when the
    request asks for a single line, then without a tail that repeats the suffix."""
    if req.single_line:
        text = first_line(text)
    return trim_suffix_overlap(text, req.suffix, req.prefix.rsplit("\n", 1)[-1])
