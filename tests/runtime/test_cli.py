import json

import pytest

from dg_lsp.cli import main, split_at


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def source(tmp_path):
    p = tmp_path / "a.py"
    p.write_text("def add(a, b):\n    return \n")
    return p


def test_infill_prints_text_and_stats(capsys, source):
    argv = ["infill", f"{source}:2:12", "--model", "tiny", "--max-tokens", "6", "--stats"]
    code, out, err = run(capsys, *argv)
    assert code == 0 and out.endswith("\n")
    assert "forwards=" in err and "tokens/forward=" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["infill", "{src}:9:1"], "line 9 is out of range"),
        (["infill", "{src}:1:99"], "column 99 is out of range"),
        (["infill", "{src}:x:1"], "must be integers"),
        (["infill", "{src}"], "is not FILE:LINE:COL"),
        (["infill", "/no/such/file.py:1:1"], "does not exist"),
        (["infill", "{src}:1:1", "--policy", "warp"], "unknown policy 'warp'"),
        (["infill", "{src}:1:1", "--model", "/no/such/model"], "model folder /no/such/model does not exist"),
        (["batch", "--in", "/no/tasks.jsonl", "--out", "-"], "input file /no/tasks.jsonl does not exist"),
    ],
)
def test_user_errors_are_one_line_exit_2(capsys, source, argv, message):
    argv = [a.replace("{src}", str(source)) for a in argv]
    if "--model" not in argv:
        argv += ["--model", "tiny"]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_corrupt_model_folder(capsys, source, tmp_path):
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text("{")
    code, _, err = run(capsys, "infill", f"{source}:1:1", "--model", str(bad))
    assert code == 2 and "not valid JSON" in err


def test_batch_skips_malformed_lines_and_keeps_going(capsys, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        '{"id": "a", "prefix": "x = ", "suffix": "\\n"}\n'
        "this is not json\n"
        "\n"
        '{"id": 7, "prefix": "def f(", "suffix": "):\\n    pass\\n"}\n'
        '{"id": "no-suffix", "prefix": "y"}\n'
    )
    results = tmp_path / "out.jsonl"
    code, _, err = run(
        capsys, "batch", "--in", str(tasks), "--out", str(results), "--model", "tiny", "--max-tokens", "5"
    )
    assert code == 2  # some input was bad; the good tasks were still done
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", 7]
    assert all(set(r) == {"id", "text", "forwards", "tokens", "ms"} for r in rows)
    assert all(1 <= r["tokens"] <= 5 and r["forwards"] >= 1 for r in rows)
    assert ":2: skipped malformed task" in err and ":5: skipped malformed task" in err
    assert "`suffix`" in err


def test_batch_all_good_exits_0(capsys, tmp_path):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"id": 1, "prefix": "a", "suffix": "b"}\n')
    out = str(tmp_path / "o.jsonl")
    code, _, _ = run(capsys, "batch", "--in", str(tasks), "--out", out, "--model", "tiny")
    assert code == 0


def test_split_at_positions():
    assert split_at("ab\ncd\n", 2, 2, "f") == ("ab\nc", "d\n")
    assert split_at("ab\r\ncd", 1, 3, "f") == ("ab", "\r\ncd")  # end of a CRLF line
    assert split_at("", 1, 1, "f") == ("", "")


