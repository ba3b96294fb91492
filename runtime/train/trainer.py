"""The training loop: batches from `objective` -> InfillTransformer -> AdamW (or Muon), with checkpoints.

    corpus shards + tokenizer -> SampleStream -> forward_train -> losses -> optimizer (warmup, cosine)
        every few minutes: checkpoint (model, optimizers, step, rng) + model folder + held-out eval

Optimizers (`optimizer`): `adamw` for every parameter, or `muon`: `torch.optim.Muon` for the
transformer blocks' weight matrices and AdamW for the rest (the tied embedding/head, the norms),
both on the one warmup + cosine schedule (Muon's peak is `muon_lr`).

Losses (each a mean over its positions, then weighted):

* canvas: cross-entropy on masked canvas slots, plain mean (not the 1/t ELBO weight:
  with a small batch its variance at low t slows a tiny model down, and decoding is
  greedy, so an unbiased likelihood buys nothing here);
* context (`ctx_weight`): next-token loss on every context row: free dense signal;
* unmasked (`unmasked_weight`): the true token at visible canvas slots, ~10% of which
  were replaced by random tokens, so committed tokens get meaningful probabilities
  for the `adaptive` policy's self-correction;
* draft (`draft_weight`): the true token at the visible slots of canvases that start from a
  draft (`objective.ObjectiveConfig.drafts`): what `runtime.drafts` reads to accept a draft
  or re-mask its doubted tokens.

A run may start from a shipped model folder (`init`: its weights, when the shapes match).

CPU smoke test: ``python -m runtime.train train --preset tiny --max-steps 20``;
real runs: see docs/training.md and runtime/train/gpu_run.sh.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from runtime.backends.embedded import EmbeddedBackend
from runtime.load import save_folder
from runtime.measure import cpu_name
from runtime.model import PRESETS, InfillTransformer, ModelArgs, count_params
from runtime.tokenizer import Tokenizer
from runtime.train.corpus import ORIGINS, SourceFile, read_shards
from runtime.train.objective import Batch, ObjectiveConfig, SampleStream


@dataclass
class TrainConfig:
    corpus: str = "data/corpus"
    tokenizer: str = "data/tokenizer.json"
    run_dir: str = "runs/dev"
    out: str | None = None
    """Also write the model folder here (e.g. models/dg-code-small) at every save."""
    name: str = "dg-code-small"
    preset: str = "small"
    dim: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    batch_size: int = 16
    lr: float = 2e-3
    min_lr_frac: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    max_steps: int = 1000
    max_minutes: float | None = None
    """If set, the run stops after this much training time (summed over resumes) and the
    cosine schedule follows time instead of steps."""
    schedule_minutes: float | None = None
    """Cosine horizon in training minutes (default: max_minutes); lets several short runs
    (resumed) share one schedule."""
    optimizer: str = "adamw"
    """`adamw`, or `muon` for the blocks' 2D weight matrices (AdamW keeps the rest)."""
    muon_lr: float = 0.02
    """Muon's peak learning rate (scaled by the same warmup + cosine as `lr`)."""
    muon_adjust: str = "original"
    """Muon's learning rate per matrix shape: `original` (x sqrt(max(1, rows/cols))) or
    `match_rms_adamw` (x 0.2 sqrt(max(rows, cols)): then `muon_lr` near an AdamW lr)."""
    muon_weight_decay: float | None = None
    """Default: weight_decay * lr / muon_lr, the same decoupled shrink per step as AdamW's."""
    ctx_weight: float = 0.5
    ctx_fraction: float = 0.25
    unmasked_weight: float = 0.2
    drafts: float = 0.0
    """Fraction of rest-of-line samples whose canvas starts from a draft (see objective.py)."""
    draft_weight: float = 1.0
    snippets: float = 0.0
    """Fraction of samples with context snippets from their package (see objective.py)."""
    snippet_tokens: tuple[int, ...] = (256, 512)
    mix: str = ""
    """Sampling weight per origin of a document (`corpus.ORIGINS`), as `stdlib=2,pinned=0.25`:
    each unnamed origin keeps 1, 0 leaves an origin out; '' samples by size alone. A corpus v2
    run can so keep the standard library's share up."""
    init: str | None = None
    """A model folder whose weights start the run (a fresh run only; a checkpoint wins)."""
    context_tokens: tuple[int, ...] = (128, 192, 256, 320)
    canvas_lens: tuple[int, ...] = (32, 32, 32, 16, 24, 48)
    device: str = "cpu"
    bf16: bool = True
    compile: bool = False
    threads: int | None = 1
    workers: int = 0
    """Data-loader processes (GPU runs: the main process alone cannot feed a GPU).  With
    workers, a resumed run reseeds them from the step, so its data differs from an
    uninterrupted run's; with 0 it is bit-identical."""
    seed: int = 0
    log_every: int = 10
    save_minutes: float = 5.0
    eval_minutes: float = 15.0
    eval_tasks: int = 40
    """Held-out tasks per kind for the periodic eval (0 disables it)."""

    def model_args(self, vocab_size: int) -> ModelArgs:
        base = PRESETS[self.preset]
        over = {
            k: v for k, v in (("dim", self.dim), ("n_layers", self.n_layers), ("n_heads", self.n_heads)) if v
        }
        canvas = base.canvas_len if self.preset != "tiny" else 16
        return ModelArgs(**{**base.to_dict(), **over, "vocab_size": vocab_size, "canvas_len": canvas})

    def objective(self) -> ObjectiveConfig:
        return ObjectiveConfig(
            context_tokens=tuple(self.context_tokens),
            canvas_lens=tuple(self.canvas_lens),
            ctx_fraction=self.ctx_fraction,
            drafts=self.drafts,
            snippets=self.snippets,
            snippet_tokens=tuple(self.snippet_tokens),
        )


