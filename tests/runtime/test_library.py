"""Unit tests of runtime.library (the line library: file, lookups), its builder
runtime.train.library, and the drafts runtime.retrieval takes from it, with files in tmp_path."""

from __future__ import annotations

import gzip
import json

import pytest

from runtime import library
from runtime.library import LibraryError, LineLibrary, document_pairs
from runtime.retrieval import EVIDENCE, line_drafts
from runtime.train import library as build
from runtime.train.corpus import SourceFile, write_shards

ROWS = [
    (300, -1, "return True", "return False"),
    (280, -2, "return True", "return False"),
    (40, 1, "if x in seen:", "return True"),
    (9, 0, "return True", "pass"),
    (25, 1, "while b:", "a, b = b, a % b"),
    (12, -1, "count += 1", "return count"),
]


def test_document_pairs_carry_the_indentation_step_in_levels():
    text = "def f(x):\n    if x:\n\n        return 1\n    return 2\n\tbad\n" + "y = '" + "z" * 300 + "'\nq\n"
    pairs = list(document_pairs(text, "    "))
    assert pairs[:3] == [(1, "def f(x):", "if x:"), (1, "if x:", "return 1"), (-1, "return 1", "return 2")]
    assert all("z" * 300 not in a + b for _, a, b in pairs)  # long lines left out
    assert (0, "bad", "y = '" + "z" * 300 + "'") not in pairs
    tabbed = list(document_pairs("if a:\n\tb = 1\nc\n", "\t"))
    assert tabbed == [(1, "if a:", "b = 1"), (-1, "b = 1", "c")]
    assert list(document_pairs("if a:\n  b\n", "    ")) == []  # not a whole level: no step to record


def test_a_written_library_loads_and_answers_most_files_first(tmp_path):
    path = tmp_path / "lib.tsv.gz"
    assert library.write(path, ROWS, {"corpus": "test"}) == len(ROWS)
    lib = library.load(path)
    assert len(lib) == len(ROWS) and lib.about == {"corpus": "test"}
    after_true = [("return False", 300, -1), ("return False", 280, -2), ("pass", 9, 0)]
    assert lib.followers("return True") == after_true
    assert lib.followers("return True", limit=1) == [("return False", 300, -1)]
    assert lib.leaders("return True") == [("if x in seen:", 40, 1)]
    assert lib.followers("nowhere") == [] and lib.leaders("") == []
    assert lib.nbytes_estimate() > 0


def test_library_errors_name_the_file(tmp_path):
    with pytest.raises(LibraryError, match=r"missing\.tsv\.gz"):
        library.load(tmp_path / "missing.tsv.gz")
    wrong = tmp_path / "wrong.tsv.gz"
    with gzip.open(wrong, "wt") as f:
        f.write("not a library\n")
    with pytest.raises(LibraryError, match="not a dg-lsp line library"):
        library.load(wrong)
    broken = tmp_path / "broken.tsv.gz"
    with gzip.open(broken, "wt") as f:
        f.write(library.HEADER + "{}\n3\t0\tonly three\n")
    with pytest.raises(LibraryError, match=r"broken\.tsv\.gz:2"):
        library.load(broken)


def test_the_setting_resolves_to_the_shipped_file_a_path_or_none(tmp_path):
    assert library.resolve("default") == library.DEFAULT_LIBRARY
    assert library.resolve("") is None and library.resolve("none") is None
    assert library.resolve(str(tmp_path / "x.tsv.gz")) == tmp_path / "x.tsv.gz"


def test_the_shipped_library_was_built_from_the_training_split():
    lib = library.cached(library.DEFAULT_LIBRARY)
    assert lib.about["split"] == "train" and lib.about["min_packages"] >= 2 and len(lib) > 50_000
    assert ("return False", lib.followers("return True")[0][1], -1) == lib.followers("return True")[0]


def drafts(prefix: str, suffix: str, rows=ROWS) -> list[str]:
    return [d.text for d in line_drafts(prefix, suffix, library=LineLibrary(rows))]


def test_library_drafts_follow_the_line_above_and_precede_the_line_below():
    assert drafts("def f(x, seen):\n    if x in seen:\n        ", "\n") == ["return True"]
    assert drafts("def f(items):\n    for i in items:\n        ", "\n    return count\n") == ["count += 1"]
    assert drafts("def f(a, b):\n    while b:\n        ", "\n") == ["a, b = b, a % b"]
    assert drafts("def f(x, seen):\n    if x in seen:\n        ", "\n", rows=[]) == []


