"""Structure-preserving Markdown rewrite (pure; the model call is the caller's).

`segment` splits a document into fixed spans (heading and list markers,
block quotes, code fences and their content, indented code, inline code,
link targets and URLs, images, HTML, table pipes, line breaks) and prose
spans (the words between them).  Only prose spans are re-denoised, each with
the text before and after it as context, so the structure is kept by
construction.  `sanitize` makes sure a rewritten prose span cannot create
structure either (no line breaks, backticks, pipes, brackets or a new list
marker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dg_lsp.context import split_lines


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    prose: bool


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HTML_BLOCK = re.compile(r"^ {0,3}<[a-zA-Z!/?]")
_RULE = re.compile(r"^ {0,3}(?:([-*_=])[ \t]*)(?:\1[ \t]*){2,}$|^ {0,3}=+[ \t]*$")
_LINK_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s")
_TABLE_DELIM = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_MARKER = re.compile(
    r"^([ \t]*(?:>[ \t]?)*[ \t]*)"
    r"(#{1,6}[ \t]+|[-*+][ \t]+(?:\[[ xX]\][ \t]+)?|\d{1,9}[.)][ \t]+(?:\[[ xX]\][ \t]+)?)?"
)
_HEADING_CLOSE = re.compile(r"[ \t]+#+[ \t]*$")
_INLINE_FIXED = re.compile(
    r"""(`+).*?(?<!`)\1(?!`)               # code span
    | !\[[^\]]*\]\([^)]*\)                # image, alt text included
    | \]\([^)]*\)                         # link target ](url "title")
    | \]\[[^\]]*\]                        # reference link label
    | \[\^[^\]]*\]                        # footnote
    | <[a-zA-Z/!?][^>]*>                  # autolink or inline HTML
    | (?:https?|ftp)://[^\s)>\]]+ | www\.[^\s)>\]]+   # bare URL
    | \$[^$\n]+\$                         # math
    | \\.                                 # escape
    | [*_~]+ | [\[\]|]                    # emphasis runs, link brackets, stray pipes
    """,
    re.VERBOSE,
)
_LETTER = re.compile(r"[^\W\d_]")


def segment(text: str) -> list[Span]:
    """Fixed and prose spans covering `text` exactly, in order, adjacent kinds merged."""
    out: list[Span] = []
    lines = split_lines(text)
    table = _table_lines(lines)
    pos = 0
    fence: str | None = None
    front = _front_matter_end(lines)
    prev_blank_or_code = True
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if i < front:
            kind = "fixed"
        elif fence is not None:
            kind = "fixed"
            m = _FENCE.match(body)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not body.strip(" `~"):
                fence = None
        elif m := _FENCE.match(body):
            kind, fence = "fixed", m.group(1)
        elif not body.strip() or _HTML_BLOCK.match(body) or _RULE.match(body) or _LINK_DEF.match(body):
            kind = "fixed"
        elif body.startswith(("    ", "\t")) and prev_blank_or_code:
            kind = "code"
        elif i in table:
            kind = "table"
        else:
            kind = "text"
        prev_blank_or_code = not body.strip() or kind == "code"
        if kind in ("fixed", "code"):
            out.append(Span(pos, pos + len(line), False))
        elif kind == "table":
            if _TABLE_DELIM.match(body):
                out.append(Span(pos, pos + len(line), False))
            else:
                _inline(body, pos, out)
                out.append(Span(pos + len(body), pos + len(line), False))
        else:
            m = _MARKER.match(body)
            head = m.end() if m else 0
            tail = len(body)
            if m and m.group(2) and m.group(2).startswith("#"):
                close = _HEADING_CLOSE.search(body, head)
                tail = close.start() if close else tail
            out.append(Span(pos, pos + head, False))
            _inline(body[head:tail], pos + head, out)
            out.append(Span(pos + tail, pos + len(line), False))
        pos += len(line)
    return _merge([s for s in out if s.end > s.start])


def _inline(s: str, base: int, out: list[Span]) -> None:
    """Split one line's text into fixed inline constructs and prose runs."""
    last = 0
    for m in _INLINE_FIXED.finditer(s):
        _prose(s[last : m.start()], base + last, out)
        out.append(Span(base + m.start(), base + m.end(), False))
        last = m.end()
    _prose(s[last:], base + last, out)


def _prose(s: str, base: int, out: list[Span]) -> None:
    """A run between fixed constructs: its outer whitespace stays fixed; no letters, no rewrite."""
    core = s.strip()
    if not core:
        out.append(Span(base, base + len(s), False))
        return
    lead = len(s) - len(s.lstrip())
    start, end = base + lead, base + lead + len(core)
    out.append(Span(base, start, False))
    out.append(Span(start, end, bool(_LETTER.search(core))))
    out.append(Span(end, base + len(s), False))


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for s in spans:
        if merged and merged[-1].prose == s.prose and merged[-1].end == s.start and not s.prose:
            merged[-1] = Span(merged[-1].start, s.end, False)
        else:
            merged.append(s)
    return merged


def _front_matter_end(lines: list[str]) -> int:
    if not lines or lines[0].rstrip("\r\n") not in ("---", "+++"):
        return 0
    marker = lines[0].rstrip("\r\n")
    for j in range(1, len(lines)):
        if lines[j].rstrip("\r\n") == marker:
            return j + 1
    return 0


def _table_lines(lines: list[str]) -> set[int]:
    rows: set[int] = set()
    for k in range(1, len(lines)):
        body = lines[k].rstrip("\r\n")
        if "|" in body and "-" in body and _TABLE_DELIM.match(body) and "|" in lines[k - 1]:
            rows.update((k - 1, k))
            j = k + 1
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                rows.add(j)
                j += 1
    return rows


_NEW_MARKER = re.compile(r"^(#{1,6}\s|[-*+]\s|\d{1,9}[.)]\s|>)")
_STRUCTURE_CHARS = str.maketrans({c: None for c in "`[]<>$\\"})


def sanitize(draft: str, new: str, at_line_start: bool, in_table: bool = False) -> str:
    """A rewritten prose span that cannot change the document's structure (else the draft)."""
    new = " ".join(new.replace("\r", "\n").split("\n"))
    new = new.translate(_STRUCTURE_CHARS)
    if in_table:
        new = new.replace("|", "")
    new = re.sub(r"[*_~]{1,}", lambda m: m.group(0) if m.group(0) in draft else "", new)
    new = re.sub(r"(?:https?|ftp)://|www\.", "", new)
    new = new.strip()
    if at_line_start:
        if _RULE.match(new):
            return draft
        while (m := _NEW_MARKER.match(new)) and not _NEW_MARKER.match(draft):
            new = new[m.end() :].lstrip()
        if new and not new.strip("-=*_+#> \t"):  # a setext underline or an empty marker
            return draft
    return new or draft


@dataclass
class RewritePlan:
    """Re-denoise the prose spans of `text[start:end]` one after the other.

    Each span sees the rewritten text before it and the original text after it.
    """

    text: str
    start: int
    end: int
    spans: list[Span] = field(init=False)
    _out: list[str] = field(init=False, default_factory=list)
    _pos: int = field(init=False)

    def __post_init__(self) -> None:
        inside = [s for s in segment(self.text) if s.start >= self.start and s.end <= self.end]
        self.spans = [s for s in inside if s.prose]
        self._pos = self.start

    def before(self, span: Span) -> str:
        """The document text before `span` as it now stands: rewritten spans included."""
        return self.text[: self.start] + "".join(self._out) + self.text[self._pos : span.start]

    def accept(self, span: Span, new: str | None) -> None:
        """Record the model's text for `span` (None keeps the original)."""
        draft = self.text[span.start : span.end]
        line_head = self.text[self.text.rfind("\n", 0, span.start) + 1 : span.start]
        marker = _MARKER.match(line_head)
        at_line_start = marker is not None and marker.end() == len(line_head)
        line_end = self.text.find("\n", span.end)
        in_table = "|" in line_head or "|" in self.text[span.end : line_end if line_end >= 0 else None]
        self._out.append(self.text[self._pos : span.start])
        self._out.append(draft if new is None else sanitize(draft, new, at_line_start, in_table))
        self._pos = span.end

    def result(self) -> str:
        """The new text of `text[start:end]`."""
        return "".join(self._out) + self.text[self._pos : self.end]