@dataclass
class State:
    step: int = 0
    tokens: int = 0
    canvas_slots: int = 0
    train_s: float = 0.0
    """Seconds spent in training steps (the schedule's clock)."""
    wall_s: float = 0.0
    """Seconds of the whole loop: steps plus periodic evals and saves."""
    history: list[dict] = field(default_factory=list)


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.run_dir = Path(cfg.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = (self.run_dir / "train.log").open("a")
        self.tok = Tokenizer.from_file(cfg.tokenizer)
        self.args = cfg.model_args(self.tok.vocab_size)
        self.device = torch.device(cfg.device)
        self.model = InfillTransformer(self.args).to(self.device)
        self.hidden = torch.compile(self.model.hidden_train) if cfg.compile else self.model.hidden_train
        self.opt, self.muon = build_optimizers(self.model, cfg, self.device)
        docs = read_shards(Path(cfg.corpus), "train")
        texts, keys = [d.text for d in docs], [(d.package, d.path) for d in docs]
        mix = parse_mix(cfg.mix)
        weights = [mix[d.origin] for d in docs]
        self.stream = SampleStream(
            self.tok, texts, cfg.objective(), seed=cfg.seed, keys=keys, weights=weights
        )
        shares = mix_shares(docs, mix)
        self.log("sampled characters: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))
        self.state = State()
        self._batches: Iterator[Batch] | None = None
        self.ckpt = self.run_dir / "ckpt.pt"
        if self.ckpt.exists():
            self.load(self.ckpt)
        elif cfg.init:
            self.warm_start(Path(cfg.init))

    # ------------------------------------------------------------ checkpoints
    def save(self, path: Path | None = None) -> None:
        path = path or self.ckpt
        tmp = path.with_suffix(".tmp")
        torch.save(
            {
                "model": self.model.state_dict(),
                "opt": self.opt.state_dict(),
                "muon": self.muon.state_dict() if self.muon else None,
                "state": asdict(self.state),
                "stream_rng": self.stream.rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "config": asdict(self.cfg),
                "model_args": self.args.to_dict(),
            },
            tmp,
        )
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        ck = torch.load(path, map_location=self.device, weights_only=False)  # our own file
        if ck["model_args"] != self.args.to_dict():
            raise ValueError(f"{path} was trained with {ck['model_args']}, not {self.args.to_dict()}")
        saved = ck["config"].get("optimizer", "adamw")
        if saved != self.cfg.optimizer:
            raise ValueError(f"{path} was trained with --optimizer {saved}, not {self.cfg.optimizer}")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["opt"])
        if self.muon:
            self.muon.load_state_dict(ck["muon"])
        self.state = State(**ck["state"])
        self.stream.rng.setstate(ck["stream_rng"])
        torch.set_rng_state(ck["torch_rng"])
        self.log(f"resumed from {path} at step {self.state.step} ({self.state.tokens:,} tokens)")

    def warm_start(self, folder: Path) -> None:
        """Start from a model folder's weights (same shapes, same tokenizer)."""
        from runtime.load import load_folder

        model, tok, _, _ = load_folder(folder)
        if model.args.to_dict() != self.args.to_dict():
            raise ValueError(f"{folder} has shape {model.args.to_dict()}, this run {self.args.to_dict()}")
        if tok.hf.get_vocab(with_added_tokens=True) != self.tok.hf.get_vocab(with_added_tokens=True):
            raise ValueError(f"{folder}'s tokenizer is not {self.cfg.tokenizer}")
        self.model.load_state_dict(model.state_dict())
        self.log(f"warm start from {folder}")

    def save_model(self, where: Path) -> None:
        extra: dict = {"trained": self.trained_record()}
        if self.cfg.snippets:  # the layout the server must use for this model
            extra["layout"] = {"snippet_tokens": max(self.cfg.snippet_tokens)}
        save_folder(where, self.model, self.tok, name=self.cfg.name, extra=extra)

    def trained_record(self) -> dict:
        s = self.state
        return {
            "steps": s.step,
            "tokens": s.tokens,
            "canvas_slots": s.canvas_slots,
            "train_seconds": round(s.train_s, 1),
            "wall_seconds": round(s.wall_s, 1),
            "tokens_per_second": round(s.tokens / max(s.train_s, 1e-9), 1),
            "parameters": count_params(self.model),
            "context_tokens": max(self.cfg.context_tokens),
            "optimizer": optimizer_record(self.cfg),
            "machine": machine_name(self.device, self.cfg.threads),
            "config": {k: v for k, v in asdict(self.cfg).items() if k not in ("out", "run_dir")},
            "last_eval": next((h for h in reversed(s.history) if "eval" in h), None),
        }

    # ------------------------------------------------------------ schedule
    def progress(self) -> float:
        if self.cfg.max_minutes:
            horizon = self.cfg.schedule_minutes or self.cfg.max_minutes
            return min(1.0, self.state.train_s / (horizon * 60))
        return min(1.0, self.state.step / max(1, self.cfg.max_steps))

    def lr(self) -> float:
        c = self.cfg
        if self.state.step < c.warmup_steps:
            return c.lr * (self.state.step + 1) / c.warmup_steps
        cos = 0.5 * (1 + math.cos(math.pi * self.progress()))
        return c.lr * (c.min_lr_frac + (1 - c.min_lr_frac) * cos)

    def done(self) -> bool:
        if self.cfg.max_minutes:
            return self.state.train_s >= self.cfg.max_minutes * 60
        return self.state.step >= self.cfg.max_steps

    # ------------------------------------------------------------ steps
    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        b = _to(batch, self.device)
        ce, logits, targets, rows = row_losses(self.model, self.hidden, b, self.cfg.bf16)
        out = {
            "canvas": _mean(ce, b.masked[rows]),
            "context": _mean(ce, b.context[rows]),
            "unmasked": _mean(ce, b.unmasked[rows]),
            "draft": _mean(ce, b.drafted[rows]),
        }
        c = self.cfg
        out["loss"] = (
            out["canvas"] + c.ctx_weight * out["context"] + c.unmasked_weight * out["unmasked"]
            + c.draft_weight * out["draft"]
        )  # fmt: skip
        with torch.no_grad():
            out["canvas_acc"] = _mean((logits.argmax(-1) == targets).float(), b.masked[rows])
        return out

    def step(self) -> dict[str, float]:
        self.model.train()
        batch = self.next_batch()
        lr = self.lr()
        for g in self.opt.param_groups:
            g["lr"] = lr
        for g in self.muon.param_groups if self.muon else ():
            g["lr"] = lr * self.cfg.muon_lr / self.cfg.lr
        out = self.losses(batch)
        optimizers = [self.opt, self.muon] if self.muon else [self.opt]
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        for opt in optimizers:
            opt.step()
        self.state.step += 1
        self.state.tokens += batch.tokens
        self.state.canvas_slots += int(batch.masked.sum())
        return {k: float(v.detach()) for k, v in out.items()}

    def next_batch(self) -> Batch:
        if not self.cfg.workers:
            return self.stream.batch(self.cfg.batch_size)
        if self._batches is None:
            data = BatchStream(self.stream, self.cfg.batch_size, f"{self.cfg.seed}:{self.state.step}")
            loader = torch.utils.data.DataLoader(
                data,
                batch_size=None,
                num_workers=self.cfg.workers,
                prefetch_factor=4,
                persistent_workers=True,
            )
            self._batches = iter(loader)
        return next(self._batches)

    def run(self) -> State:
        c = self.cfg
        self.log(
            f"model {count_params(self.model):,} params {self.args.to_dict()}; batch {c.batch_size}; "
            f"device {machine_name(self.device, c.threads)}"
        )
        last_save = last_eval = time.perf_counter()
        window_tokens, window_t0 = 0, time.perf_counter()
        acc: dict[str, float] = {}
        n = 0
        while not self.done():
            t0 = time.perf_counter()
            loop_t0 = t0
            tokens_before = self.state.tokens
            m = self.step()
            self.state.train_s += time.perf_counter() - t0
            window_tokens += self.state.tokens - tokens_before
            acc = {k: acc.get(k, 0.0) + v for k, v in m.items()}
            n += 1
            if self.state.step % c.log_every == 0 or self.done():
                tps = window_tokens / max(1e-9, time.perf_counter() - window_t0)
                avg = {k: v / n for k, v in acc.items()}
                self.progress_line(avg, tps)
                self.state.history.append(
                    {
                        "step": self.state.step,
                        "tokens": self.state.tokens,
                        "tps": round(tps, 1),
                        **{k: round(v, 4) for k, v in avg.items()},
                    }
                )
                acc, n, window_tokens, window_t0 = {}, 0, 0, time.perf_counter()
            now = time.perf_counter()
            if c.eval_tasks and now - last_eval >= c.eval_minutes * 60:
                self.evaluate()
                last_eval = time.perf_counter()
            if now - last_save >= c.save_minutes * 60:
                self.checkpoint()
                last_save = time.perf_counter()
            self.state.wall_s += time.perf_counter() - loop_t0
        if c.eval_tasks:
            self.evaluate()
        self.checkpoint()
        return self.state

    def checkpoint(self) -> None:
        self.save()
        self.save_model(self.run_dir / "model")
        if self.cfg.out:
            self.save_model(Path(self.cfg.out))
        self.log(f"saved checkpoint and model folder at step {self.state.step}")

    def evaluate(self) -> dict:
        from runtime.eval.heldout import evaluate, iter_tasks

        self.model.eval()
        t0 = time.perf_counter()
        engine = EmbeddedBackend(self.model, self.tok, device=str(self.device))
        tasks = list(iter_tasks(self.cfg.eval_tasks, corpus=Path(self.cfg.corpus)))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            res = evaluate(engine, tasks, context_tokens=max(self.cfg.context_tokens))
        self.model.train()
        ems = {k: round(v["exact_match"], 4) for k, v in res.items()}
        self.state.history.append({"step": self.state.step, "tokens": self.state.tokens, "eval": ems})
        self.log(f"eval step {self.state.step}: held-out exact match {ems} ({time.perf_counter() - t0:.0f}s)")
        return ems

    # ------------------------------------------------------------ output
    def progress_line(self, m: dict[str, float], tps: float) -> None:
        s = self.state
        if self.cfg.max_minutes:
            left = self.cfg.max_minutes * 60 - s.train_s
        else:
            left = (self.cfg.max_steps - s.step) * s.train_s / max(1, s.step)
        self.log(
            f"step {s.step} loss {m['loss']:.3f} canvas {m['canvas']:.3f} ctx {m['context']:.3f} "
            f"unm {m['unmasked']:.3f} drf {m['draft']:.3f} acc {m['canvas_acc']:.3f} lr {self.lr():.2e} "
            f"{tps:,.0f} tok/s tokens {s.tokens:,} elapsed {s.train_s / 60:.1f}m ETA {max(0, left) / 60:.1f}m"
        )

    def log(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, file=sys.stderr, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()


class BatchStream(torch.utils.data.IterableDataset):
    """Endless batches; each data-loader worker draws from its own seeded stream."""

    def __init__(self, stream: SampleStream, batch_size: int, seed: str) -> None:
        self.stream, self.batch_size, self.seed = stream, batch_size, seed

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        self.stream.rng.seed(f"{self.seed}:{info.id if info else 0}")
        while True:
            yield self.stream.batch(self.batch_size)


def row_losses(
    model: InfillTransformer, hidden_fn, b: Batch, bf16: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy on the rows that carry a loss: (ce (N,), logits (N, V), targets (N,), rows (B, L))."""
    rows = b.context | b.masked | b.unmasked | b.drafted  # (B, L): the only rows the head runs on
    with torch.autocast(b.ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        hidden = hidden_fn(b.ids, b.ctx_len, b.key_valid)  # (B, L, D)
        logits = model.head(model.norm(hidden[rows]))  # (N, V)
    targets = b.targets[rows]  # (N,)
    return F.cross_entropy(logits.float(), targets, reduction="none"), logits, targets, rows


def _is_muon_matrix(name: str, p: torch.Tensor) -> bool:
    return p.dim() == 2 and name.startswith("layers.")


def build_optimizers(
    model: InfillTransformer, cfg: TrainConfig, device: torch.device
) -> tuple[torch.optim.AdamW, torch.optim.Optimizer | None]:
    """(AdamW, Muon or None).  With `muon`, the blocks' matrices go to Muon; AdamW keeps the
    embedding (tied to the head) and the norms.  Weight decay only on AdamW's non-embedding matrices."""
    if cfg.optimizer not in ("adamw", "muon"):
        raise ValueError(f"unknown optimizer {cfg.optimizer!r} (adamw, muon)")
    matrices, decay, rest = [], [], []
    for n, p in model.named_parameters():
        if cfg.optimizer == "muon" and _is_muon_matrix(n, p):
            matrices.append(p)
        elif p.dim() == 2 and "embed" not in n:
            decay.append(p)
        else:
            rest.append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    adamw = torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=cfg.lr, betas=(0.9, 0.95), fused=device.type == "cuda"
    )
    if not matrices:
        return adamw, None
    kind = torch.optim.Muon if device.type == "cuda" else Float32Muon
    muon = kind(matrices, lr=cfg.muon_lr, weight_decay=muon_weight_decay(cfg), adjust_lr_fn=cfg.muon_adjust)
    return adamw, muon


class Float32Muon(torch.optim.Muon):
    """`torch.optim.Muon` with the Newton-Schulz iteration in float32 instead of bfloat16.

    torch's version orthogonalizes in bfloat16, which a CPU without native bfloat16 (this VM's
    host today: no AVX-512) emulates: 20 s a step of the 4-layer model against ~3 s for AdamW.
    The update is the same algorithm (Nesterov momentum, quintic Newton-Schulz with torch's
    coefficients, the shape adjustment of the learning rate, decoupled weight decay) and the
    state (`momentum_buffer`) and parameter groups are torch's, so checkpoints are interchangeable."""

    @torch.no_grad()
    def step(self, closure=None):  # torch's signature
        loss = None if closure is None else torch.enable_grad()(closure)()
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - g["momentum"])
                update = p.grad.lerp(buf, g["momentum"]) if g["nesterov"] else buf
                ortho = orthogonalize(update.float(), g["ns_coefficients"], g["ns_steps"], g["eps"])
                p.mul_(1 - g["lr"] * g["weight_decay"])
                p.add_(ortho.to(p.dtype), alpha=-g["lr"] * muon_lr_ratio(g["adjust_lr_fn"], p.shape))
        return loss


def orthogonalize(
    x: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """Approximately U V^T of x = U S V^T by a quintic Newton-Schulz iteration, in x's dtype."""
    a, b, c = coefficients
    wide = x.T if x.shape[0] > x.shape[1] else x  # iterate on the side with the smaller Gram matrix
    y = wide / wide.norm().clamp(min=eps)  # spectral norm <= 1
    for _ in range(steps):
        gram = y @ y.T
        y = a * y + (b * gram + c * gram @ gram) @ y
    return y.T if x.shape[0] > x.shape[1] else y


def muon_lr_ratio(adjust: str | None, shape: torch.Size) -> float:
    rows, cols = shape[0], shape[1]
    if adjust == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1.0, rows / cols))  # "original" (torch's default)