def test_no_command_prints_usage(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "usage" in err


def test_no_kernels_turns_the_kernels_off_for_infill_and_serve(capsys, source, monkeypatch):
    """--no-kernels reaches `load_backend(kernels=False)` (kernels.set_kernels_enabled); `serve
    --no-kernels` overrides the client's `kernels` setting."""
    import argparse

    import kernels
    from dg_lsp import serve

    monkeypatch.delenv(kernels.ENV_SWITCH, raising=False)
    try:
        code, _, _ = run(capsys, "infill", f"{source}:2:12", "--model", "tiny", "--max-tokens", "2",
                         "--no-kernels")
        assert code == 0 and not kernels.kernels_enabled()
        code, _, _ = run(capsys, "infill", f"{source}:2:12", "--model", "tiny", "--max-tokens", "2")
        assert code == 0 and kernels.kernels_enabled()
    finally:
        kernels.set_kernels_enabled(True)
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert serve._overrides(parser.parse_args(["--no-kernels"])) == {"kernels": False}
    assert serve._overrides(parser.parse_args([])) == {}


def test_batch_and_infill_with_a_workspace(capsys, tmp_path):
    """--workspace indexes a folder: a task's `path` names its own document (never read from disk:
    here the file on disk says something else), and other files give the line drafts."""
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "h.py").write_text("def qx_norm(q):\n    return q\n\n\ndef use(q):\n"
                                     "    value = qx_norm(q)\n")  # fmt: skip
    (ws / "pkg" / "m.py").write_text("def f(q):\n    value = qx_disk(q)\n" * 5)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": 1, "prefix": "def f(q):\n    value = qx", "suffix": "\n",
                                 "path": "pkg/m.py"}) + "\n")  # fmt: skip
    out = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "batch", "--in", str(tasks), "--out", str(out), "--model", "tiny",
                       "--workspace", str(ws), "--single-line")  # fmt: skip
    assert code == 0 and "indexed 2 files" in err
    row = json.loads(out.read_text())
    assert row["text"] == "_norm(q)" and row["drafts_accepted"] == 1 and row["forwards"] == 1
    (ws / "pkg" / "m.py").write_text("def f(q):\n    value = qx\n")
    code, text, _ = run(capsys, "infill", f"{ws / 'pkg' / 'm.py'}:2:15", "--model", "tiny",
                        "--workspace", str(ws), "--single-line")  # fmt: skip
    assert code == 0 and text == "_norm(q)\n"
    code, _, err = run(capsys, "infill", f"{ws / 'pkg' / 'm.py'}:2:15", "--workspace", str(tmp_path / "no"))
    assert code == 2 and "is not a folder" in err


def test_infill_with_a_workspace_and_a_snippet_layout_reports_the_snippet(capsys, tmp_path, snippet_model):
    """`dg-lsp infill --workspace --stats` with conftest's `snippet_model` (the shipped weights under a
    config.json declaring the snippet layout: plumbing, not a claim that the model uses snippets):
    the stats name the other file's snippet, by its path in the workspace, and its exact block size;
    the shipped model (no layout) and `--snippet-tokens 0` send none."""
    from runtime.tokenizer import Tokenizer

    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    helpers = "def qx_norm(qvec):\n    return qvec / qx_scale(qvec)\n"
    (ws / "pkg" / "helpers.py").write_text(helpers)
    (ws / "pkg" / "m.py").write_text("def run(qvec):\n    scaled = qx_scale(qvec)\n    value = qx\n")
    tok = Tokenizer.from_file(snippet_model / "tokenizer.json")
    n = 1 + len(tok.encode(f"pkg/helpers.py\n{helpers}\n"))
    where = [f"{ws / 'pkg' / 'm.py'}:3:15", "--workspace", str(ws), "--single-line", "--stats"]
    code, _, err = run(capsys, "infill", *where, "--model", str(snippet_model))
    assert code == 0 and f" snippet_tokens={n} snippets=pkg/helpers.py:{n} " in err
    for other in (["--model", "default"], ["--model", str(snippet_model), "--snippet-tokens", "0"]):
        code, _, err = run(capsys, "infill", *where, *other)
        assert code == 0 and " snippet_tokens=0 snippets=none " in err


def test_infill_with_a_workspace_takes_drafts_from_the_line_library(capsys, tmp_path):
    """--line-library FILE: a line found only in the library's pairs; a file that is no library is a
    clear error (exit 2)."""
    from runtime import library

    (tmp_path / "ws").mkdir()
    doc = tmp_path / "ws" / "m.py"
    doc.write_text("def f(qx_seen):\n    if qx_seen:\n        \n        log()\n")
    lib = tmp_path / "lines.tsv.gz"
    library.write(lib, [(30, 1, "if qx_seen:", "return qx_hit")], {"corpus": "test"})
    args = ["infill", f"{doc}:3:9", "--model", "tiny", "--workspace", str(tmp_path / "ws"), "--single-line"]
    code, text, _ = run(capsys, *args, "--line-library", str(lib))
    assert code == 0 and text == "return qx_hit\n"
    code, text, _ = run(capsys, *args, "--line-library", "")
    assert code == 0 and text != "return qx_hit\n"
    (tmp_path / "bad.tsv.gz").write_bytes(b"not gzip")
    code, _, err = run(capsys, *args, "--line-library", str(tmp_path / "bad.tsv.gz"))
    assert code == 2 and "bad.tsv.gz" in err
