"""Which drafts leave the code around the cursor valid Python: the parse check of line drafts.

    prefix, suffix -> the statement around the cursor (from the nearest line above that starts one
    at the left margin, down to the next such line below) -> for a draft: that window with the
    cursor line completed by it, compiled

A retrieved line can be one that never fits where the cursor is: `from __future__ import
annotations` inside a function, `else:` with no `if` above it, `)` with no bracket open. The window
compiles with the right line in it whenever the code around the cursor is whole, so a draft that
breaks it is wrong; when no draft parses (the user is in the middle of an edit elsewhere in the window, a
file in another language, a window cut short) nothing is known and nothing is dropped. At an empty
body (the cursor's line is the whole body of the block above) the code is not whole yet: there a draft
that opens a block is compiled with a `pass` for its body, and a comment or one that leaves a bracket
or a triple-quoted string open is not judged.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

WINDOW_ROWS = 200
"""How far above and below the cursor the window may reach."""
_GOES_ON = re.compile(r"([)\]}]|else\b|elif\b|except\b|finally\b|#)")
"""Lines at the left margin that continue a statement rather than start the next one (or comments)."""
_OPENER = re.compile(r":\s*(#.*)?$")
_TRIPLE = re.compile(r"\"\"\"|'''")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"#.*")


def draft_check(prefix: str, suffix: str) -> Callable[[str], bool] | None:
    """A test of a draft for the cursor between `prefix` and `suffix`: whether the window around the
    cursor parses with the cursor line completed by it.  None when the window has no start (no line
    at the left margin within `WINDOW_ROWS` above: a long class, a document cut short)."""
    before = prefix.rsplit("\n", WINDOW_ROWS + 1)  # only the rows in reach: the prefix may be long
    after = suffix.split("\n", WINDOW_ROWS + 1)[: WINDOW_ROWS + 1]
    head, tail = before[-1], after[0]
    above = before[:-1][-WINDOW_ROWS:]
    start = next((j for j in range(len(above) - 1, -1, -1) if _starts(above[j])), None)
    if start is None:
        return None
    top = above[start:]
    bottom = []
    for line in after[1 : WINDOW_ROWS + 1]:
        if _starts(line):
            break
        bottom.append(line)
    # the cursor's line is the whole body of the block the line above opens: the code is not whole yet
    opener = next((ln for ln in reversed(top) if ln.strip()), "")
    empty_body = bool(_OPENER.search(opener)) and not _deeper(opener, bottom)

    def parses(text: str) -> bool:
        line = head + text + tail
        if _compiles([*top, line, *bottom]):
            return True
        if not empty_body:
            return False
        if len(_TRIPLE.findall(line)) % 2 or line.lstrip().startswith("#"):  # a docstring begun, a comment:
            return True  # the body's statements are not written yet
        if _OPENER.search(line) and not _deeper(line, bottom):  # a block opener whose body is not written
            lead = _lead(line)
            return _compiles([*top, line, lead + ("\t" if "\t" in lead else "    ") + "pass", *bottom])
        return opens_block(line) and not _OPENER.search(line)  # an open bracket: the rest is not written

    return parses


def _compiles(rows: list[str]) -> bool:
    """Whether `rows` compile: not only parse, the compiler also places `from __future__`, `return`
    and `break`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile("\n".join(rows) + "\n", "<draft>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return False
    return True


def _deeper(line: str, below: list[str]) -> bool:
    """Whether the first non-blank line of `below` is deeper than `line` (a body is there)."""
    nxt = next((ln for ln in below if ln.strip()), None)
    return nxt is not None and _indent(nxt) > _indent(line)


def opens_block(line: str) -> bool:
    """Whether a line wants a deeper one after it: it ends with a colon or a backslash, or leaves a
    bracket open (string literals and comments aside)."""
    code = _COMMENT.sub("", _STRING.sub('""', line)).rstrip()
    if code.endswith((":", "\\")):
        return True
    return sum(map(code.count, "([{")) > sum(map(code.count, ")]}"))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _lead(line: str) -> str:
    return line[: _indent(line)]


def _starts(line: str) -> bool:
    """Whether `line` starts a statement at the left margin."""
    return bool(line) and not line[0].isspace() and not _GOES_ON.match(line)
