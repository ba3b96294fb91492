"""Unit tests of runtime.workspace (the index), runtime.retrieval (line drafts) and
runtime.drafts (drafted canvases), with real files in tmp_path and the tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from runtime.drafts import DraftRules, draft_canvases, judge
from runtime.retrieval import line_drafts
from runtime.workspace import WorkspaceIndex, WorkspaceLimits, read_text_file


def test_folder_indexing_filters_what_a_user_expects(tmp_path):
    (tmp_path / ".gitignore").write_text("build/\n*.log\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x = 1\n")
    (tmp_path / "src" / "run.log").write_text("noise\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "gen.py").write_text("y = 2\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "m.js").write_text("z\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    (tmp_path / "big.py").write_text("a" * 5000)
    (tmp_path / "img.png").write_bytes(b"\x89PNG\x00\x00")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    index = WorkspaceIndex(WorkspaceLimits(max_file_bytes=4096))
    index.add_folder(tmp_path)
    assert index.keys() == [str(tmp_path / "src" / "a.py")]
    skipped = index.stats.skipped
    assert skipped["too-large"] == 1 and skipped["binary"] == 2 and skipped["ignored"] >= 4


def test_caps_on_files_and_bytes(tmp_path):
    for i in range(5):
        (tmp_path / f"f{i}.py").write_text(f"v{i} = {i}\n")
    index = WorkspaceIndex(WorkspaceLimits(max_files=3))
    index.add_folder(tmp_path)
    assert index.stats.documents == 3 and index.stats.skipped["cap"] == 2
    small = WorkspaceIndex(WorkspaceLimits(max_bytes=10))
    assert small.update("a", "12345") and not small.update("b", "123456789")


def test_a_file_deleted_while_indexing_is_skipped(tmp_path):
    for i in range(250):
        (tmp_path / f"f{i:03d}.py").write_text(f"v = {i}\n")
    index = WorkspaceIndex()

    def delete_the_rest(n: int, path: str) -> None:
        for p in sorted(tmp_path.glob("*.py"))[n:]:
            p.unlink()

    index.add_folder(tmp_path, progress=delete_the_rest)
    assert index.stats.documents == 100 and index.stats.skipped["unreadable"] == 150
    assert read_text_file(tmp_path / "missing.py", 100) == (None, "unreadable")


def test_open_buffers_win_over_the_disk_and_closing_gives_the_disk_back():
    index = WorkspaceIndex()
    index.update("f.py", "value = from_buffer()\n", open_buffer=True)
    index.update("f.py", "value = from_disk()\n", open_buffer=False)
    assert index.with_prefix("value = ") == [("value = from_buffer()", 1)]
    index.close_buffer("f.py", "value = from_disk()\n")
    assert index.with_prefix("value = ") == [("value = from_disk()", 1)]


def test_prefix_and_follower_queries_leave_one_document_out():
    index = WorkspaceIndex()
    index.update("a.py", "if x:\n    return compute(x)\nif x:\n\n    return compute(x)\n")
    index.update("b.py", "if x:\n    return other(x)\n")
    assert index.followers("if x:") == [("return compute(x)", 2), ("return other(x)", 1)]
    assert index.followers("if x:", exclude="a.py") == [("return other(x)", 1)]
    assert index.with_prefix("return c") == [("return compute(x)", 2)]
    assert index.with_prefix("return c", exclude="a.py") == []
    index.remove("a.py")
    assert index.with_prefix("return c") == []


def test_lines_containing_a_text_are_found_in_the_joined_and_the_recent_lines():
    """`containing` finds lines with the text anywhere in them, counted over the documents but the
    one left out, whether the lines were joined into the searched string or are still recent; a
    removed document's lines count no more, and `limit` bounds the lines looked at."""
    from runtime.workspace import RECENT_LINES

    index = WorkspaceIndex()
    index.update("a.py", "x = read(path, 'rb')\nread(path, 'rb')\ny = read(path)\n")
    index.update("b.py", "z = read(path, 'rb')\n")
    assert index.containing("read(path, ", exclude="a.py") == [("z = read(path, 'rb')", 1)]
    assert index.containing("(path, ", exclude="b.py") == [
        ("x = read(path, 'rb')", 1),
        ("read(path, 'rb')", 1),
    ]
    index.update("u.py", "s = 'h\u00e9llo w\u00f6rld \U0001f642'\nt = read(path, '\u00fc')\n")  # wider chars
    index.update("big.py", "\n".join(f"v{i} = read(path, {i})" for i in range(RECENT_LINES + 1)))
    joined = index.containing("read(path, 7", limit=10_000)  # the lines were joined: > RECENT_LINES new
    assert [line for line, _ in joined][:3] == [
        "v7 = read(path, 7)",
        "v70 = read(path, 70)",
        "v71 = read(path, 71)",
    ]
    assert index.containing("w\u00f6rld") == [
        ("s = 'h\u00e9llo w\u00f6rld \U0001f642'", 1)
    ]  # joined as UTF-8
    assert index.containing("read(path, '\u00fc") == [("t = read(path, '\u00fc')", 1)]
    index.update("c.py", "w = read(path, 7, 'recent')\n")  # one new line: still recent
    assert ("w = read(path, 7, 'recent')", 1) in index.containing("read(path, 7", limit=10_000)
    assert len(index.containing("read(path, ", limit=5)) == 5
    index.remove("big.py")
    assert index.containing("read(path, 7", limit=10_000) == [("w = read(path, 7, 'recent')", 1)]


