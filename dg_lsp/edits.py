"""Infill results -> LSP items and edits (pure; no server state).

Every edit is checked before it leaves: ranges are clamped to the document
and counted in the negotiated position encoding, inserted text gets the
document's line breaks, and a fill that is empty, whitespace only or a copy of
the text after it is dropped rather than shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lsprotocol import types as t

from dg_lsp.context import UTF16, Cursor, Site, content, units, word_before

ACCEPTED_COMMAND = "dg.acceptedCompletion"
_CONTROL = {c: None for c in [*range(0x20), 0x7F] if chr(c) not in "\t\n"}
"""Control characters a model may emit that no editor should receive."""


def position(lines: Sequence[str], cur: Cursor, encoding: str = UTF16) -> t.Position:
    line = content(lines[cur.line]) if cur.line < len(lines) else ""
    return t.Position(line=cur.line, character=units(line[: cur.index], encoding))


def lsp_range(lines: Sequence[str], start: Cursor, end: Cursor, encoding: str = UTF16) -> t.Range:
    return t.Range(start=position(lines, start, encoding), end=position(lines, end, encoding))


def document_text(text: str, eol: str) -> str:
    """Model text (LF) in the document's line breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if eol == "\n" else text.replace("\n", eol)


def clean_fill(fill: str, site: Site) -> str | None:
    """The fill as it may be shown, or None when there is nothing worth showing: empty, only
    whitespace, or a copy of the rest of the line.  (The runtime already cut a single line and
    trimmed the tail that repeats the suffix.)"""
    fill = fill.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL).rstrip()
    rest_of_line = site.suffix[len(site.closers) :].split("\n", 1)[0].strip()
    if not fill.strip() or (rest_of_line and fill.strip() == rest_of_line):
        return None
    return fill


@dataclass(frozen=True)
class Shown:
    """Inline items and the fills they show (document text, without the auto-closed characters
    the items carry), which the typing cache remembers."""

    items: list[t.InlineCompletionItem]
    fills: list[str]


def inline_items(
    lines: Sequence[str],
    site: Site,
    fills: Iterable[str],
    *,
    encoding: str = UTF16,
    eol: str = "\n",
    limit: int = 3,
) -> Shown:
    """Distinct items: each replaces `site.start..site.end` and carries the auto-closed characters."""
    items: list[t.InlineCompletionItem] = []
    shown: list[str] = []
    seen: set[str] = set()
    rng = lsp_range(lines, site.start, site.end, encoding)
    for fill in fills:
        clean = clean_fill(fill, site)
        if clean is None:
            continue
        text = site.typed + document_text(clean, eol)
        insert = text + site.closers
        if insert in seen:
            continue
        seen.add(insert)
        shown.append(text)
        items.append(
            t.InlineCompletionItem(
                insert_text=insert,
                range=rng,
                command=accepted_command("inline", clean),
            )
        )
        if len(items) >= limit:
            break
    return Shown(items, shown)


def accepted_command(kind: str, fill: str) -> t.Command:
    return t.Command(
        title="dg-lsp: completion accepted",
        command=ACCEPTED_COMMAND,
        arguments=[{"kind": kind, "chars": len(fill), "lines": fill.count("\n") + 1}],
    )


def completion_item(
    lines: Sequence[str], site: Site, fill: str, *, encoding: str = UTF16, eol: str = "\n"
) -> t.CompletionItem | None:
    """One completion-popup item carrying the infill, for clients without inline completion.

    Its edit starts at the word being typed so the client's filtering (word
    prefix of `filterText`) keeps it visible.
    """
    clean = clean_fill(fill, site)
    if clean is None:
        return None
    word = word_before(site.line_before) if not site.typed else ""
    start = Cursor(site.start.line, site.start.index - len(word), site.start.offset - len(word))
    body = site.typed + document_text(clean, eol)
    first, _, more = (word + site.typed + clean).partition("\n")
    label = first if len(first) <= 60 else first[:59] + "…"
    return t.CompletionItem(
        label=label + (" …" if more else ""),
        kind=t.CompletionItemKind.Snippet,
        detail="dg-lsp infill",
        filter_text=word + site.typed + clean.split("\n", 1)[0],
        sort_text="0",
        preselect=True,
        insert_text_format=t.InsertTextFormat.PlainText,
        text_edit=t.TextEdit(
            range=lsp_range(lines, start, site.end, encoding), new_text=word + body + site.closers
        ),
        command=accepted_command("completion", clean),
    )


def keep_line_ends(old: str, new: str) -> str:
    """`new` (a fill of the selection `old`) ends in as many line breaks as `old` does: a model
    that ends its text with a line break must not add a blank line after a line-wise selection."""
    kept = old[len(old.rstrip("\r\n")) :].count("\n") or old[len(old.rstrip("\r\n")) :].count("\r")
    return new.rstrip("\r\n") + "\n" * kept


def common_ends(old: str, new: str) -> tuple[int, int]:
    """Lengths of the common prefix and (non-overlapping) common suffix of two strings."""
    n = min(len(old), len(new))
    p = 0
    while p < n and old[p] == new[p]:
        p += 1
    s = 0
    while s < n - p and old[-1 - s] == new[-1 - s]:
        s += 1
    return p, s


def replace_edit(
    lines: Sequence[str],
    start: Cursor,
    end: Cursor,
    old: str,
    new: str,
    *,
    encoding: str = UTF16,
    eol: str | None = "\n",
    shrink: bool = True,
) -> t.TextEdit:
    """Replace `old` (the document text between `start` and `end`) by `new` (model text, whose line
    breaks become `eol`; with `eol` None, `new` is document text and keeps each line's own break).

    With `shrink`, the edit covers only what changed, so the client keeps marks
    and folds outside it.
    """
    new = new if eol is None else document_text(new, eol)
    if shrink:
        p, s = common_ends(old, new)
        if p and old[p - 1] == "\r":  # never split a CRLF
            p -= 1
        start, end = _advance(lines, start, old[:p]), _advance(lines, start, old[: len(old) - s])
        new = new[p : len(new) - s]
    return t.TextEdit(range=lsp_range(lines, start, end, encoding), new_text=new)


def _advance(lines: Sequence[str], start: Cursor, passed: str) -> Cursor:
    """The cursor after `passed` (document text starting at `start`)."""
    breaks = passed.count("\n")
    if not breaks:
        return Cursor(start.line, start.index + len(passed), start.offset + len(passed))
    index = len(passed) - passed.rfind("\n") - 1
    return Cursor(start.line + breaks, index, start.offset + len(passed))


def workspace_edit(
    uri: str, version: int | None, edits: list[t.TextEdit], *, document_changes: bool
) -> t.WorkspaceEdit:
    """Versioned `documentChanges` when the client supports them (so a stale edit is refused)."""
    if document_changes:
        return t.WorkspaceEdit(
            document_changes=[
                t.TextDocumentEdit(
                    text_document=t.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                    edits=list(edits),
                )
            ]
        )
    return t.WorkspaceEdit(changes={uri: list(edits)})
