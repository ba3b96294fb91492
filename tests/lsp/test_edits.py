"""Unit tests of dg_lsp.edits: items and edits from results (no server)."""

from __future__ import annotations

from lsprotocol import types as t

from dg_lsp.context import Cursor, locate, site_at
from dg_lsp.edits import (
    clean_fill,
    common_ends,
    completion_item,
    document_text,
    inline_items,
    keep_line_ends,
    replace_edit,
    workspace_edit,
)


def lines_of(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def test_inline_items_are_distinct_non_empty_and_carry_closers():
    lines = lines_of("f()\n")
    site = site_at(lines, locate(lines, 0, 2))
    shown = inline_items(lines, site, ["x", "x", "  ", "\x00y\x1b", "z"], limit=3)
    items = shown.items
    assert [i.insert_text for i in items] == ["x)", "y)", "z)"]
    assert shown.fills == ["x", "y", "z"]  # what the typing cache remembers: without the closer
    pos = t.Position
    assert items[0].range == t.Range(start=pos(line=0, character=2), end=pos(line=0, character=3))
    assert items[0].command.command == "dg.acceptedCompletion"


def test_fill_that_is_the_rest_of_the_line_is_dropped():
    """The runtime trims what repeats the suffix (runtime.text); what is left to drop here is a
    fill with nothing to show: blank, or the rest of the line itself."""
    lines = lines_of("x = foo(a)\n")
    site = site_at(lines, locate(lines, 0, 4))
    assert clean_fill("foo(a)", site) is None
    assert clean_fill(" \t\n", site) is None
    assert clean_fill("bar + foo(a)", site) == "bar + foo(a)"
    lines = lines_of("def f():\n    \n")
    site = site_at(lines, locate(lines, 1, 4))
    assert clean_fill("x = 1\n    return x\n\n", site) == "x = 1\n    return x"


def test_crlf_and_utf16_in_items():
    lines = lines_of("if 😀:\r\n    \r\n")
    site = site_at(lines, locate(lines, 1, 4))
    assert not site.single_line
    (item,) = inline_items(lines, site, ["a\nb"], eol="\r\n").items
    assert item.insert_text == "a\r\nb"
    lines = lines_of("s = '😀' + \n")
    cur = locate(lines, 0, 11)
    site = site_at(lines, cur)
    (item,) = inline_items(lines, site, ["x"], encoding="utf-16").items
    assert item.range.start.character == 11
    (item,) = inline_items(lines, site, ["x"], encoding="utf-8").items
    assert item.range.start.character == 13


def test_selected_completion_items_start_with_the_selected_text():
    lines = lines_of("os.pa\n")
    sel = (locate(lines, 0, 3), locate(lines, 0, 5), "path")
    site = site_at(lines, locate(lines, 0, 5), selected=sel)
    (item,) = inline_items(lines, site, [".join"]).items
    assert item.insert_text == "path.join"
    assert item.range.start.character == 3 and item.range.end.character == 5


def test_completion_item_edits_from_the_word_start():
    lines = lines_of("x = os.pa\n")
    site = site_at(lines, locate(lines, 0, 9))
    item = completion_item(lines, site, "th.join(a, b)")
    assert item is not None
    assert item.text_edit.new_text == "path.join(a, b)"
    assert item.text_edit.range.start.character == 7
    assert item.filter_text.startswith("pa") and item.label.startswith("path.join")
    assert completion_item(lines, site, "   ") is None


def test_common_ends_and_shrunk_edit():
    assert common_ends("abcXdef", "abcYYdef") == (3, 3)
    assert common_ends("aaa", "aaaa") == (3, 0)
    lines = lines_of("one two\r\nthree\r\n")
    old = "".join(lines)
    edit = replace_edit(lines, Cursor(0, 0, 0), locate(lines, 2, 0), old, "one TWO\nthree\n", eol="\r\n")
    assert edit.new_text == "TWO"
    assert edit.range == t.Range(start=t.Position(line=0, character=4), end=t.Position(line=0, character=7))
    edit = replace_edit(lines, Cursor(0, 4, 4), Cursor(0, 7, 7), "two", "a\nb", eol="\r\n", shrink=False)
    assert edit.new_text == "a\r\nb"


def test_document_text_and_workspace_edit():
    assert document_text("a\nb\r\nc", "\r\n") == "a\r\nb\r\nc"
    e = t.TextEdit(range=t.Range(start=t.Position(line=0, character=0), end=t.Position(line=0, character=0)),
                   new_text="x")
    versioned = workspace_edit("file:///a", 3, [e], document_changes=True)
    assert versioned.document_changes[0].text_document.version == 3
    plain = workspace_edit("file:///a", 3, [e], document_changes=False)
    assert plain.changes == {"file:///a": [e]}


def test_a_fill_keeps_the_selections_line_ends():
    """A line-wise fill of one line must not add a blank line (issue 15, item 10)."""
    assert keep_line_ends("    total = a + b", '    """\n') == '    """'
    assert keep_line_ends("x\n", "y") == "y\n"
    assert keep_line_ends("x\r\n", "y\n\n") == "y\n"  # edits.document_text puts the CRLF back