def muon_weight_decay(cfg: TrainConfig) -> float:
    if cfg.muon_weight_decay is not None:
        return cfg.muon_weight_decay
    return cfg.weight_decay * cfg.lr / cfg.muon_lr


def optimizer_record(cfg: TrainConfig) -> dict:
    """What config.json's `trained` section says about the optimizers."""
    adamw = {"lr": cfg.lr, "betas": [0.9, 0.95], "weight_decay": cfg.weight_decay}
    if cfg.optimizer != "muon":
        return {"name": "adamw", "adamw": {**adamw, "params": "all"}}
    muon = {"lr": cfg.muon_lr, "adjust_lr_fn": cfg.muon_adjust, "weight_decay": muon_weight_decay(cfg)}
    return {
        "name": "muon",
        "muon": {**muon, "momentum": 0.95, "nesterov": True, "ns_steps": 5, "params": "block matrices"},
        "adamw": {**adamw, "params": "embedding/head, norms"},
    }


def _mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1)


def _to(b: Batch, device: torch.device) -> Batch:
    if device.type == "cpu":
        return b
    moved = {f.name: getattr(b, f.name) for f in fields(b)}
    return Batch(
        **{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in moved.items()}
    )


def machine_name(device: torch.device, threads: int | None) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {os.cpu_count()} cores, torch threads {threads or torch.get_num_threads()}"


