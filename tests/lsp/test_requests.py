"""Unit tests of dg_lsp.requests: the one place a site and the settings become InfillRequests."""

from __future__ import annotations

import msgspec
import pytest

from dg_lsp.context import locate, site_at
from dg_lsp.markdown import RewritePlan
from dg_lsp.requests import (
    SINGLE_LINE_MAX_TOKENS,
    inline_requests,
    offered_fills,
    rewrite_request,
    selection_request,
)
from dg_lsp.settings import Settings
from runtime.retrieval import Draft
from runtime.types import BadRequest, InfillRequest

SETTINGS = Settings(max_tokens=100, context_tokens=512, automatic_budget_ms=150, invoked_budget_ms=900)


def site(text: str, line: int, character: int):
    lines = text.splitlines(keepends=True)
    return site_at(lines, locate(lines, line, character), context_tokens=512)


def test_automatic_request_follows_the_site():
    block = site("def f():\n    \n", 1, 4)
    assert not block.single_line
    [req] = inline_requests(block, SETTINGS, invoked=False)
    assert req.max_tokens == 100 and not req.single_line and req.deadline_ms == 150
    line = site("x = \n", 0, 4)
    [req] = inline_requests(line, SETTINGS, invoked=False)
    assert req.single_line and req.max_tokens == SINGLE_LINE_MAX_TOKENS
    assert req.prefix == "x = " and req.suffix == "\n" and req.policy == "adaptive"


def test_automatic_at_an_empty_body_asks_for_the_drafted_line():
    """After an opener and Enter (a blank line, the body empty) the automatic request is the line with
    the drafts when retrieval found any, else the block; after the opener itself the block stays."""
    drafts = [Draft("return True", 4.0, "follows", "library")]
    body = site("def f(x):\n    if x:\n        \n", 2, 8)
    assert not body.single_line
    [req] = inline_requests(body, SETTINGS, invoked=False, drafts=drafts)
    assert req.single_line and req.drafts == (("return True", 4.0),)
    assert req.max_tokens == SINGLE_LINE_MAX_TOKENS
    [req] = inline_requests(body, SETTINGS, invoked=False)
    assert not req.single_line and req.drafts == ()
    off = msgspec.structs.replace(SETTINGS, drafts=False)
    [req] = inline_requests(body, off, invoked=False, drafts=drafts)
    assert not req.single_line and req.drafts == ()
    opener = site("def f(x):\n    if x:\n", 1, 9)  # the cursor right after the colon
    assert not opener.single_line
    [req] = inline_requests(opener, SETTINGS, invoked=False, drafts=drafts)
    assert not req.single_line and req.drafts == ()


def test_invoked_requests():
    block = site("def f():\n    \n", 1, 4)
    reqs = inline_requests(block, SETTINGS, invoked=True)
    assert [r.single_line for r in reqs] == [True, False, False]
    assert [r.temperature for r in reqs] == [0.0, 0.0, 0.8] and reqs[-1].seed == 1
    assert all(r.deadline_ms == 900 for r in reqs)
    line = site("x = \n", 0, 4)
    reqs = inline_requests(line, SETTINGS, invoked=True)
    # a single-line site gets single-line suggestions only: the runtime cuts the line once
    assert [r.single_line for r in reqs] == [True, True]
    assert [r.temperature for r in reqs] == [0.0, 0.8]


def test_invoked_offers_the_other_drafts_before_the_sample():
    drafts = [Draft("a(1)", 4.0, "follows", "file"), Draft("b(2)", 2.0, "prefix", "workspace")]
    block = site("def f():\n    \n", 1, 4)
    reqs = inline_requests(block, SETTINGS, invoked=True, drafts=drafts)
    offered = offered_fills(["a(1)", "block", "sampled"], reqs, invoked=True)
    assert offered == ["a(1)", "block", "a(1)", "b(2)", "sampled"]  # repeats go when items are made
    # a superseded request leaves fewer answers: the drafts follow those there are
    assert offered_fills(["a(1)"], reqs, invoked=True) == ["a(1)", "a(1)", "b(2)"]
    [auto] = inline_requests(block, SETTINGS, invoked=False, drafts=drafts)
    assert offered_fills(["x"], [auto], invoked=False) == ["x"]
    assert offered_fills([], [], invoked=True) == []
    off = msgspec.structs.replace(SETTINGS, drafts=False)  # drafts turned off: none offered either
    without = inline_requests(block, off, invoked=True, drafts=drafts)
    assert offered_fills(["s"], without, invoked=True) == ["s"]


def test_snippets_ride_on_every_inline_request_unless_turned_off():
    import msgspec

    snippets = (("util.py", "def helper():\n    return 1"),)
    block = site("def f():\n    \n", 1, 4)
    reqs = inline_requests(block, SETTINGS, invoked=True, snippets=snippets)
    assert all(r.snippets == snippets and r.snippet_tokens == SETTINGS.snippet_tokens == 512 for r in reqs)
    off = msgspec.structs.replace(SETTINGS, snippets=False)
    assert all(r.snippets == () for r in inline_requests(block, off, invoked=True, snippets=snippets))


def test_selection_request():
    text = "a = compute(1)\n"
    sel = selection_request(text, 4, 11, SETTINGS, canvas_len=32)
    assert sel.prefix == "a = " and sel.suffix == "(1)\n" and sel.canvas_tokens == 11
    assert sel.max_tokens == 2 * 7 + 8 and sel.deadline_ms == 900
    assert selection_request("x" * 100, 0, 100, SETTINGS, canvas_len=32).canvas_tokens == 32


def test_rewrite_request_drafts_the_span():
    plan = RewritePlan("# Title\n\nSome words here.\n", 0, 26)
    span = plan.spans[-1]
    req = rewrite_request(plan, span, SETTINGS)
    assert req.draft == plan.text[span.start : span.end] and req.remask == 0.5
    assert req.prefix == plan.text[: span.start]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"policy": "fast"}, "unknown policy"),
        ({"policy": "llada:steps=inf"}, "finite"),
        ({"policy": "threshold:tau=abc"}, "not a number"),
        ({"policy": "llada:steps=2.5"}, "whole number"),
        ({"remask": 2.0}, "remask"),
        ({"temperature": float("nan")}, "temperature"),
        ({"context_tokens": 4}, "context_tokens"),
        ({"deadline_ms": 0}, "deadline_ms"),
    ],
)
def test_a_request_checks_itself_once(fields, message):
    with pytest.raises(BadRequest, match=message):
        InfillRequest(prefix="", suffix="", **fields)


def test_the_feed_retrieves_snippets_once_per_line_above(tmp_path):
    """The server's workspace feed: snippets from another file; typing inside the cursor's line
    reuses the answer (no new retrieval), a new line above or an index change does not."""
    from dg_lsp.workspace import WorkspaceFeed

    feed = WorkspaceFeed()
    feed.index.update(str(tmp_path / "util.py"), "def load_config(path):\n    return parse_config(path)\n",
                      open_buffer=False)  # fmt: skip
    uri = (tmp_path / "main.py").as_uri()
    text = "config = load_config(path)\nvalue = parse_"
    first = feed.snippets(uri, text, len(text))
    assert [s.path for s in first] == ["util.py"]  # outside every folder: its name, not the full path
    assert feed.snippets(uri, text + "con", len(text) + 3) is first  # same lines above: reused
    other = "other_name = 1\nvalue = "
    assert feed.snippets(uri, other, len(other)) is not first
    feed.index.update(str(tmp_path / "b.py"), "x = 1\n", open_buffer=False)
    assert feed.snippets(uri, text, len(text)) is not first  # the index changed
