"""Held-out tasks: deterministic, character-exact cuts of held-out files, scored by exact match."""

import pytest

from runtime.eval.heldout import KINDS, evaluate, is_exact, iter_tasks, request_for
from runtime.train.corpus import SourceFile

TEXT = "".join(
    f"def parse_{i}(data):\n    value = data.get('item_{i}')\n    if value:\n        return value * {i}\n"
    "    return None\n\n"
    for i in range(30)
)
DOCS = [SourceFile("stdlib:json", "PSF-2.0", "json/fake.py", TEXT)]


def test_tasks_cut_documents_exactly_and_are_deterministic():
    tasks = list(iter_tasks(20, docs=DOCS, seed=1))
    assert tasks == list(iter_tasks(20, docs=DOCS, seed=1))
    assert tasks != list(iter_tasks(20, docs=DOCS, seed=2))
    assert [t.kind for t in tasks] == [k for k in KINDS for _ in range(20)]
    for t in tasks:
        assert t.prefix + t.middle + t.suffix == TEXT
        assert t.source.startswith("stdlib:json:json/fake.py:")
        if t.kind == "block":
            assert t.middle.count("\n") >= 2 and (t.prefix == "" or t.prefix.endswith("\n"))
        else:
            assert "\n" not in t.middle and len(t.middle.strip()) >= 2 and t.suffix.startswith("\n")
        if t.kind == "line_rest":
            assert t.prefix.endswith("    ") or t.prefix.endswith("\n")
            assert not t.middle[0].isspace()


def test_mid_line_cursor_is_inside_the_code():
    for t in iter_tasks(50, kinds=("mid_line",), docs=DOCS):
        line_start = t.prefix.rsplit("\n", 1)[-1]
        assert line_start.strip(), "the cursor is after some code on its line"


def test_request_shape():
    t = next(iter_tasks(1, kinds=("line_rest",), docs=DOCS))
    r = request_for(t, 256)
    assert r.single_line and r.context_tokens == 256 and r.prefix == t.prefix
    b = next(iter_tasks(1, kinds=("block",), docs=DOCS))
    assert not request_for(b, 256).single_line


def test_exact_match_scoring(tiny_backend):
    assert is_exact("return x  ", "return x") and not is_exact("return y", "return x")
    tasks = list(iter_tasks(3, docs=DOCS))
    res = evaluate(tiny_backend, tasks, context_tokens=128)
    assert set(res) == {*KINDS, "all_single_line"}
    assert res["all_single_line"]["n"] == 6
    assert all(0.0 <= r["exact_match"] <= 1.0 for r in res.values())


def test_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown held-out task kind"):
        list(iter_tasks(1, kinds=("paragraph",), docs=DOCS))


def test_each_package_is_its_own_workspace_and_the_task_file_is_left_out(tiny_backend):
    """A task's own file must not give away its answer: its entry is left out of the index, so
    drafts come from its prefix and suffix and the package's other files only."""
    from runtime.eval.heldout import HeldoutTask, package_indexes, workspace_request

    other = SourceFile("stdlib:json", "PSF-2.0", "json/other.py", "    value = data.get('zz_other')\n" * 5)
    email = SourceFile("stdlib:email", "PSF-2.0", "email/x.py", "    value = data.get('em')\n")
    indexes = package_indexes([*DOCS, other, email])
    assert set(indexes) == {"stdlib:json", "stdlib:email"}
    cut = TEXT.index("    value = data.get('item_7')") + len("    value = data")
    end = TEXT.index("\n", cut)
    task = HeldoutTask(TEXT[:cut], TEXT[end:], TEXT[cut:end], "mid_line", "stdlib:json:json/fake.py:44")
    texts = [text for text, _ in workspace_request(task, request_for(task, 128), indexes, limit=32).drafts]
    assert ".get('zz_other')" in texts and ".get('em')" not in texts  # the same package only
    assert ".get('item_7')" not in texts  # the answer is only in the task's own file on disk
    res = evaluate(tiny_backend, [task], context_tokens=128, indexes=indexes)
    assert res["mid_line"]["n"] == 1


def test_a_model_that_reads_snippets_gets_them_from_its_package():
    from runtime.eval.heldout import HeldoutTask, package_indexes, workspace_request

    other = SourceFile("stdlib:json", "PSF-2.0", "json/other.py", "    value = data.get('zz_other')\n" * 5)
    email = SourceFile("stdlib:email", "PSF-2.0", "email/x.py", "    value = data.get('em')\n")
    indexes = package_indexes([*DOCS, other, email])
    cut = TEXT.index("    value = data.get('item_7')") + len("    value = data")
    end = TEXT.index("\n", cut)
    task = HeldoutTask(TEXT[:cut], TEXT[end:], TEXT[cut:end], "mid_line", "stdlib:json:json/fake.py:44")
    plain = workspace_request(task, request_for(task, 128), indexes)
    assert plain.snippets == ()  # a model without the layout: drafts only
    req = workspace_request(task, request_for(task, 128), indexes, snippet_tokens=96)
    assert req.snippet_tokens == 96 and "json/other.py" in [path for path, _ in req.snippets]
    assert all("'em'" not in text for _, text in req.snippets)  # the same package only


def test_the_eval_adds_rows_for_the_other_corpus_held_out_packages(tiny_backend, tmp_path, monkeypatch):
    """`python -m runtime.eval --third-party CORPUS`: rows, alone and with the workspace, for the
    packages that corpus holds out and the first does not; none (and a note) when it is absent."""
    import argparse

    from runtime.eval import __main__ as ev
    from runtime.library import LineLibrary
    from runtime.train.corpus import write_shards

    first = SourceFile("stdlib:json", "PSF-2.0", "json/fake.py", TEXT)
    third = SourceFile("site:thirdparty", "MIT", "thirdparty/core.py", TEXT.replace("item", "thing"))
    write_shards([first, third], tmp_path / "v2", "heldout")
    monkeypatch.setattr(ev.heldout, "heldout_documents", lambda corpus=None: [first])
    assert ev.heldout.third_party_documents(tmp_path / "v2") == [third]  # `line_drafts.py --third-party`
    rows = []
    a = argparse.Namespace(third_party=tmp_path / "v2", heldout_n=2, policy="adaptive")
    ev.third_party_rows(tiny_backend, a, 128, lambda *row: rows.append(row), LineLibrary([]))
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("held-out exact match: single-line, thirdparty", "unknown", 4),
        ("held-out exact match: single-line, thirdparty", "workspace", 4),
    ]
    a.third_party = tmp_path / "absent"
    rows.clear()
    ev.third_party_rows(tiny_backend, a, 128, lambda *row: rows.append(row), None)
    assert rows == []