def test_prompt_lookup_reaches_the_workspace():
    """The last words typed, found inside a line of another file, give what follows them there
    (`ngram` workspace: two tokens; `ngram4`: four, which weigh more), below the same found in the
    current file."""
    index = WorkspaceIndex()
    index.update(
        "other.py", "    data = fp.read(4096, timeout=t)\n    n = x.read(1)\n", open_buffer=False
    )
    drafts = line_drafts("def f(fp):\n    chunk = fp.rea", "\n", index, document="cur.py")
    assert [(d.text, d.how, d.where) for d in drafts] == [
        ("d(4096, timeout=t)", "ngram4", "workspace"),
        ("d(1)", "ngram", "workspace"),
    ]
    own = "def g(fp):\n    rest = fp.read()\n"
    drafts = line_drafts(own + "def f(fp):\n    chunk = fp.rea", "\n", index, document="cur.py")
    assert [(d.text, d.where) for d in drafts] == [
        ("d()", "file"),
        ("d(4096, timeout=t)", "workspace"),
        ("d(1)", "workspace"),
    ]


def test_line_drafts_rank_the_current_file_and_the_line_above():
    index = WorkspaceIndex()
    index.update("other.py", "for item in items:\n    total += item.price\n")
    prefix = "def f(items):\n    total = 0\n    for item in items:\n        "
    drafts = line_drafts(prefix, "\n    return total\n", index, document="cur.py")
    assert drafts[0].text == "total += item.price" and drafts[0].how == "follows"
    prefix = "x = compute_value(a, b)\ny = compute_"
    drafts = line_drafts(prefix, ")\n", index, document="cur.py")
    assert drafts[0].text == "value(a, b" and drafts[0].where == "file"  # the ")" after the cursor stays


def test_leaders_are_the_lines_before_an_occurrence():
    index = WorkspaceIndex()
    index.update("a.py", "x = load()\n\nreturn x\ny = load()\nreturn x\n")
    index.update("b.py", "x = load()\nreturn x\n")
    assert index.leaders("return x") == [("x = load()", 2), ("y = load()", 1)]
    assert index.leaders("return x", exclude="a.py") == [("x = load()", 1)]
    assert index.leaders("not there") == [] and index.leaders("x = load()", exclude="b.py") == []
    assert index.occurrences("return x") == 3 and index.occurrences("return x", exclude="a.py") == 1
    assert index.occurrences("not there") == 0 and index.occurrences("") == 0


