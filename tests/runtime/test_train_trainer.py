"""Trainer: runs N steps on CPU, resumes to the bit-identical state, writes a loadable model folder."""

import json
import subprocess
import sys

import pytest
import torch

from runtime.load import load_embedded
from runtime.train.corpus import SourceFile, write_shards
from runtime.train.tokenizer_train import train_tokenizer
from runtime.train.trainer import TrainConfig, Trainer, parse
from runtime.types import InfillRequest


def module(name: str, n: int) -> str:
    return "".join(f"def {name}_{i}(x):\n    return x + {i}\n\n" for i in range(n))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    docs = [SourceFile("stdlib:a", "PSF-2.0", f"a{i}.py", module(f"f{i}", 30)) for i in range(4)]
    write_shards(docs, root / "corpus", "train")
    write_shards(
        [SourceFile("stdlib:json", "PSF-2.0", "json/x.py", module("held", 20))], root / "corpus", "heldout"
    )
    train_tokenizer([d.text for d in docs], vocab_size=320).save(root / "tok.json")
    return root


def config(files, run: str, **kw) -> TrainConfig:
    base = dict(
        corpus=str(files / "corpus"),
        tokenizer=str(files / "tok.json"),
        run_dir=str(files / run),
        preset="tiny",
        batch_size=4,
        max_steps=6,
        warmup_steps=2,
        context_tokens=(48, 64),
        canvas_lens=(8, 16),
        eval_tasks=0,
        save_minutes=1e9,
        log_every=2,
    )
    return TrainConfig(**{**base, **kw})


def test_runs_and_resumes_to_the_same_state(files):
    straight = Trainer(config(files, "straight"))
    straight.run()
    interrupted = Trainer(config(files, "resumed"))
    for _ in range(3):
        interrupted.step()
    interrupted.save()  # as a periodic checkpoint would, then the process dies
    resumed = Trainer(config(files, "resumed"))
    assert resumed.state.step == 3
    resumed.run()
    assert resumed.state.step == straight.state.step == 6
    assert resumed.state.tokens == straight.state.tokens
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.opt.state_dict()["state"][0]["step"] == resumed.opt.state_dict()["state"][0]["step"]


def test_loss_goes_down_and_model_folder_loads(files):
    t = Trainer(config(files, "learn", max_steps=40, lr=5e-3, eval_tasks=2, out=str(files / "out")))
    t.run()
    losses = [h["loss"] for h in t.state.history if "loss" in h]
    assert losses[-1] < losses[0] - 0.5
    assert any("eval" in h for h in t.state.history)
    cfg = json.loads((files / "out" / "config.json").read_text())
    assert cfg["trained"]["steps"] == 40 and cfg["trained"]["tokens"] == t.state.tokens > 0
    assert cfg["trained"]["context_tokens"] == 64
    assert max(p.stat().st_size for p in (files / "out").glob("*.safetensors")) <= 16 * 2**20
    engine = load_embedded(str(files / "out"))
    res = engine.infill(InfillRequest(prefix="def f1_3(x):\n    return", suffix="\n", max_tokens=8))
    assert isinstance(res.text, str) and res.stats.forwards >= 1
    assert (files / "learn" / "train.log").read_text().count("tok/s") >= 1


def test_learning_rate_warms_up_then_decays(files):
    t = Trainer(config(files, "lr", max_steps=100, warmup_steps=10, lr=1e-3, min_lr_frac=0.1))
    lrs = []
    for step in (0, 9, 10, 55, 100):
        t.state.step = step
        lrs.append(t.lr())
    assert lrs[0] == pytest.approx(1e-4) and lrs[1] == pytest.approx(1e-3)
    assert lrs[2] > lrs[3] > lrs[4] == pytest.approx(1e-4)


def test_command_line_parses_every_option():
    cfg = parse(["--max-steps", "7", "--no-bf16", "--context-tokens", "64", "128", "--max-minutes", "1.5"])
    assert (
        cfg.max_steps == 7
        and cfg.bf16 is False
        and cfg.context_tokens == (64, 128)
        and cfg.max_minutes == 1.5
    )
    out = subprocess.run(
        [sys.executable, "-m", "runtime.train", "nosuch"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "usage" in out.stderr


def test_warm_start_and_draft_loss(files):
    """A run started from a model folder holds its weights at step 0; with drafts on, the draft
    loss is computed (a finite number) and the run resumes as usual."""
    first = Trainer(config(files, "warm-src", max_steps=4, out=str(files / "warm-model")))
    first.run()
    warm = Trainer(config(files, "warm-dst", max_steps=4, drafts=1.0, init=str(files / "warm-model")))
    a, b = first.model.state_dict(), warm.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    m = warm.step()
    assert m["draft"] > 0 and m["draft"] == m["draft"]  # finite: drafted slots were there
    with pytest.raises(ValueError, match="shape"):
        Trainer(config(files, "warm-bad", dim=48, init=str(files / "warm-model")))


def test_snippet_training_declares_its_layout(files):
    t = Trainer(
        config(files, "snip", max_steps=2, snippets=1.0, snippet_tokens=(32,), out=str(files / "snip-model"))
    )
    t.run()
    cfg = json.loads((files / "snip-model" / "config.json").read_text())
    assert cfg["layout"] == {"snippet_tokens": 32}
    assert load_embedded(str(files / "snip-model")).snippet_tokens == 32
    assert "layout" not in json.loads((files / "out" / "config.json").read_text())  # trained without
