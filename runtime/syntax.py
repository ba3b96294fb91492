"""Which drafts leave the code around the cursor valid Python: the parse check of line drafts.

    prefix, suffix -> the statement around the cursor (from the nearest line above that starts one
    at the left margin, down to the next such line below) -> for a draft: that window with the
    cursor line completed by it, compiled

A retrieved line can be one that never fits where the cursor is: `from __future__ import
annotations` inside a function, `else:` with no `if` above it, `)` with no bracket open. The window
parses with the right line in it whenever the code around the cursor is whole, so a draft that breaks
it is wrong; when no draft parses (the user is in the middle of an edit elsewhere in the window, a
file in another language, a window cut short) nothing is known and nothing is dropped.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

WINDOW_ROWS = 200
"""How far above and below the cursor the window may reach."""
_GOES_ON = re.compile(r"([)\]}]|else\b|elif\b|except\b|finally\b|#)")
"""Lines at the left margin that continue a statement rather than start the next one (or comments)."""


def draft_check(prefix: str, suffix: str) -> Callable[[str], bool] | None:
    """A test of a draft for the cursor between `prefix` and `suffix`: whether the window around the
    cursor parses with the cursor line completed by it.  None when the window has no start (no line
    at the left margin within `WINDOW_ROWS` above: a long class, a document cut short)."""
    before, after = prefix.split("\n"), suffix.split("\n")
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

    def parses(text: str) -> bool:
        source = "\n".join([*top, head + text + tail, *bottom]) + "\n"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # compiled, not only parsed: the compiler places `from __future__`, `return`, `break`
                compile(source, "<draft>", "exec", dont_inherit=True)
            except (SyntaxError, ValueError):
                return False
        return True

    return parses


def _starts(line: str) -> bool:
    """Whether `line` starts a statement at the left margin."""
    return bool(line) and not line[0].isspace() and not _GOES_ON.match(line)