def parse_mix(spec: str) -> dict[str, float]:
    """`stdlib=2,pinned=0.25` -> a weight for each of `corpus.ORIGINS` (1 unless named)."""
    weights = dict.fromkeys(ORIGINS, 1.0)
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, eq, value = (part.strip() for part in item.partition("="))
        if name not in weights or not eq:
            raise ValueError(
                f"--mix {spec!r}: {item!r} is not ORIGIN=WEIGHT with ORIGIN one of {', '.join(ORIGINS)}"
            )
        try:
            weights[name] = float(value)
        except ValueError:
            raise ValueError(f"--mix {spec!r}: {value!r} is not a number") from None
        if not weights[name] >= 0:
            raise ValueError(f"--mix {spec!r}: a weight must be >= 0, not {value}")
    if not any(weights.values()):
        raise ValueError(f"--mix {spec!r} leaves every origin out")
    return weights


def mix_shares(docs: list[SourceFile], weights: dict[str, float]) -> dict[str, float]:
    """Each origin's share of the sampled characters under `weights` (for the run's log)."""
    mass = dict.fromkeys(ORIGINS, 0.0)
    for d in docs:
        mass[d.origin] += len(d.text) * weights[d.origin]
    total = sum(mass.values()) or 1.0
    return {k: v / total for k, v in mass.items()}


def parse(argv: list[str] | None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m runtime.train train", description=__doc__.split("\n")[0])
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type.startswith("tuple"):
            p.add_argument(flag, type=int, nargs="+", default=list(f.default))
        elif f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        elif f.type.startswith("int"):
            p.add_argument(flag, type=int, default=f.default)
        elif f.type.startswith("float"):
            p.add_argument(flag, type=float, default=f.default)
        else:
            p.add_argument(flag, default=f.default)
    a = vars(p.parse_args(argv))
    try:
        parse_mix(a["mix"])
    except ValueError as e:
        p.error(str(e))
    a["context_tokens"] = tuple(a["context_tokens"])
    a["canvas_lens"] = tuple(a["canvas_lens"])
    a["snippet_tokens"] = tuple(a["snippet_tokens"])
    return TrainConfig(**a)


def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    random.seed(cfg.seed)
    trainer = Trainer(cfg)
    state = trainer.run()
    trainer.log(f"done: {state.step} steps, {state.tokens:,} tokens, {state.train_s / 60:.1f} min")
    return 0
