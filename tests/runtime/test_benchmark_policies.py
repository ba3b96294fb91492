"""The policy benchmark's plumbing on the random `tiny` preset (numbers meaningless, shape checked)."""

import random
from pathlib import Path

from benchmarks.policies import main, run_policy
from runtime.eval.heldout import make_task
from runtime.train.corpus import SourceFile

SOURCE = Path(__file__).read_text()


def test_run_policy_reports_every_column(tiny_backend):
    doc = SourceFile("test:self", "MIT", "test_benchmark_policies.py", SOURCE)
    rng = random.Random(0)
    tasks = [t for kind in ("line_rest", "block") if (t := make_task(doc, kind, rng)) is not None]
    assert tasks
    for policy in ("sequential", "llada:steps=2"):
        row = run_policy(tiny_backend, tasks, policy, context_tokens=256)
        assert row["n"] == len(tasks) and 0.0 <= row["exact"] <= 100.0
        assert row["fpt"] > 0 and row["p95"] >= row["p50"] > 0
    assert run_policy(tiny_backend, tasks, "sequential", 256)["fpt"] >= 0.99


def test_main_prints_a_table_and_plot(tmp_path, capsys, monkeypatch):
    doc = SourceFile("test:self", "MIT", "self.py", SOURCE)
    monkeypatch.setattr("runtime.eval.heldout.heldout_documents", lambda corpus=None: [doc])
    out = tmp_path / "p.png"
    code = main(["--model", "tiny", "--n", "1", "--kinds", "line_rest", "--policies", "sequential,adaptive",
                 "--plot", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "exact%" in text and "adaptive" in text
    assert out.exists() and out.stat().st_size > 1000