def test_line_drafts_use_the_line_below_the_cursor():
    """Infilling knows the suffix: a line that precedes the cursor's next line elsewhere is a draft,
    and one with the cursor's line above before it too (between) outranks it."""
    from runtime.retrieval import EVIDENCE

    index = WorkspaceIndex()
    index.update("other.py", "    cache.clear()\n    return result\n")
    prefix = "def f():\n    result = g()\n    "
    drafts = line_drafts(prefix, "\n    return result\n", index, document="cur.py")
    assert [(d.text, d.how, d.where) for d in drafts] == [("cache.clear()", "precedes", "workspace")]
    own = "def h():\n    result = g()\n    log(result)\n    return result\n\n"
    drafts = line_drafts(own + prefix, "\n    return result\n", index, document="cur.py")
    assert drafts[0].text == "log(result)" and drafts[0].where == "file"
    parts = [EVIDENCE.part(how, "file", 1) for how in ("follows", "between", "precedes")]
    assert drafts[0].score == pytest.approx(sum(parts))
    assert drafts[1].text == "cache.clear()"


def test_line_drafts_match_neighbours_that_start_alike():
    """A neighbour that only starts like the cursor's (its first three tokens) still finds drafts
    (`follows~`, `precedes~`), ranked below exact neighbours."""
    own = "def a(h):\n    h.send_response(200)\n    h.send_header('Type', t)\n\n"
    prefix = own + "def b(h):\n    body = make()\n    "
    drafts = line_drafts(prefix, "\n    h.send_header('Length', n)\n", None, document="cur.py")
    assert [(d.text, d.how, d.where) for d in drafts] == [("h.send_response(200)", "precedes~", "file")]
    prefix = own + "def c(h):\n    h.send_response(404)\n    "
    drafts = line_drafts(prefix, "\n", None, document="cur.py")
    assert [(d.text, d.how) for d in drafts] == [("h.send_header('Type', t)", "follows~")]


def test_workspace_neighbours_that_start_alike_find_drafts():
    """In the rest of the workspace too, a line that starts like the cursor's neighbour (first three
    tokens) lends its own neighbour (`follows~`/`precedes~` workspace), below an exact neighbour."""
    index = WorkspaceIndex()
    index.update("other.py", "    h.send_response(500)\n    h.end_headers()\n    h.send_header('X', 1)\n")
    index.update("cur.py", "    h.send_response(404)\n    stale()\n")  # the document's own entry: left out
    prefix = "def c(h):\n    h.send_response(404)\n    "
    drafts = line_drafts(prefix, "\n", index, document="cur.py")
    assert [(d.text, d.how, d.where) for d in drafts] == [("h.end_headers()", "follows~", "workspace")]
    drafts = line_drafts("def c(h):\n    ", "\n    h.send_header('Y', 2)\n", index, document="cur.py")
    assert [(d.text, d.how, d.where) for d in drafts] == [("h.end_headers()", "precedes~", "workspace")]
    index.update("third.py", "h.send_response(404)\nh.flush()\n")
    drafts = line_drafts(prefix, "\n", index, document="cur.py")
    assert [(d.text, d.how) for d in drafts] == [("h.flush()", "follows"), ("h.end_headers()", "follows~")]


