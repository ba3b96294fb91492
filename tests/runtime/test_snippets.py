"""Context snippets: ranked files, Jaccard and BM25 windows, the cursor line left out of the query."""

import numpy as np
import pytest

from runtime.snippets import (
    DEFAULT_SCORER,
    QUERY_LINES,
    SCORERS,
    BM25Scorer,
    FileTable,
    JaccardScorer,
    context_snippets,
    query_words,
    scorer_named,
    shown_path,
    windows,
    word_hashes,
    workspace_snippets,
)
from runtime.workspace import WorkspaceIndex

HELPER = "\n".join([
    "def load_settings(path):",
    "    with open(path) as handle:",
    "        settings = parse_settings(handle.read())",
    "    return validate_settings(settings)",
])  # fmt: skip
NOISE = "\n".join(f"def unrelated_{i}(alpha, beta):\n    return alpha * beta + {i}" for i in range(30))


def test_the_query_is_the_lines_above_the_cursor_line():
    prefix = "a_first = 1\n" * 3 + "settings = parse_settings(raw)\n    partial_name"
    q = query_words(prefix)
    assert "parse_settings" in q and "a_first" in q and "partial_name" not in q
    far = "far_away = 1\n" + "x = 0\n" * QUERY_LINES + "cursor_line"
    assert "far_away" not in query_words(far)


def test_files_are_ranked_by_shared_identifiers():
    files = [
        ("noise.py", word_hashes(NOISE)),
        ("helper.py", word_hashes(HELPER)),
        ("empty.py", word_hashes("")),
    ]
    table = FileTable(files)
    assert table.ranked({"parse_settings", "validate_settings", "handle"}) == ["helper.py"]
    assert table.ranked({"alpha", "parse_settings"}) == ["noise.py", "helper.py"]  # ties: first seen
    assert table.ranked(set()) == []


def test_snippets_come_from_the_workspace_and_the_far_part_of_the_file():
    index = WorkspaceIndex()
    index.update("helper.py", HELPER, open_buffer=False)
    index.update("noise.py", NOISE, open_buffer=False)
    index.update("current.py", "stale text of the current file: never read", open_buffer=False)
    prefix = "import os\n\ndef main(path):\n    settings = parse_settings(open(path).read())\n    return "
    found = workspace_snippets(prefix, "\n", index, document="current.py")
    assert [s.path for s in found][:1] == ["helper.py"] and "validate_settings" in found[0].text
    assert all("stale text" not in s.text for s in found)
    # the current file's own text far above the cursor is a candidate too
    far = HELPER + "\n" + "pass\n" * (QUERY_LINES + 2) + "settings = parse_settings(handle.read())\n"
    own = context_snippets(far + "    x = ", "\n", (), current="current.py")
    assert own and own[0].path == "current.py" and "validate_settings" in own[0].text
    assert workspace_snippets("x = 1", "", index) == []  # nothing above the cursor: no query


def test_with_the_workspace_folders_a_snippet_path_is_relative_to_its_folder(tmp_path):
    """The server's and the CLI's index keys are absolute paths; the prompt gets the path in the
    workspace (training's paths are relative to their package), a file outside it its name only."""
    root, other = tmp_path / "ws", tmp_path / "elsewhere"
    index = WorkspaceIndex()
    index.update(str(root / "pkg" / "helper.py"), HELPER, open_buffer=False)
    index.update(str(other / "copy.py"), HELPER.replace("load_settings", "load_copy"), open_buffer=False)
    prefix = "def main(path):\n    settings = parse_settings(open(path).read())\n    return "
    found = workspace_snippets(prefix, "\n", index, document=str(root / "main.py"), roots=[str(root)])
    assert sorted(s.path for s in found) == ["copy.py", "pkg/helper.py"]
    keys = workspace_snippets(prefix, "\n", index, document=str(root / "main.py"))
    assert sorted(s.path for s in keys) == sorted([str(other / "copy.py"), str(root / "pkg" / "helper.py")])
    assert shown_path(str(root / "a.py"), [str(tmp_path), str(root)]) == "ws/a.py"  # the first holding it


# --------------------------------------------------------------------- scorers
COMMON = "config.load(config, value)\n"
"""Identifiers every file below shares (their document frequency is all the windows)."""


def _workspace() -> WorkspaceIndex:
    """common.py shares three common identifiers with the query; rare.py shares one that
    nothing else holds; six filler files make the common ones common."""
    index = WorkspaceIndex()
    index.update("common.py", "value = config.load(config, value)\nprint(value, config, load)\n")
    index.update("rare.py", "handle = load_registry_entries(config)\nother_name = second_name\n")
    for i in range(6):
        index.update(f"filler_{i}.py", COMMON + f"unrelated_{i} = filler_{i}\n" * 3)
    return index


QUERY_PREFIX = "value = config.load(config, value)\nentries = load_registry_entries(value)\n    "


