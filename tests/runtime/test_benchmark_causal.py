"""The causal-lines benchmark: its causal column is the runtime's causal line, finished as the request's
text; its table counts each column's right answers."""

import pytest

from benchmarks.causal_lines import COLUMNS, causal_text, searching, tally
from runtime.eval.heldout import task_request


@pytest.fixture(scope="module")
def shipped():
    """The shipped model (a random model seldom writes a line break, the trained one does)."""
    from runtime.load import load_embedded

    return load_embedded("default", threads=1, dtype="float32")


def test_the_causal_column_is_the_chooser_s_candidate(shipped):
    """Where the causal head ends a line, the chooser (the backend with the causal line) answers with
    either the canvas's text or this one; where it runs on past a canvas, the column is empty."""
    named = task_request(
        "class A:\n    def __init__(self, name):\n        self.name = ",
        "\n",
        single_line=True,
        context_tokens=320,
    )
    text = causal_text(shipped, named)
    assert text and "\n" not in text
    canvas = searching(shipped, causal_line=False, length_search=())
    chooser = searching(shipped, causal_line=True, length_search=())
    assert chooser.infill(named).text in {text, canvas.infill(named).text}
    runs_on = task_request(
        "def area(w, h):\n    return ", "\n\nprint(area(2, 3))\n", single_line=True, context_tokens=320
    )
    assert causal_text(shipped, runs_on) == ""


def test_the_table_counts_each_column():
    rows = [
        (True, False, True, True),
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
    ]
    table = tally(rows)
    assert [table[k] for k in COLUMNS] == [50, 25, 50, 75, 25]
