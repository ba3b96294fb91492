"""The empty-body benchmark's tasks: a body cut out as an editor holds the file right after the opener
and Enter, the cursor after the new line's indentation, and the HumanEval filter for such sites."""

from benchmarks.empty_body import _cut, body_tasks, empty_body
from runtime.eval.humaneval import Problem
from runtime.train.corpus import SourceFile

TEXT = "def f(x):\n    if x:\n        y = 1\n        return y\n\n    return 0\n"


def doc(text: str = TEXT) -> SourceFile:
    return SourceFile(package="stdlib:demo", license="PSF", path="demo/a.py", text=text)


def test_a_body_is_cut_as_the_editor_holds_it():
    task = _cut(doc(), 1)  # `if x:`
    assert task is not None
    assert task.text == "def f(x):\n    if x:\n        \n\n    return 0\n"
    assert (task.line, task.character) == (2, 8)
    assert task.body == "y = 1\n        return y"  # the first line from the cursor on, the rest whole
    outer = _cut(doc(), 0)  # the function's body runs to the file's end
    assert outer is not None and outer.text == "def f(x):\n    \n"
    assert outer.body.startswith("if x:\n        y = 1") and outer.body.endswith("return 0")


def test_lines_that_open_no_body_give_no_task():
    assert _cut(doc(), 2) is None  # not followed by a deeper line
    assert _cut(doc("if x:\n\n    y = 1\n"), 0) is None  # a blank line first: not what Enter gives
    tasks = body_tasks([doc()], 10, seed=0)
    assert sorted(t.line for t in tasks) == [1, 2]  # the two openers, each once


def test_humaneval_sites_at_an_empty_body():
    def problem(prompt: str, suffix: str) -> Problem:
        return Problem("t", prompt, suffix, "", "", "f")

    assert empty_body(problem("def f(x):\n    if x:\n", "    return 0\n"))
    assert not empty_body(problem("def f(x):\n    if x:\n", "        y = 2\n    return 0\n"))  # a body below
    assert not empty_body(problem("def f(x):\n    y = 1\n", "    return y\n"))  # no opener above