def test_bm25_ranks_rare_shared_identifiers_above_common_ones():
    index = _workspace()
    bm25 = workspace_snippets(QUERY_PREFIX, "", index, document="current.py", scorer="bm25")
    jaccard = workspace_snippets(QUERY_PREFIX, "", index, document="current.py", scorer="jaccard")
    assert bm25[0].path == "rare.py"  # the one identifier nobody else holds outweighs three common ones
    assert jaccard[0].path == "common.py"  # sets: three shared identifiers beat one
    assert workspace_snippets(QUERY_PREFIX, "", index, document="current.py")[0].path == "common.py"


def test_bm25_counts_term_frequencies_and_normalizes_length():
    scorer = BM25Scorer()
    once = windows("alpha_term = 1\nfiller_one = filler_two\n")[0]
    thrice = windows("alpha_term = alpha_term + alpha_term\nfiller_one = filler_two\n")[0]
    longer = windows("alpha_term = 1\n" + "filler_one = filler_two + filler_three\n" * 4)[0]
    others = [windows(f"beta_{i} = gamma_{i}\n")[0] for i in range(4)]
    s = scorer.scores({"alpha_term"}, [once, thrice, longer, *others])
    assert s[1] > s[0] > s[2] > 0  # more occurrences score more; the same one in a longer window less
    assert all(v == 0 for v in s[3:]) and all(0 < v < 1 for v in s[:3])  # normalized


def test_bm25_matches_the_bm25s_library():
    """Our BM25 against `bm25s` (Lucene's variant, which leaves out the (k1 + 1) factor that the
    normalization cancels); skipped where bm25s is not installed (it is not a dependency)."""
    bm25s = pytest.importorskip("bm25s")
    flat = [w for name in ("helper", "noise") for w in windows(HELPER if name == "helper" else NOISE)]
    query = {"parse_settings", "alpha", "beta", "handle", "settings", "missing_name"}
    ours = BM25Scorer().scores(query, flat)
    model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    model.index([[t for t, c in w.counts.items() for _ in range(c)] for w in flat], show_progress=False)
    ids = [model.vocab_dict[t] for t in sorted(query) if t in model.vocab_dict]
    theirs = np.asarray(model.get_scores(ids), dtype=np.float64)
    assert theirs.max() > 0
    np.testing.assert_allclose(ours / ours.max(), theirs / theirs.max(), rtol=1e-5)


def test_scorers_are_looked_up_by_name():
    assert isinstance(scorer_named("bm25"), BM25Scorer) and isinstance(scorer_named("jaccard"), JaccardScorer)
    assert scorer_named(SCORERS[DEFAULT_SCORER]) is SCORERS[DEFAULT_SCORER]
    with pytest.raises(ValueError, match="unknown snippet scorer"):
        workspace_snippets(QUERY_PREFIX, "", _workspace(), scorer="tfidf")
    # a scorer's own bar decides what is kept
    strict = JaccardScorer(min_score=0.99)
    assert workspace_snippets(QUERY_PREFIX, "", _workspace(), document="current.py", scorer=strict) == []


def test_the_ranked_files_are_read_within_a_line_budget():
    from runtime.snippets import within_lines

    texts = [("big.py", "a\n" * 99 + "a"), ("mid.py", "b\n" * 49 + "b"), ("small.py", "c")]
    assert [k for k, _ in within_lines(texts, budget=150)] == ["big.py", "mid.py"]
    assert [k for k, _ in within_lines(texts, budget=10)] == ["big.py"]  # the first always
    assert within_lines([], budget=10) == []


def test_the_file_table_ranks_as_one_query_per_file_would_and_follows_the_index():
    from runtime.snippets import file_table, hashed

    index = WorkspaceIndex()
    index.update("a.py", "alpha_one = beta_two\n")
    index.update("b.py", "alpha_one = beta_two + gamma_three\n")
    index.update("c.py", "unrelated_name = 1\n")
    index.update("d.py", "alpha_one = 2\n")
    query = {"alpha_one", "beta_two", "gamma_three"}
    per_file = []
    for key, hashes in index.file_words():
        hits = int(np.isin(hashed(query), hashes).sum())
        if hits:
            per_file.append((-hits, len(per_file), key))
    expected = [key for _, _, key in sorted(per_file)]
    table = FileTable(index.file_words())
    assert table.ranked(query) == expected == ["b.py", "a.py", "d.py"]  # ties: first seen
    assert table.ranked(query, exclude="b.py") == ["a.py", "d.py"]
    assert table.ranked(query, limit=1) == ["b.py"] and table.ranked(set()) == []
    assert file_table(index) is file_table(index)  # kept while the index is unchanged
    index.update("e.py", "alpha_one = beta_two + gamma_three + alpha_one\n")
    assert file_table(index).ranked(query)[:2] == ["b.py", "e.py"]  # rebuilt after a change
