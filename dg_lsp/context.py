"""Document text + LSP position -> the infill site: where the fill goes and the text around it
(pure; no server state).  `dg_lsp.requests` turns a site into requests.

Positions arrive in the negotiated position encoding (UTF-16 unless the client
offered otherwise) and are clamped: a line past the end means the end of the
document, a character past the end of a line means the end of that line (its
line break excluded), a character inside a surrogate pair snaps to its start.
The model always sees "\\n" line breaks; `edits` puts the document's back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from runtime.context import CHARS_PER_TOKEN

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"

# characters an editor auto-inserts right of the cursor: closers, quotes and their punctuation
_AUTO_CLOSED = re.compile(r"""^[\s)\]}>"'`;,:]*$""")
_BLOCK_OPENER = re.compile(r"""(:|\{|\(|\[|=>|->|\bdo|\bthen|\bbegin)\s*$""")
_WORD_CHAR = re.compile(r"\w")

PREFIX_QUANTUM = 4096
"""The prefix window starts on this grid, so it stays put while the user types (context cache hits)."""


def units(text: str, encoding: str = UTF16) -> int:
    """Length of `text` in code units of `encoding`."""
    if text.isascii() or encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def index_of_units(line: str, n: int, encoding: str = UTF16) -> int:
    """String index of the code unit offset `n` in `line` (clamped; never splits a character)."""
    if n <= 0:
        return 0
    if line.isascii() or encoding == UTF32:
        return min(n, len(line))
    count = 0
    for i, c in enumerate(line):
        width = units(c, encoding)
        if count + width > n:
            return i
        count += width
    return len(line)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def split_lines(text: str) -> list[str]:
    """`text` cut into lines where LSP breaks them ("\\n", "\\r\\n", "\\r"), each keeping its break.

    Not `str.splitlines`: it also breaks at form feeds, U+2028 and other characters an
    editor keeps inside a line, and every position after one would land on another line.
    """
    return _LINE.findall(text)


def content(line: str) -> str:
    """A line without its line break."""
    return line.rstrip("\r\n")


@dataclass(frozen=True)
class Cursor:
    """A clamped position: line index, string index within the line and in the document."""

    line: int
    index: int
    offset: int


def locate(lines: Sequence[str], line: int, character: int, encoding: str = UTF16) -> Cursor:
    """Clamp an LSP position to the document; `lines` keep their line breaks."""
    if not lines:
        return Cursor(0, 0, 0)
    if line < 0:
        line, character = 0, 0
    if line >= len(lines):
        last = len(lines) - 1
        if lines[last].endswith(("\n", "\r")):  # the empty line after a final line break
            return Cursor(len(lines), 0, sum(map(len, lines)))
        line, character = last, units(content(lines[last]), encoding)
    index = index_of_units(content(lines[line]), max(0, character), encoding)
    return Cursor(line, index, sum(map(len, lines[:line])) + index)


def eol_of(lines: Sequence[str]) -> str:
    """The document's line break: the first one found, "\\n" when there is none."""
    for ln in lines[:1000]:
        if ln.endswith("\r\n"):
            return "\r\n"
        if ln.endswith("\n"):
            return "\n"
        if ln.endswith("\r"):
            return "\r"
    return "\n"


def to_model_text(text: str) -> str:
    """LF line breaks and valid Unicode for the tokenizer (lone surrogates become U+FFFD)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def prefix_window(text: str, end: int, context_tokens: int) -> str:
    """The text before `end` the model may need, starting on a line start on a fixed grid."""
    start = max(0, end - context_tokens * CHARS_PER_TOKEN)
    start = (start // PREFIX_QUANTUM) * PREFIX_QUANTUM
    if start > 0:
        nl = text.find("\n", start, end)
        start = nl + 1 if nl >= 0 else start
    return text[start:end]


def suffix_window(text: str, start: int, context_tokens: int) -> str:
    return text[start : start + context_tokens * CHARS_PER_TOKEN // 2]


def is_multiline_site(before: str, after: str, prev_lines: Sequence[str], next_lines: Sequence[str]) -> bool:
    """Multi-line after a block opener, or on a blank line of an empty body; otherwise rest of line.

    `before`/`after` are the cursor line's text left and right of the cursor;
    `prev_lines` run upwards from the line above, `next_lines` downwards from the line below.
    """
    if after.strip():
        return False
    if before.strip():
        return bool(_BLOCK_OPENER.search(before))
    opener = next((ln for ln in prev_lines if ln.strip()), None)
    if opener is None or not _BLOCK_OPENER.search(opener.rstrip()):
        return False
    body = next((ln for ln in next_lines if ln.strip()), None)
    indent = len(opener) - len(opener.lstrip())
    return body is None or len(body) - len(body.lstrip()) <= indent


@dataclass(frozen=True)
class Site:
    """Where an infill goes and what the model sees around it."""

    prefix: str
    """Model text before the fill (LF line breaks), ending with `typed`."""
    suffix: str
    """Model text after the fill, starting with `closers`."""
    start: Cursor
    """Start of the replaced range: the cursor, or the start of the selected completion."""
    end: Cursor
    """End of the replaced range: the cursor plus any auto-closed characters right of it."""
    typed: str
    """Text the items must begin with (the selected completion's text), in document form."""
    closers: str
    """Auto-closed characters right of the cursor that the items carry instead of duplicating."""
    single_line: bool
    line_before: str
    """The cursor line left of the cursor (document form)."""


def site_at(
    lines: Sequence[str],
    cursor: Cursor,
    *,
    context_tokens: int = 1024,
    selected: tuple[Cursor, Cursor, str] | None = None,
    text: str | None = None,
) -> Site:
    """Build the infill site at `cursor`; `selected` is a selectedCompletionInfo (start, end, text)."""
    line = content(lines[cursor.line]) if cursor.line < len(lines) else ""
    before, after = line[: cursor.index], line[cursor.index :]
    start, typed = cursor, ""
    if selected is not None and selected[0].line == cursor.line and selected[0].offset <= cursor.offset:
        start, typed = selected[0], selected[2]
        before = line[: start.index] + typed
        after = line[max(selected[1].index, cursor.index) :] if selected[1].line == cursor.line else after
    if typed:  # items must use the selected completion's range exactly
        closers, end = "", selected[1] if selected[1].line == cursor.line else cursor  # type: ignore[index]
    else:
        closers = after.rstrip() if after.strip() and _AUTO_CLOSED.match(after) else ""
        index = cursor.index + len(closers)
        end = Cursor(cursor.line, index, cursor.offset - cursor.index + index)
    text = "".join(lines) if text is None else text
    line_start = start.offset - start.index
    prefix = prefix_window(text, line_start, context_tokens) + before
    suffix = after + suffix_window(text, cursor.offset - cursor.index + len(line), context_tokens)
    prev_lines = [content(ln) for ln in lines[max(0, cursor.line - 50) : cursor.line]][::-1]
    next_lines = [content(ln) for ln in lines[cursor.line + 1 : cursor.line + 50]]
    return Site(
        prefix=to_model_text(prefix),
        suffix=to_model_text(suffix),
        start=start,
        end=end,
        typed=typed,
        closers=closers,
        single_line=not is_multiline_site(before, after, prev_lines, next_lines),
        line_before=before,
    )


def word_before(line_before: str) -> str:
    """The identifier characters right before the cursor (what a completion popup filters on)."""
    i = len(line_before)
    while i > 0 and _WORD_CHAR.match(line_before[i - 1]):
        i -= 1
    return line_before[i:]
