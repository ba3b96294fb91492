"""Trainer: runs N steps on CPU, resumes to the bit-identical state, writes a loadable model folder."""

import json
import subprocess
import sys

import pytest
import torch

from runtime.load import load_embedded
from runtime.train.corpus import SourceFile, write_shards
from runtime.train.tokenizer_train import train_tokenizer
from runtime.train.trainer import TrainConfig, Trainer, mix_shares, parse, parse_mix
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


def test_mix_weights_the_corpus_origins(files):
    """--mix: a weight per origin (stdlib, installed, pinned), checked when parsed, logged as shares."""
    assert parse_mix("") == {"stdlib": 1.0, "installed": 1.0, "pinned": 1.0}
    assert parse_mix("stdlib=2, pinned=0.25") == {"stdlib": 2.0, "installed": 1.0, "pinned": 0.25}
    for bad, why in [
        ("std=1", "not ORIGIN=WEIGHT"),
        ("pinned", "not ORIGIN=WEIGHT"),
        ("pinned=x", "not a number"),
        ("pinned=-1", ">= 0"),
        ("stdlib=0,installed=0,pinned=0", "every origin"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_mix(bad)
    docs = [
        SourceFile("stdlib:json", "PSF-2.0", "a.py", "x" * 100),
        SourceFile("site:click", "BSD", "b.py", "x" * 300),
        SourceFile("site:httpx", "BSD", "c.py", "x" * 600, source="httpx-0.28.1-py3-none-any.whl#sha256=00"),
    ]
    assert [d.origin for d in docs] == ["stdlib", "installed", "pinned"]
    shares = mix_shares(docs, parse_mix("stdlib=3,pinned=0.25"))  # 300 : 300 : 150 characters
    assert shares == pytest.approx({"stdlib": 0.4, "installed": 0.4, "pinned": 0.2})
    out = subprocess.run(
        [sys.executable, "-m", "runtime.train", "train", "--mix", "stdlib=two"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "not a number" in out.stderr
    trainer = Trainer(config(files, "mixed", mix="installed=0", max_steps=1))
    assert (
        "sampled characters: stdlib 100.0%, installed 0.0%, pinned 0.0%"
        in (files / "mixed" / "train.log").read_text()
    )
    assert len(trainer.stream.texts) == 4


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


def test_muon_trains_and_resumes_both_optimizers(files):
    """--optimizer muon: the blocks' matrices are in Muon, everything else in AdamW; a resumed run
    restores both optimizers' state and ends bit-identical to an uninterrupted one."""
    kw = dict(optimizer="muon", muon_lr=0.02, max_steps=5, out=str(files / "muon-model"))
    straight = Trainer(config(files, "muon-straight", **kw))
    muon_params = {id(p) for g in straight.muon.param_groups for p in g["params"]}
    adamw_params = {id(p) for g in straight.opt.param_groups for p in g["params"]}
    for name, p in straight.model.named_parameters():
        assert (id(p) in muon_params) == (name.startswith("layers.") and p.dim() == 2), name
        assert (id(p) in adamw_params) != (id(p) in muon_params), name
    before = {k: v.clone() for k, v in straight.model.state_dict().items()}
    straight.run()
    after = straight.model.state_dict()
    assert not torch.equal(before["layers.0.attn.wqkv.weight"], after["layers.0.attn.wqkv.weight"])
    assert not torch.equal(before["embed.weight"], after["embed.weight"])
    interrupted = Trainer(config(files, "muon-resumed", **kw))
    for _ in range(2):
        interrupted.step()
    interrupted.save()
    resumed = Trainer(config(files, "muon-resumed", **kw))
    assert resumed.state.step == 2
    a, b = interrupted.muon.state_dict()["state"], resumed.muon.state_dict()["state"]
    assert a.keys() == b.keys() and all(
        torch.equal(a[k]["momentum_buffer"], b[k]["momentum_buffer"]) for k in a
    )
    resumed.run()
    assert all(torch.equal(after[k], resumed.model.state_dict()[k]) for k in after)
    trained = json.loads((files / "muon-model" / "config.json").read_text())["trained"]
    assert trained["optimizer"]["name"] == "muon" and trained["config"]["optimizer"] == "muon"
    assert trained["optimizer"]["muon"]["weight_decay"] == pytest.approx(0.1 * 2e-3 / 0.02)
    with pytest.raises(ValueError, match="--optimizer muon"):
        Trainer(config(files, "muon-resumed", max_steps=5))  # its checkpoint holds Muon state


def test_validation_loss_is_fixed_and_deterministic(files):
    """`val`: the same batches every time, the same numbers for the same model, other numbers
    after training; the command prints a table."""
    from runtime.load import load_folder
    from runtime.train.validate import score, val_batches

    model, tok, _, _ = load_folder(files / "out")  # written by the 40-step test above
    one = val_batches(tok, files / "corpus", 3, batch_size=4)
    two = val_batches(tok, files / "corpus", 3, batch_size=4)
    assert all(
        torch.equal(x.ids, y.ids) and torch.equal(x.masked, y.masked) for x, y in zip(one, two, strict=True)
    )
    assert all(
        x.context.sum() == (x.key_valid[:, : x.ctx_len - 1] & x.key_valid[:, 1 : x.ctx_len]).sum()
        for x in one
    )
    first, again = score(model, one), score(model, two)
    assert first == again and first["positions"] > 0
    assert first["total"] == pytest.approx(first["canvas"] + 0.5 * first["context"] + 0.2 * first["unmasked"])
    fresh, _, _, _ = load_folder(files / "warm-model")  # 4 steps only
    assert score(fresh, one)["canvas"] > first["canvas"]
    out = subprocess.run(
        [sys.executable, "-m", "runtime.train", "val", "--model", str(files / "out"), "--corpus",
         str(files / "corpus"), "--batches", "2", "--batch-size", "4"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and "| canvas |" in out.stdout, out.stderr


def test_float32_muon_matches_torch_muon():
    """The CPU's float32 Muon takes torch.optim.Muon's step (torch orthogonalizes in bfloat16,
    hence the 3 % tolerance) and keeps the same state; its orthogonalized update is near-orthogonal."""
    from runtime.train.trainer import Float32Muon, orthogonalize

    torch.manual_seed(0)
    for shape in ((48, 16), (16, 40)):
        w, g = torch.randn(*shape) * 0.02, torch.randn(*shape)
        ours, theirs = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
        for kind, p in ((Float32Muon, ours), (torch.optim.Muon, theirs)):
            opt = kind([p], lr=0.02, weight_decay=0.01, adjust_lr_fn="original")
            for _ in range(2):
                p.grad = g.clone()
                opt.step()
            assert set(opt.state[p]) == {"momentum_buffer"}
        d_ours, d_theirs = (ours - w).detach(), (theirs - w).detach()
        assert float((d_ours - d_theirs).norm() / d_theirs.norm()) < 0.03
    s = torch.linalg.svdvals(orthogonalize(torch.randn(16, 40), (3.4445, -4.775, 2.0315), 5, 1e-7))
    assert float(s.min()) > 0.5 and float(s.max()) < 1.5  # the quintic's band, not exactly 1