def test_renamed_drafts_put_the_cursors_names_back():
    """A neighbour alike that differs from the cursor's by a name or two lends its own neighbour with
    those names put back (`renamed`), from the file and from the workspace, above the verbatim copy."""
    own = "    value = options.get('name')\n    self.name = value\n\n"
    prefix = own + "    value = options.get('size')\n    "
    drafts = line_drafts(prefix, "\n", None, document="cur.py")
    assert [(d.text, d.how, d.where) for d in drafts[:2]] == [
        ("self.size = value", "renamed", "file"),
        ("self.name = value", "follows~", "file"),
    ]
    index = WorkspaceIndex()
    index.update("other.py", "x = read_int(name, 0)\nself.name = x\n", open_buffer=False)
    drafts = line_drafts("x = read_int(size, 1)\n", "\n", index, document="cur.py")
    assert (drafts[0].text, drafts[0].how, drafts[0].where) == ("self.size = x", "renamed", "workspace")
    # three names apart, or apart by more than names: no renamed draft
    own = "v = f(a, b, c)\nw = g(a, b, c)\n"
    assert [d.how for d in line_drafts(own + "v = f(x, b, c)\n", "\n", None)] == ["renamed", "follows~"]
    assert [d.how for d in line_drafts(own + "v = f(x, y, z)\n", "\n", None)] == ["follows~"]
    own = "v = f(a)\nw = g(a)\n"
    assert [d.how for d in line_drafts(own + "v = f(b, 1)\n", "\n", None)] == ["follows~"]
    own = "v = f(a, a)\nw = g(a)\n"  # `a` stands for both `x` and `y`: no consistent renaming
    assert [d.how for d in line_drafts(own + "v = f(x, y)\n", "\n", None)] == ["follows~"]
    own = "v = f(a, b)\nw = g(a, b)\n"  # `x` stands for both `a` and `b`: none either
    assert [d.how for d in line_drafts(own + "v = f(x, x)\n", "\n", None)] == ["follows~"]


def test_renamed_drafts_from_neighbours_of_the_same_shape():
    """A neighbour of the same shape whose start differs too (`def name` for the cursor's `def size`)
    lends its own neighbour with the names put back (`renamed~`), from lines near the cursor only
    (`SHAPE_ROWS`): the same line further away lends nothing."""
    from runtime.retrieval import SHAPE_ROWS

    own = "def name(self):\n    return self._data['name']\n\n"
    drafts = line_drafts(own + "def size(self):\n    ", "\n", None, document="cur.py")
    assert [(d.text, d.how, d.where) for d in drafts] == [("return self._data['size']", "renamed~", "file")]
    assert line_drafts(own + "def size(self, n):\n    ", "\n", None) == []  # another shape
    far = own + "x = 1\n" * SHAPE_ROWS
    assert line_drafts(far + "def size(self):\n    ", "\n", None) == []


def test_typed_text_with_other_names_finds_its_rest():
    """What is typed, matched to a line that starts the same but for a name or two, gets that line's
    rest with the typed names put back (`prefix~`), also with the cursor inside a name; lines apart
    by more than names, or by three names, give none."""
    own = "def f(tss):\n    tss = int(tss)\n    log.debug(tss, 'seconds')\n"
    drafts = line_drafts(own + "    tmm = ", "\n", None, document="cur.py")
    assert [(d.text, d.how, d.where) for d in drafts] == [("int(tmm)", "prefix~", "file")]
    assert [d.text for d in line_drafts(own + "    tmm = in", "\n", None)][:1] == ["t(tmm)"]  # then ngram
    assert [d.text for d in line_drafts(own + "    log.info(tmm, ", "\n", None)] == ["'seconds')"]
    assert line_drafts(own + "    tmm += ", "\n", None) == []
    assert line_drafts(own + "    a.b.c(tmm, ", "\n", None) == []


def test_opens_block_reads_colons_backslashes_and_open_brackets():
    from runtime.retrieval import opens_block

    for line in ("if x:", "else:", "call(a,", "x = [", "total = a + \\", "f('#', ("):
        assert opens_block(line), line
    for line in ("x = 1", "d = {'a': 1}", "s = '('", "return x  # note:", "s = 'it\\'s ('", ""):
        assert not opens_block(line), line


def test_drafts_that_break_the_indentation_below_go_last():
    """A draft that opens a block is followed by a deeper line, and only such a draft: the one that
    disagrees with the indentation below the cursor keeps a tenth of its evidence (`misfit`), which
    puts it after the one that agrees here, though it is still offered."""
    import dataclasses

    from runtime.retrieval import EVIDENCE

    own = "    stop()\n    if ready:\n        go()\n" * 2 + "    stop()\n    go()\n"
    prefix = own + "    stop()\n    "
    drafts = line_drafts(prefix, "\n        run()\n", None, document="cur.py")  # deeper: a block opens
    assert [d.text for d in drafts][:1] == ["if ready:"]
    drafts = line_drafts(prefix, "\n    run()\n", None, document="cur.py")  # same depth
    assert [d.text for d in drafts] == ["go()", "if ready:"]
    plain = dataclasses.replace(EVIDENCE, misfit=1.0)  # without the rule
    undemoted = line_drafts(prefix, "\n    run()\n", None, document="cur.py", evidence=plain)
    assert [d.text for d in undemoted] == ["if ready:", "go()"]
    assert drafts[1].score == pytest.approx(undemoted[0].score * EVIDENCE.misfit)


