"""Tokenizer training: special tokens first and in order, byte-level round trip."""

import pytest

from runtime.tokenizer import SPECIAL_TOKENS, Tokenizer
from runtime.train.tokenizer_train import train_tokenizer

TEXT = [
    "def function(value):\n    return value + 1\n",
    "class Thing:\n    def __init__(self, name):\n        self.name = name\n",
    "Some *Markdown* prose, with `code` and ünïcödé.\n",
] * 40


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXT, vocab_size=400)


def test_special_tokens_take_the_first_ids_in_order(tok):
    assert [tok.hf.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert (tok.pad_id, tok.mask_id) == (0, 1)


def test_vocabulary_and_merges(tok):
    assert 300 < tok.vocab_size <= 400
    assert len(tok.encode("    return value + 1\n")) < len("    return value + 1\n")  # merges learned


def test_byte_level_round_trip_and_specials_never_from_text(tok, tmp_path):
    for s in ["x = 'ü'\n\t", "日本語 🙂", "<|mask|> is plain text here"]:
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert not set(ids) & tok.special_ids
    tok.save(tmp_path / "t.json")
    again = Tokenizer.from_file(tmp_path / "t.json")
    assert again.encode(TEXT[1]) == tok.encode(TEXT[1])


def test_rejects_a_vocabulary_below_the_byte_alphabet():
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(TEXT, vocab_size=100)


def test_the_clean_tokenizer_the_gpu_script_trains_with():
    """runtime/train/tokenizer-v2.json (trained on corpus v2's train split, reserved packages out; see
    docs/training.md) has the runtime's special ids and the shipped vocabulary size, and codes Python."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "runtime/train/tokenizer-v2.json"
    tok = Tokenizer.from_file(path)
    assert [tok.hf.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert tok.vocab_size == 8192
    code = "    def __init__(self, name: str) -> None:\n        self.name = name\n"
    ids = tok.encode(code)
    assert tok.decode(ids) == code and len(code) / len(ids) > 3.0
