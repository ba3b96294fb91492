"""Unit tests of dg_lsp.context: positions, clamping, site building (no server)."""

from __future__ import annotations

import pytest

from dg_lsp.context import (
    Cursor,
    eol_of,
    index_of_units,
    is_multiline_site,
    locate,
    prefix_window,
    site_at,
    to_model_text,
    units,
    word_before,
)


def lines_of(text: str) -> list[str]:
    return text.splitlines(keepends=True)


@pytest.mark.parametrize(
    ("text", "utf8", "utf16", "utf32"),
    [("abc", 3, 3, 3), ("漢字", 6, 2, 2), ("😀", 4, 2, 1), ("a😀b", 6, 4, 3), ("é", 2, 1, 1)],
)
def test_units(text, utf8, utf16, utf32):
    assert (units(text, "utf-8"), units(text, "utf-16"), units(text, "utf-32")) == (utf8, utf16, utf32)


def test_index_of_units_snaps_inside_a_surrogate_pair_to_the_character_start():
    line = "a😀b"
    assert index_of_units(line, 1) == 1
    assert index_of_units(line, 2) == 1  # inside the pair
    assert index_of_units(line, 3) == 2
    assert index_of_units(line, 99) == 3
    assert index_of_units(line, 3, "utf-8") == 1
    assert index_of_units(line, 5, "utf-8") == 2


def test_locate_clamps_lines_and_characters():
    lines = lines_of("ab\r\ncd\n")
    assert locate(lines, 0, 99) == Cursor(0, 2, 2)  # before the \r
    assert locate(lines, 1, 1) == Cursor(1, 1, 5)
    assert locate(lines, 7, 3) == Cursor(2, 0, 7)  # past the end: the empty last line
    assert locate(lines_of("ab"), 5, 5) == Cursor(0, 2, 2)
    assert locate(lines, -1, 4) == Cursor(0, 0, 0)
    assert locate([], 3, 3) == Cursor(0, 0, 0)


def test_locate_with_emoji_and_cjk_in_utf16():
    lines = lines_of('s = "😀漢"\n')
    assert locate(lines, 0, 7).index == 6  # 5 + 2 units for the emoji -> after it
    assert locate(lines, 0, 8).index == 7  # after 漢


def test_eol_and_model_text():
    assert eol_of(lines_of("a\r\nb")) == "\r\n"
    assert eol_of(lines_of("a\nb")) == "\n"
    assert eol_of(["a"]) == "\n"
    assert to_model_text("a\r\nb\rc") == "a\nb\nc"
    assert to_model_text("x\udcffy") == "x?y"


@pytest.mark.parametrize(
    ("before", "after", "prev", "nxt", "multi"),
    [
        ("    ", "", ["def f():"], [""], True),  # blank line of an empty body
        ("    ", "", ["def f():"], ["    return 1"], False),  # body already written
        ("    ", "", ["x = 1"], [], False),  # blank line, no opener
        ("if x:", "", [], [], True),  # right after a block opener
        ("function f() {", "", [], [], True),
        ("x = f(", ")", [], [], False),  # closers right of the cursor: rest of line
        ("print('hi')", "", [], [], False),
    ],
)
def test_multiline_choice(before, after, prev, nxt, multi):
    assert is_multiline_site(before, after, prev, nxt) is multi


def test_site_covers_auto_closed_characters():
    lines = lines_of('print(len(""))\nnext\n')
    site = site_at(lines, locate(lines, 0, 11))
    assert site.closers == '"))'
    assert (site.start.index, site.end.index) == (11, 14)
    assert site.prefix == 'print(len("' and site.suffix.startswith('"))\nnext')
    assert site.single_line


def test_site_does_not_cover_real_code_right_of_the_cursor():
    lines = lines_of("x = foo + bar\n")
    site = site_at(lines, locate(lines, 0, 4))
    assert site.closers == "" and site.end == site.start


def test_site_with_selected_completion_uses_its_range_and_text():
    lines = lines_of("os.pa\n")
    sel = (locate(lines, 0, 3), locate(lines, 0, 5), "path")
    site = site_at(lines, locate(lines, 0, 5), selected=sel)
    assert site.typed == "path" and site.prefix == "os.path"
    assert (site.start.index, site.end.index) == (3, 5)
    assert site.closers == ""


def test_crlf_site_gives_the_model_lf():
    lines = lines_of("a = 1\r\nb = \r\nc\r\n")
    site = site_at(lines, locate(lines, 1, 4))
    assert "\r" not in site.prefix + site.suffix
    assert site.prefix == "a = 1\nb = " and site.suffix.startswith("\nc")


def test_prefix_window_is_stable_while_typing():
    text = "".join(f"line {i}\n" for i in range(5000))
    a = prefix_window(text, 30000, 256)
    b = prefix_window(text + "xyz", 30003, 256)
    assert a.startswith("line ") and b.startswith(a[:100])
    assert len(a) <= 256 * 8 + 4096


def test_word_before():
    assert word_before("x = os.pa") == "pa"
    assert word_before("foo(") == ""