def test_drafts_at_the_start_of_a_blank_line_carry_the_indentation_it_needs():
    """Retrieved lines are stripped; with the cursor at the start of a blank line (an editor that trimmed
    its automatic indentation, a whole-line infill) a draft gets the line's indentation from its
    neighbours: inside the block the line above opens; one level above the line below for a block
    opener; else the shallower of the two; with nothing below none (the top level may follow), but for
    a statement only a block can hold."""
    own = "def f(x):\n    y = g(x)\n    return y\n\n"
    texts = lambda prefix, suffix: [d.text for d in line_drafts(prefix, suffix, None)]  # noqa: E731
    assert texts(own + "def h(x):\n", "\n    return y\n")[0] == "    y = g(x)"  # the block above opens
    assert texts(own + "def h(x):\n    ", "\n    return y\n")[0] == "y = g(x)"  # indented already
    loop = "def f(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n\n"
    assert texts(loop + "def g(xs):\n    s = 0\n", "\n        s += x\n")[0] == "    for x in xs:"  # opens
    summed = "def f(xs):\n    s = sum(xs)\n    return s\n\n\ndef g(xs):\n    s = sum(xs)\n"
    assert texts(summed, "\n")[0] == "    return s"  # nothing below: a return stays in the block
    tabs = "def f(x):\n\ty = g(x)\n\treturn y\n\n"
    assert texts(tabs + "def h(x):\n", "\n\treturn y\n")[0] == "\ty = g(x)"  # the document's unit
    top = "import os\nimport re\n\nimport os\n"
    assert texts(top, "\nimport sys\n")[0] == "import re"  # the top level stays there


def test_the_margin_rule():
    from runtime.retrieval import _Margin

    assert _Margin("    ", True, "    ", "    ").of("x = 1") == "        "
    assert _Margin("        ", False, "        ", "    ").of("else:") == "    "
    assert _Margin("", False, "    ", "    ").of("def f():") == ""
    assert _Margin("        ", False, "    ", "    ").of("x = 1") == "    "
    assert _Margin("    ", False, "        ", "    ").of("x = 1") == "    "
    assert _Margin("    ", False, None, "    ").of("x = 1") == ""  # the top level may follow
    assert _Margin("    ", False, None, "    ").of("return x") == "    "  # not for a return


def test_a_return_goes_to_its_function_s_body_level_where_nothing_of_the_function_follows():
    """After a deeper line that ends its block (`return True` in a loop's `if`), a drafted `return`
    with nothing more of its function below goes to the function's body level; a `return` is never
    drafted outside its function; with more of the function below, the neighbours decide as before."""
    from runtime.retrieval import _Margin

    body = "    "
    ended = _Margin("            ", False, None, "    ", body, closed=True)
    assert ended.final_return("return False", "            ", dedented=True) == body
    assert ended.final_return("x = 1", "            ", dedented=True) == "            "  # only a return
    assert ended.final_return("return False", "            ", dedented=False) == "            "
    assert ended.final_return("return False", "", dedented=False) == body  # never outside the function
    going_on = _Margin("            ", False, "        ", "    ", body, closed=True)  # the loop goes on
    assert going_on.final_return("return False", "        ", dedented=True) == "        "
    next_def = _Margin("            ", False, "", "    ", body, closed=True)  # the next function below
    assert next_def.final_return("return False", "            ", dedented=True) == body
    texts = lambda prefix, suffix: [d.text for d in line_drafts(prefix, suffix, None)]  # noqa: E731
    other = "def g(xs):\n    for x in xs:\n        if x:\n            return x\n    return None\n\n\n"
    loop = "def f(xs):\n    for x in xs:\n        if x:\n            return x\n"
    assert texts(other + loop, "\n")[0] == "    return None"  # before: at the `return x` level


