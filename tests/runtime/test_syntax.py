"""The parse check of line drafts (runtime/syntax.py): a draft that breaks the code around the cursor
is dropped; where no draft parses (an edit under way elsewhere, another language) nothing is."""

from runtime.retrieval import Draft, keep_parsing, line_drafts
from runtime.syntax import WINDOW_ROWS, draft_check


def test_the_window_parses_with_the_right_line_only():
    prefix = "import os\n\n\ndef f(x):\n    if x:\n        return 1\n"
    check = draft_check(prefix, "\n    return 2\n\n\ndef g():\n    pass\n")
    assert check is not None
    assert check("    else:\n        return 3") and check("    y = 1")
    assert not check("    from __future__ import annotations")  # only at the top of a module
    assert not check("    )")  # no bracket is open
    assert not check("    except ValueError:")  # no try above
    top = draft_check("import os\n", "\n")  # compiled, not only parsed: what the compiler refuses too
    assert top is not None and top("x = os.sep") and not top("return x") and not top("break")
    mid = draft_check("def f(x):\n    y = 1\n    return max(x", "\n")
    assert mid is not None and mid(", 0)") and not mid(", 0")


def test_at_an_empty_body_an_opener_or_an_open_bracket_is_not_judged():
    """The cursor's line is the whole body of the block above: the code is not whole yet, so a
    draft that opens a block (its body not written) or leaves a bracket open passes; others are
    checked as before."""
    body = draft_check("def f(xs):\n    ", "\n")
    assert body is not None
    assert body("for x in xs:") and body("return max(") and body("return 1")
    assert not body(")") and not body("else:")
    assert body('"""Sum the numbers.') and body('"""')  # a docstring begun: its rest is not written
    assert body("# the largest first")  # a comment: the statements come after it


def test_the_window_runs_from_the_statement_above_to_the_next_one():
    """Another function's broken code does not count; a broken line inside the window makes every
    draft fail (then nothing is dropped)."""
    prefix = "def broken(:\n    pass\n\n\ndef f(x):\n    y = x\n"
    check = draft_check(prefix, "\n\n\ndef h(\n")
    assert check is not None and check("    return y")
    inside = draft_check("def f(x):\n    y = (x\n", "\n    return y\n")
    assert inside is not None and not inside("    z = 1")
    assert draft_check("        x = 1\n" * (WINDOW_ROWS + 5), "\n") is None  # no start in reach


def test_line_drafts_drop_what_does_not_parse_and_keep_all_when_nothing_does():
    other = "def g(x):\n    try:\n        y = 1\n    except KeyError:\n        pass\n\n\n"
    other += "def k(x):\n    y = 1\n    z = y\n\n\n"
    cursor = other + "def f(x):\n    y = 1\n    "
    texts = [d.text for d in line_drafts(cursor, "\n    return y\n")]
    assert "z = y" in texts and "except KeyError:" not in texts  # f has no try for it
    assert "except KeyError:" in [d.text for d in line_drafts(cursor, "\n    return y\n", document="f.js")]
    drafts = [Draft("a(", 2.0, "follows", "file"), Draft("b(", 1.0, "follows", "file")]
    assert keep_parsing(drafts, lambda text: False, 4) == drafts  # none parses: the check knows nothing
    assert keep_parsing(drafts, lambda text: text == "b(", 4) == drafts[1:]
    assert keep_parsing(drafts, None, 1) == drafts[:1]
