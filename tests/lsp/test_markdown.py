"""Unit tests of dg_lsp.markdown: segmentation and structure-preserving rewrite (no model)."""

from __future__ import annotations

import itertools
from pathlib import Path

from dg_lsp.markdown import RewritePlan, sanitize, segment

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "lsp" / "rewrite.md"


def prose(text: str) -> list[str]:
    return [text[s.start : s.end] for s in segment(text) if s.prose]


def test_spans_cover_the_text_exactly():
    text = FIXTURE.read_text()
    spans = segment(text)
    assert spans[0].start == 0 and spans[-1].end == len(text)
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))


def test_structure_is_fixed_and_words_are_prose():
    text = FIXTURE.read_text()
    words = prose(text)
    assert "Getting started with the server" in words  # heading text, marker fixed
    assert "Install the package with" in words and "first." in words  # around inline code
    assert "the settings page" in words  # link text is prose, its target is not
    assert "which weights are loaded" in words  # table cell
    joined = "\n".join(words)
    for fixed in ["# ", "`pip install dg-lsp`", "docs/settings.md", "https://example.com/docs",
                  "def keep_me", "return x", "indented code", "img/logo.png", "title: Fixture", "|---",
                  "[^1]", "1. ", "- [ ] "]:
        assert fixed not in joined, fixed


def test_heading_list_and_quote_markers():
    assert prose("## Title ##\n") == ["Title"]
    assert prose("- item one\n* item two\n10) item ten\n") == ["item one", "item two", "item ten"]
    assert prose("> > quoted text\n") == ["quoted text"]
    assert prose("```\nnot prose\n```\nprose\n") == ["prose"]
    assert prose("---\n\n***\n") == []


def test_sanitize_keeps_structure():
    assert sanitize("plain words", "new\nwords `code` [x]", False) == "new words code x"
    assert sanitize("plain words", "# Heading now", True) == "Heading now"
    assert sanitize("plain words", "- - -", True) == "plain words"
    assert sanitize("cell", "a | b", False, in_table=True) == "a  b"
    assert sanitize("plain words", "   ", False) == "plain words"


def test_rewrite_plan_replaces_only_prose():
    text = "# Title here\n\nSome `code` and words.\n"
    plan = RewritePlan(text, 0, len(text))
    assert [text[s.start : s.end] for s in plan.spans] == ["Title here", "Some", "and words."]
    befores = []
    for span in plan.spans:
        befores.append(plan.before(span))  # the rewritten text before the span is its context
        plan.accept(span, "X")
    assert befores == ["# ", "# X\n\n", "# X\n\nX `code` "]
    assert plan.result() == "# X\n\nX `code` X\n"


def test_rewrite_plan_respects_the_range():
    text = "first line\n\nsecond line\n"
    start = text.index("second")
    plan = RewritePlan(text, start, len(text))
    (span,) = plan.spans
    plan.accept(span, "changed")
    assert plan.result() == "changed\n"