def test_evidence_rules_choose_kinds_and_count_scale():
    from runtime.retrieval import EVIDENCE_2026_11, Evidence

    index = WorkspaceIndex()
    index.update("other.py", "    cache.clear()\n    return result\n")
    prefix, suffix = "def f():\n    result = g()\n    ", "\n    return result\n"
    assert line_drafts(prefix, suffix, index, document="cur.py", evidence=EVIDENCE_2026_11) == []
    flat = Evidence({("prefix", "workspace"): 1.0}, log_counts=False)
    index.update("more.py", "ab = 1\nab = 1\nab = 2\n")
    drafts = line_drafts("ab", "\n", index, document="cur.py", evidence=flat)
    assert [(d.text, d.score) for d in drafts] == [(" = 1", 2.0), (" = 2", 1.0)]
    logged = line_drafts("ab", "\n", index, document="cur.py", evidence=Evidence(flat.weights))
    assert logged[0].score == pytest.approx(math.log(3))


def test_drafts_are_verified_in_one_batched_forward(tiny_backend):
    from runtime.types import InfillRequest

    drafts = (("_norm(q)", 3.0), ("_other(q)", 1.0))
    req = InfillRequest(prefix="def f(q):\n    value = qx", suffix="\n", single_line=True, drafts=drafts)
    res = tiny_backend.infill(req)
    assert res.text == "_norm(q)" and res.stats.forwards == 1  # accepted: one verification pass
    assert res.stats.drafts_tried == 2 and res.stats.drafts_accepted == 1
    plain = tiny_backend.infill(InfillRequest(prefix=req.prefix, suffix="\n", single_line=True))
    assert plain.stats.drafts_tried == 0 and plain.stats.forwards >= 1


def test_judge_prefers_the_evidence_and_finds_doubted_slots(tiny_backend):
    tok = tiny_backend.tok
    dc = draft_canvases(tok, "x", (("ab", 1.0), ("cd", 8.0), ("y" * 40, 9.0)), 16)
    assert dc is not None and dc.lengths == [3, 3]  # the third does not fit the canvas
    logits = torch.zeros(2, 16, tok.vocab_size)  # the model is indifferent: evidence decides
    assert judge(dc, logits).index == 1
    logits[1, 1, :] = 5.0
    logits[1, 1, dc.canvases[1, 1]] = -5.0  # the model doubts the 2nd token of draft 1
    verdict = judge(dc, logits, DraftRules(evidence_weight=0.0, doubt_probability=0.001))  # uniform: 1/261
    assert verdict.index == 0 and verdict.doubted == []
    verdict = judge(dc, logits, DraftRules(evidence_weight=10.0, doubt_probability=0.001))
    assert verdict.index == 1 and verdict.doubted == [1]
    logits[0, 3, :] = 5.0  # the end slot of draft 0 (a pad) is doubted too
    logits[0, 3, tok.pad_id] = -10.0
    assert judge(dc, logits, DraftRules(evidence_weight=0.0)).index == 0
    assert judge(dc, logits, DraftRules(evidence_weight=0.0, end_slot=True)).index == 1


def test_draft_rules_come_from_the_model_config():
    assert DraftRules.from_config(None) == DraftRules()
    rules = DraftRules.from_config({"accept_score": -4, "doubt_probability": 0.01, "tuned_by": "a note"})
    assert rules.accept_score == -4 and rules.doubt_probability == 0.01
    assert rules.evidence_weight == DraftRules().evidence_weight  # unset: the default
    for bad in ({"accept_score": "high"}, {"doubt_probability": 1.5}, {"end_slot": 1}, [1]):
        with pytest.raises(ValueError, match="drafts"):
            DraftRules.from_config(bad)
