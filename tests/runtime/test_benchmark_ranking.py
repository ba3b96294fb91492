"""The draft-ranking benchmark's fit: it finds a feature that tells the right draft, so its finding
that the shipped model's beliefs add nothing to retrieval's evidence is not the fit's blindness."""

import random

from benchmarks.draft_ranking import (
    GROUPS,
    JUDGE_WEIGHTS,
    KINDS,
    comparisons,
    model_features,
    specificity_features,
    two_fold,
)

WIDTH = {"evidence": len(KINDS) + 5, "specificity": 5, "canvas": 3, "causal": 6}


def _rows(seed: int, n: int = 60, k: int = 6) -> list[dict]:
    """Tasks whose right candidate (one of k, at a random rank) has a high first causal feature;
    everything else is noise."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        right = rng.randrange(k)
        cands = []
        for j in range(k):
            c = {g: [rng.gauss(0, 1) for _ in range(WIDTH[g])] for g in GROUPS}
            c["causal"][0] += 3.0 if j == right else 0.0
            c["evidence"][len(KINDS)] = 1.0 + rng.random()  # the summed evidence (log'd by the judge)
            c["canvas"][-1] = 0.0
            c["exact"] = j == right
            cands.append(c)
        rows.append({"seed": seed, "cands": cands})
    return rows


def test_the_fit_finds_a_telling_feature_and_ignores_noise():
    rows = _rows(1) + _rows(2)
    with_signal = two_fold(rows, [1, 2], ("evidence", "causal"), 6)
    without = two_fold(rows, [1, 2], ("evidence", "specificity"), 6)
    assert with_signal >= 0.8 * len(rows)  # ranked first nearly always
    assert without <= 0.35 * len(rows)  # chance is 1 in 6


def test_the_table_has_every_row_and_the_ceilings_bound_it():
    rows = _rows(1, 30) + _rows(2, 30)
    table = dict(comparisons(rows, [1, 2], 6))
    assert len(table) == 2 + len(JUDGE_WEIGHTS) + len(GROUPS) + 1 + 2
    assert table["ceiling: the answer among the best 6"] == len(rows)
    assert all(hits <= len(rows) for hits in table.values())


def test_model_features_on_the_tiny_model(tiny_backend):
    """One row per text: seven scores and a did-not-fit flag (a text longer than the canvas)."""
    out = model_features(tiny_backend, "def f(x):\n    return ", "\n\nprint(f(2))\n", ["x + 1", "x" * 400])
    assert [len(r) for r in out] == [8, 8]
    assert out[0][-1] == 0.0 and all(v <= 0.0 for v in out[0][:5])
    assert out[1] == [0.0] * 7 + [1.0]
    assert model_features(tiny_backend, "a", "b", []) == []


def test_specificity_counts_the_line_in_the_workspace_and_the_file():
    import math

    from runtime.workspace import WorkspaceIndex

    index = WorkspaceIndex()
    index.update("other.py", "return x\nreturn x\n", open_buffer=False)
    index.update("cur.py", "return x\n", open_buffer=False)  # the current document: left out
    lines = ["def f():", "return x", "", "pass"]
    ws, in_file, dist, absent, repeat = specificity_features("return x", lines, 2, index, "cur.py")
    assert ws == math.log1p(2) and in_file == math.log1p(1) and dist == math.log1p(1)
    assert absent == 0.0 and repeat == 1.0  # the line above the cursor is the same line
