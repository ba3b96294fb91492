"""Byte-level BPE tokenizer wrapper with the special tokens the runtime needs.

Special token ids are looked up by name from the tokenizer itself; no code
outside this module knows a numeric id.
"""

from __future__ import annotations

import functools
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers

from runtime.memo import Memo

PAD = "<|pad|>"
MASK = "<|mask|>"
EOS = "<|eos|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
SPECIAL_TOKENS = (PAD, MASK, EOS, FIM_PREFIX, FIM_SUFFIX)
"""In id order for tokenizers built by this project (ids 0..4)."""


class Tokenizer:
    """Text <-> ids, plus per-token byte strings for boundary healing."""

    def __init__(self, hf: HFTokenizer) -> None:
        self.hf = hf
        # special tokens are placed by id only; "<|mask|>" typed in a document is plain text
        hf.encode_special_tokens = True
        missing = [t for t in SPECIAL_TOKENS if hf.token_to_id(t) is None]
        if missing:
            raise ValueError(f"tokenizer lacks special tokens {missing}")
        self.pad_id: int = hf.token_to_id(PAD)
        self.mask_id: int = hf.token_to_id(MASK)
        self.fim_prefix_id: int = hf.token_to_id(FIM_PREFIX)
        self.fim_suffix_id: int = hf.token_to_id(FIM_SUFFIX)
        self.file_sep_id: int = hf.token_to_id(EOS)
        """Starts each context snippet (`runtime.context`): the end-of-text token, which nothing
        else in this project's layout uses."""
        self.special_ids = frozenset(hf.token_to_id(t) for t in SPECIAL_TOKENS)
        self.vocab_size: int = hf.get_vocab_size(with_added_tokens=True)
        self._bytes = _token_bytes(hf, self.special_ids, self.vocab_size)
        # memos kept on the tokenizer (a class-wide lru_cache kept every reloaded tokenizer alive)
        self._flags: Memo[int, tuple[tuple[bool, ...], tuple[bool, ...]]] = Memo(64)
        self._starting: Memo[bytes, tuple[int, ...]] = Memo(256)

    # construction -----------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        return cls(HFTokenizer.from_file(str(path)))

    @classmethod
    def byte_level(cls) -> Tokenizer:
        """A merge-free byte-level tokenizer (261 ids) for random-weight test presets."""
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
        for ch in sorted(alphabet):
            vocab[ch] = len(vocab)
        hf = HFTokenizer(models.BPE(vocab=vocab, merges=[]))
        configure_byte_level(hf)
        hf.add_special_tokens(list(SPECIAL_TOKENS))
        return cls(hf)

    def save(self, path: str | Path) -> None:
        self.hf.save(str(path))

    # text <-> ids -----------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        if not text:
            return []
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        """Decode, dropping special tokens; bytes that are not UTF-8 are dropped, never raised."""
        data = b"".join(self._bytes[i] for i in ids if i not in self.special_ids)
        return data.decode("utf-8", errors="ignore")

    def token_bytes(self, token_id: int) -> bytes:
        return self._bytes[token_id]

    @functools.cached_property
    def newline_ids(self) -> frozenset[int]:
        """Ids of tokens that contain a line break (single-line completions stop there)."""
        return frozenset(i for i, b in enumerate(self._bytes) if b"\n" in b)

    def content_flags(self, skip: int = 0) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
        """Per id: (holds a non-whitespace character, holds a line break), judged on the token's
        bytes after the first `skip` (the healed text at slot 0).  Special ids: neither."""
        if (known := self._flags.get(skip)) is not None:
            return known
        visible, breaks = [], []
        for i, b in enumerate(self._bytes):
            rest = b"" if i in self.special_ids else b[skip:]
            visible.append(bool(rest.strip()))
            breaks.append(b"\n" in rest)
        return self._flags.put(skip, (tuple(visible), tuple(breaks)))

    def ids_starting_with(self, head: bytes) -> tuple[int, ...]:
        """Ids of normal tokens whose bytes begin with `head` (for boundary healing)."""
        if (known := self._starting.get(head)) is not None:
            return known
        ids = tuple(i for i, b in enumerate(self._bytes) if i not in self.special_ids and b.startswith(head))
        return self._starting.put(head, ids)


def configure_byte_level(hf: HFTokenizer) -> None:
    """The pre-tokenizer/decoder pair every tokenizer of this project uses."""
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()


def _token_bytes(hf: HFTokenizer, special: frozenset[int], n: int) -> list[bytes]:
    byte_of = {ch: b for b, ch in _bytes_to_unicode().items()}
    out: list[bytes] = []
    for i in range(n):
        tok = hf.id_to_token(i)
        if tok is None or i in special:
            out.append(b"")
            continue
        out.append(bytes(byte_of[c] for c in tok))
    return out


@functools.cache
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (what ByteLevel uses)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}