def test_typed_indentation_that_goes_the_other_way_drops_the_pair():
    """`return False` follows `return True` one level out: not after indentation at the same level."""
    above = "def f(x):\n    for y in x:\n        if y:\n            return True\n"
    assert drafts(above + "        ", "\n")[0] == "return False"
    assert "return False" not in drafts(above + "            ", "\n")  # the same level: only `pass`
    assert drafts(above + "            ", "\n") == ["pass"]


def test_at_the_start_of_a_blank_line_a_library_draft_takes_the_step_as_indentation():
    above = "def f(x):\n    for y in x:\n        if y:\n            return True\n"
    assert drafts(above, "\n    z = 1\n")[0] == "        return False"  # the commonest step: one level out
    # ... but a `return` with nothing of its function below leaves for the function's body level
    assert drafts(above, "\n")[0] == "    return False"
    assert drafts(above, "\n\ndef g():\n    pass\n")[0] == "    return False"
    assert drafts("def f(x, seen):\n    if x in seen:\n", "\n")[0] == "        return True"
    # after a line that opens a block only one level deeper fits: `pass` (step 0) is dropped there
    rows = [(50, 0, "if y:", "pass"), (5, 1, "if y:", "z = 1")]
    assert drafts("def f(y):\n    if y:\n", "\n", rows) == ["        z = 1"]
    # from the line below: a line deeper than it takes the level the line above allows
    assert drafts("def f(items):\n    for i in items:\n", "\n    return count\n")[0] == "        count += 1"


def test_library_evidence_is_weaker_than_the_documents_own():
    weights = EVIDENCE.weights
    assert weights["follows", "library"] < weights["follows", "workspace"] < weights["follows", "file"]
    other = "def g(x, seen):\n    if x in seen:\n        return None\n\n\n"
    cursor = other + "def f(x, seen):\n    if x in seen:\n        "
    assert drafts(cursor, "\n")[:2] == ["return None", "return True"]


def doc(package: str, path: str, text: str) -> SourceFile:
    return SourceFile(package=package, license="MIT", path=path, text=text)


def test_the_builder_counts_a_pair_once_per_package_and_keeps_pairs_of_two(tmp_path):
    body = "def f(x):\n    if x:\n        return True\n    return False\n"
    docs = [
        doc("site:a", "a/one.py", body + body),
        doc("site:a", "a/two.py", body),
        doc("site:b", "b/m.py", body),
    ]
    docs += [doc("site:c", "c/n.md", body), doc("site:a", "a/three.py", "if y:\n    pass\n")]
    packages = build.count_pairs(docs, progress=False)
    assert packages[1, "if x:", "return True"] == 2  # a and b: a's three copies count once; .md is no code
    assert packages[1, "if y:", "pass"] == 1
    write_shards(docs, tmp_path / "corpus", "train")
    out = tmp_path / "lib.tsv.gz"
    assert build.main(["--corpus", str(tmp_path / "corpus"), "--out", str(out)]) == 0
    lib = library.load(out)
    assert lib.followers("if x:") == [("return True", 2, 1)] and lib.followers("if y:") == []
    assert lib.about["python_files"] == 4 and lib.about["min_packages"] == 2
    assert build.main(["--corpus", str(tmp_path / "corpus"), "--out", str(out), "--min-packages", "3"]) == 0
    assert len(library.load(out)) == 0


def test_the_builder_refuses_held_out_and_reserved_packages(tmp_path, capsys):
    for bad in ("stdlib:json", "site:more-itertools", "site:More_Itertools"):
        write_shards([doc("site:ok", "ok.py", "a\nb\n"), doc(bad, "x.py", "a\nb\n")], tmp_path / bad, "train")
        out = tmp_path / "lib.tsv.gz"
        assert build.main(["--corpus", str(tmp_path / bad), "--out", str(out)]) == 1
        assert bad in capsys.readouterr().err and not out.exists()


def test_the_header_records_how_the_library_was_built(tmp_path):
    path = tmp_path / "lib.tsv.gz"
    library.write(path, ROWS, {"corpus": "c", "min_packages": 2})
    with gzip.open(path, "rt") as f:
        head = f.readline()
    assert head.startswith(library.HEADER) and json.loads(head[len(library.HEADER) :])["min_packages"] == 2
