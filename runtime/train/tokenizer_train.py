"""Training corpus -> byte-level BPE tokenizer (HF tokenizers) with the runtime's special tokens.

The special tokens take ids 0..len(SPECIAL_TOKENS)-1 in the order of
`runtime.tokenizer.SPECIAL_TOKENS`; the pre-tokenizer and decoder come from
`runtime.tokenizer.configure_byte_level`, like every tokenizer of this project.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers, trainers

from runtime.tokenizer import SPECIAL_TOKENS, Tokenizer, configure_byte_level
from runtime.train.corpus import read_shards

DEFAULT_VOCAB = 8192


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB, min_frequency: int = 2
) -> Tokenizer:
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} is below the byte alphabet plus specials")
    hf = HFTokenizer(models.BPE())
    configure_byte_level(hf)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),  # first, in order: ids 0..4
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(hf)


def _sample(texts: list[str], max_chars: int) -> Iterator[str]:
    """Every k-th document so a capped sample still covers all packages."""
    total = sum(map(len, texts))
    step = max(1, round(total / max_chars))
    yield from texts[::step]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.train tokenizer", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--out", type=Path, default=Path("data/tokenizer.json"))
    p.add_argument("--vocab", type=int, default=DEFAULT_VOCAB)
    p.add_argument("--max-chars", type=int, default=40_000_000, help="train on a sample this large")
    a = p.parse_args(argv)
    texts = [d.text for d in read_shards(a.corpus, "train")]
    tok = train_tokenizer(_sample(texts, a.max_chars), a.vocab)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(a.out)
    probe = texts[len(texts) // 2][:20000]
    print(
        f"vocab {tok.vocab_size}, {len(probe) / max(1, len(tok.encode(probe))):.2f} chars/token on a probe",
        file=sys.stderr,
    )
    return 0
