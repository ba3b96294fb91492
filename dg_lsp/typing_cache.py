"""The last suggestions shown per document, answered again while the user types them.

Typing the first characters of a shown suggestion asks for the same suggestion
again; the model is not needed for that.  Counters for `dg.stats` live here too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Shown:
    anchor: int
    before: str
    after: str
    fills: list[str]


class TypingCache:
    """The last suggestions shown per document, answered again while the user types them.

    `remember` stores the fills (document text) shown at `anchor`; `lookup`
    succeeds when the text between the anchor and the cursor is a prefix of a
    fill and the text around it is unchanged, and returns the fills' rest.
    """

    WINDOW = 512

    def __init__(self) -> None:
        self._shown: dict[str, _Shown] = {}
        self.lookups = 0
        self.hits = 0

    def remember(self, uri: str, text: str, anchor: int, fills: list[str]) -> None:
        if not fills:
            self._shown.pop(uri, None)
            return
        self._shown[uri] = _Shown(
            anchor,
            text[max(0, anchor - self.WINDOW) : anchor],
            text[anchor : anchor + self.WINDOW],
            fills,
        )

    def lookup(self, uri: str, text: str, offset: int) -> list[str] | None:
        self.lookups += 1
        rest = self._lookup(uri, text, offset)
        self.hits += rest is not None
        return rest

    def _lookup(self, uri: str, text: str, offset: int) -> list[str] | None:
        s = self._shown.get(uri)
        if s is None or offset <= s.anchor:
            return None
        if text[s.anchor - len(s.before) : s.anchor] != s.before:
            return None
        typed = text[s.anchor : offset]
        rest = [f[len(typed) :] for f in s.fills if len(f) > len(typed) and f.startswith(typed)]
        rest = [r for r in rest if r.strip()]
        if not rest or text[offset : offset + len(s.after)] != s.after[: len(text) - offset]:
            return None
        return rest

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)

    def stats(self) -> dict[str, int]:
        return {"typingLookups": self.lookups, "typingHits": self.hits}
