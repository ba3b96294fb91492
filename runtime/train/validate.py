"""Validation loss: the training losses on a fixed set of held-out batches.

    held-out Python files (runtime.eval.heldout) -> SampleStream(seed) -> N batches -> model -> losses

The batches are the training objective's (same splits, masking and corruption) drawn from the
held-out packages with a fixed seed, so two models (or one model before and after a short run)
are scored on exactly the same positions; the numbers are deterministic for a given model,
corpus and thread count.  Every context row gets the next-token loss (`ctx_fraction` 1.0), there
are no drafted canvases or snippets, and each loss is a mean over all the positions of all the
batches.  `total` always uses the default weights (canvas + 0.5 context + 0.2 unmasked), whatever
weights a run trained with, so runs with different loss mixes compare on one scale.

    python -m runtime.train val --model models/dg-code-small runs/x/model [--batches 24]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from runtime.eval.heldout import heldout_documents
from runtime.model import InfillTransformer
from runtime.tokenizer import Tokenizer
from runtime.train.objective import Batch, ObjectiveConfig, SampleStream
from runtime.train.trainer import TrainConfig, row_losses

SEED = 20261201
WEIGHTS = {"canvas": 1.0, "context": TrainConfig.ctx_weight, "unmasked": TrainConfig.unmasked_weight}


def val_batches(tok: Tokenizer, corpus: Path, n: int, batch_size: int = 16, seed: int = SEED) -> list[Batch]:
    """`n` batches of the training objective from the held-out documents, always the same ones."""
    docs = heldout_documents(corpus)
    stream = SampleStream(tok, [d.text for d in docs], ObjectiveConfig(ctx_fraction=1.0), seed=seed)
    return [stream.batch(batch_size) for _ in range(n)]


@torch.no_grad()
def score(model: InfillTransformer, batches: Sequence[Batch], bf16: bool = False) -> dict[str, float]:
    """Mean cross-entropy per loss kind over every position of `batches`, plus the weighted total."""
    model.eval()
    sums = dict.fromkeys(WEIGHTS, 0.0)
    counts = dict.fromkeys(WEIGHTS, 0)
    for b in batches:
        ce, _, _, rows = row_losses(model, model.hidden_train, b, bf16)
        for kind, mask in (("canvas", b.masked), ("context", b.context), ("unmasked", b.unmasked)):
            sel = mask[rows]
            sums[kind] += float(ce[sel].double().sum())
            counts[kind] += int(sel.sum())
    out = {k: sums[k] / max(1, counts[k]) for k in WEIGHTS}
    out["total"] = sum(WEIGHTS[k] * out[k] for k in WEIGHTS)
    out["positions"] = sum(counts.values())
    return out


def score_folder(folder: Path, corpus: Path, n: int, batch_size: int = 16) -> dict[str, float]:
    from runtime.load import load_folder

    model, tok, _, _ = load_folder(folder)
    return score(model, val_batches(tok, corpus, n, batch_size))


def table(rows: dict[str, dict[str, float]]) -> str:
    lines = [
        "| model | canvas | context | unmasked | total | positions |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows.items():
        cells = " | ".join(f"{r[k]:.4f}" for k in ("canvas", "context", "unmasked", "total"))
        lines.append(f"| {name} | {cells} | {r['positions']:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.train val", description=__doc__.split("\n")[0])
    p.add_argument("--model", nargs="+", required=True, help="model folders")
    p.add_argument("--corpus", default="data/corpus", help="corpus with the held-out shards")
    p.add_argument("--batches", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the scores here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = {m: score_folder(Path(m), Path(a.corpus), a.batches, a.batch_size) for m in a.model}
    print(table(rows))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0
