"""Documents -> training batches in the exact shape the server builds.

    document -> character split (prefix, middle, suffix) -> build_context + canvas_target
             -> (block continuation) -> pad to canvas -> mask t ~ U(0, 1) -> batch

The split is at *character* positions (Bavarian et al. 2022), so the cursor
may sit inside a token; `runtime.context` handles that by boundary healing,
here exactly as at inference.  Kinds of middle, mixed by `ObjectiveConfig.kinds`:

* ``rest_of_line``: cursor anywhere in a line (after the indentation, mid-word, ...),
  middle = the rest of that line without its newline;
* ``line``: one whole line with its newline (prefix ends at a line start);
* ``lines``: 2-12 whole lines;
* ``span``: a random character span (may start and end anywhere).

A middle longer than one canvas is trained as the engine decodes it: block
``j`` sees the context plus the first ``j`` canvases and must fill the next one.

Drafted canvases (``ObjectiveConfig.drafts``): a fraction of the rest-of-line samples start
from a draft on the canvas, as the server verifies one (`runtime.drafts`): a line draft that
`runtime.retrieval.line_drafts` finds in the sample's own package (its document left out, the
same call the server makes), the right text, or the right text with one identifier renamed or
one token dropped.  Every slot is then visible (the verification pass) or a random part of it
is masked (the re-masked doubted tokens); every slot's target is the true text, so the model
learns to keep a draft's right tokens and to doubt and fix its wrong ones (masked-diffusion
training alone does not learn correction).

Context snippets (``ObjectiveConfig.snippets``): a fraction of the samples get the snippets
`runtime.snippets.workspace_snippets` retrieves from their own package (other files and the
same file away from the cursor), laid out as the server lays them out (`runtime.context`); a
share of those get a window of an unrelated document instead, so the model learns to copy
from snippets and to ignore the irrelevant ones.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from runtime.canvas import canvas_target
from runtime.context import CHARS_PER_TOKEN, PREFIX_LINE_QUANTUM, build_context
from runtime.library import LineLibrary
from runtime.library import from_setting as library_from_setting
from runtime.retrieval import line_drafts
from runtime.snippets import WINDOW_LINES, workspace_snippets
from runtime.tokenizer import Tokenizer
from runtime.workspace import WorkspaceIndex

KINDS = ("rest_of_line", "line", "lines", "span")


@dataclass(frozen=True)
class ObjectiveConfig:
    context_tokens: tuple[int, ...] = (128, 192, 256, 320)
    """Context budgets to draw from (one per batch); the model records the largest."""
    canvas_lens: tuple[int, ...] = (32, 32, 32, 16, 24, 48)
    """Canvas lengths to draw from (one per batch): mostly the model's own."""
    kinds: dict[str, float] = field(
        default_factory=lambda: {"rest_of_line": 0.35, "line": 0.2, "lines": 0.2, "span": 0.25}
    )
    max_blocks: int = 3
    """Deepest block-continuation index trained (canvases already appended to the context)."""
    corrupt: float = 0.1
    """Fraction of unmasked, non-pad canvas slots replaced by a random token."""
    ctx_fraction: float = 0.25
    """Fraction of context rows given the next-token loss.  The vocabulary-sized head is
    most of a small model's FLOPs; a random quarter keeps most of the dense signal for
    far fewer head rows (on a GPU, use 1.0)."""
    drafts: float = 0.0
    """Fraction of rest-of-line samples that start from a draft on the canvas (needs the
    documents' package and path, to retrieve drafts the way the server does)."""
    draft_sources: dict[str, float] = field(
        default_factory=lambda: {"retrieved": 0.6, "right": 0.2, "corrupted": 0.2}
    )
    """Where a sample's draft comes from (a sample whose retrieval finds nothing takes the right
    text or a corrupted one)."""
    draft_library: str = "default"
    """The line library whose drafts the server adds (`runtime.library`: "default" the shipped
    file, a path, or "" for none), so that retrieved drafts are drawn from the same kinds."""
    draft_visible: float = 0.5
    snippets: float = 0.0
    """Fraction of samples with context snippets (needs the documents' package and path)."""
    snippet_tokens: tuple[int, ...] = (256, 512)
    """Snippet budgets to draw from (one per batch), on top of the context budget."""
    snippet_noise: float = 0.25
    """Fraction of the snippet samples whose snippet is a window of an unrelated document."""
    """Fraction of drafted samples with every slot visible (the verification pass); the others
    mask each slot with probability t ~ U(0, 1) (the doubted slots re-masked)."""

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown sample kinds {sorted(unknown)} (known: {KINDS})")
        if min(self.context_tokens) < 8 or min(self.canvas_lens) < 1:
            raise ValueError("context budgets must be >= 8 tokens and canvases >= 1 slot")


@dataclass(frozen=True)
class Split:
    prefix: str
    middle: str
    suffix: str
    kind: str


@dataclass(frozen=True)
class Sample:
    context: list[int]
    """build_context(...).ids, plus the earlier canvases' tokens for a continued block."""
    canvas: list[int]
    """Canvas target: canvas_target tokens of this block, then pads, exactly `canvas_len` long."""
    kind: str
    block: int = 0
    draft: list[int] | None = None
    """The canvas's initial tokens when it starts from a draft (heal + draft tokens, then pads;
    `canvas_len` long), else None."""


@dataclass
class Batch:
    ids: Tensor  # (B, L) input: left-padded context + canvas (masks and corruptions applied)
    key_valid: Tensor  # (B, L) bool
    ctx_len: int
    targets: Tensor  # (B, L): next context token on context rows, true token on canvas rows
    masked: Tensor  # (B, L) bool: canvas slots that were masked (the diffusion loss)
    unmasked: Tensor  # (B, L) bool: visible canvas slots (the self-correction loss)
    context: Tensor  # (B, L) bool: context rows with a valid next context token (dense loss)
    drafted: Tensor  # (B, L) bool: visible slots of drafted canvases (the draft-verification loss)

    @property
    def tokens(self) -> int:
        return int(self.key_valid.sum())


# ------------------------------------------------------------------ splitting
def line_bounds(text: str, pos: int) -> tuple[int, int]:
    """(start, end) of the line holding `pos`; end is the index of its newline (or len)."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def split_document(text: str, kind: str, rng: random.Random) -> Split:
    """Cut `text` at character positions into prefix + middle + suffix (they concatenate to it)."""
    if not text:
        return Split("", "", "", kind)
    pos = rng.randrange(len(text))
    start, end = line_bounds(text, pos)
    if kind == "rest_of_line":
        indent = start + len(text[start:end]) - len(text[start:end].lstrip())
        cursor = indent if rng.random() < 0.4 else rng.randint(start, end)
        a, b = cursor, end
    elif kind == "line":
        a, b = start, min(len(text), end + 1)
    elif kind == "lines":
        b = min(len(text), end + 1)
        for _ in range(rng.randint(1, 11)):
            if b >= len(text):
                break
            b = min(len(text), line_bounds(text, b)[1] + 1)
        a = start
    elif kind == "span":
        length = int(min(400, rng.expovariate(1 / 60))) + 1
        a = pos
        b = min(len(text), a + length)
    else:
        raise ValueError(f"unknown sample kind {kind!r}")
    return Split(text[:a], text[a:b], text[b:], kind)


def clip_window(prefix: str, suffix: str, budget: int) -> tuple[str, str]:
    """Drop text build_context would drop anyway, without changing its result.

    The prefix is cut at a line whose index is a multiple of PREFIX_LINE_QUANTUM
    (so the quantized clip lands on the same line) and before build_context's own
    character window; the suffix after its character pre-cut.
    """
    suffix = suffix[: (budget // 4) * CHARS_PER_TOKEN]
    window_start = len(prefix) - budget * CHARS_PER_TOKEN
    if window_start <= 0:
        return prefix, suffix
    n_lines = prefix.count("\n", 0, window_start)  # lines fully before the window start
    keep_from_line = n_lines // PREFIX_LINE_QUANTUM * PREFIX_LINE_QUANTUM
    if keep_from_line == 0:
        return prefix, suffix
    cut = -1
    for _ in range(keep_from_line):
        cut = prefix.index("\n", cut + 1)
    return prefix[cut + 1 :], suffix


# ------------------------------------------------------------------ samples
def make_sample(
    tok: Tokenizer,
    split: Split,
    budget: int,
    canvas_len: int,
    rng: random.Random,
    max_blocks: int = 3,
    draft: str | None = None,
    snippets: Sequence[tuple[str, str]] = (),
    snippet_budget: int = 0,
) -> Sample:
    """One sample; `draft`: a text to start the canvas from (used when it and the answer fit one
    canvas with room for an end, as `runtime.drafts` requires); `snippets` ((path, text)) go
    before the context within `snippet_budget` tokens."""
    prefix, suffix = clip_window(split.prefix, split.suffix, budget)
    ctx = build_context(tok, prefix, suffix, budget, snippets, snippet_budget)
    target = canvas_target(tok, ctx.heal, split.middle)
    if draft is not None and len(target) < canvas_len:
        ids = canvas_target(tok, ctx.heal, draft)
        if ids and len(ids) < canvas_len:
            pads = [tok.pad_id] * canvas_len
            return Sample(ctx.ids, (target + pads)[:canvas_len], split.kind, 0, (ids + pads)[:canvas_len])
    last = min(max_blocks, len(target) // canvas_len)  # == len//C with no remainder: an all-pad canvas
    block = 0 if last == 0 or rng.random() < 0.5 else rng.randint(1, last)
    body = target[block * canvas_len : (block + 1) * canvas_len]
    canvas = body + [tok.pad_id] * (canvas_len - len(body))
    return Sample(ctx.ids + target[: block * canvas_len], canvas, split.kind, block)


_WORD = re.compile(r"[A-Za-z_]\w*")


def corrupt_draft(text: str, document: str, rng: random.Random) -> str:
    """A plausible wrong draft: one identifier renamed to another of the document's, or (when
    the text has none) one character-level token dropped."""
    words = list(_WORD.finditer(text))
    if words:
        w = rng.choice(words)
        pool = _WORD.findall(document[:20_000])
        other = rng.choice(pool) if pool else w.group() + "_"
        if other == w.group():
            other = other + rng.choice("s_1")
        return text[: w.start()] + other + text[w.end() :]
    if len(text) > 1:
        k = rng.randrange(len(text))
        return text[:k] + text[k + 1 :]
    return text + text


class SampleStream:
    """Endless samples from documents, drawn by length (uniform over characters).

    `keys`: each document's (package, path), for drafted canvases: drafts are retrieved from a
    `WorkspaceIndex` of the document's package, built when first needed.
    `weights`: each document's sampling weight per character (default 1; 0 leaves it out), so a
    corpus's parts can be mixed in other shares than their sizes (`trainer.TrainConfig.mix`).
    All randomness comes from one `random.Random`, whose state is checkpointed."""

    def __init__(
        self,
        tok: Tokenizer,
        texts: Sequence[str],
        cfg: ObjectiveConfig,
        seed: int = 0,
        keys: Sequence[tuple[str, str]] | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        if keys is not None and len(keys) != len(texts):
            raise ValueError("one (package, path) key per document")
        if weights is not None and (len(weights) != len(texts) or min(weights, default=0) < 0):
            raise ValueError("one weight >= 0 per document")
        if (cfg.drafts or cfg.snippets) and keys is None:
            raise ValueError("drafted canvases and snippets need each document's (package, path)")
        rows = zip(texts, keys or [None] * len(texts), weights or [1.0] * len(texts), strict=True)
        kept = [(t, k, round(len(t) * w)) for t, k, w in rows if t.strip()]
        kept = [row for row in kept if row[2] > 0]
        if not kept:
            raise ValueError("no non-empty documents (of weight > 0) to sample from")
        texts = [t for t, _, _ in kept]
        self.keys = [k for _, k, _ in kept]
        self.tok, self.texts, self.cfg = tok, texts, cfg
        self._indexes: dict[str, WorkspaceIndex] = {}
        self.source_names = list(cfg.draft_sources)
        self.source_weights = [cfg.draft_sources[k] for k in self.source_names]
        self.cum: list[int] = []
        total = 0
        for _, _, mass in kept:
            total += mass
            self.cum.append(total)
        self.rng = random.Random(seed)
        self.kind_names = list(cfg.kinds)
        self.kind_weights = [cfg.kinds[k] for k in self.kind_names]

    def document(self) -> int:
        return bisect.bisect_right(self.cum, self.rng.randrange(self.cum[-1]))

    def sample(self, budget: int, canvas_len: int, snippet_budget: int = 0) -> Sample:
        kind = self.rng.choices(self.kind_names, self.kind_weights)[0]
        i = self.document()
        split = split_document(self.texts[i], kind, self.rng)
        draft = None
        if kind == "rest_of_line" and self.cfg.drafts and self.rng.random() < self.cfg.drafts:
            draft = self.draft(i, split)
        snippets: list[tuple[str, str]] = []
        if snippet_budget and self.rng.random() < self.cfg.snippets:
            snippets = self.snippets(i, split)
        tok, blocks = self.tok, self.cfg.max_blocks
        return make_sample(tok, split, budget, canvas_len, self.rng, blocks, draft, snippets, snippet_budget)

    def snippets(self, i: int, split: Split) -> list[tuple[str, str]]:
        """Snippets for document `i`'s split: retrieved from its package, or (`snippet_noise`) a
        window of another document."""
        if self.rng.random() < self.cfg.snippet_noise:
            j = self.document()
            lines = self.texts[j].split("\n")
            start = self.rng.randrange(max(1, len(lines) - WINDOW_LINES))
            return [(self.keys[j][1], "\n".join(lines[start : start + WINDOW_LINES]))]
        package, path = self.keys[i]
        found = workspace_snippets(split.prefix, split.suffix, self.index(package), document=path)
        return [(s.path, s.text) for s in found]

    def draft(self, i: int, split: Split) -> str | None:
        """A draft for document `i`'s split, drawn from `cfg.draft_sources`."""
        source = self.rng.choices(self.source_names, self.source_weights)[0]
        if source == "retrieved":
            package, path = self.keys[i]
            found = line_drafts(
                split.prefix, split.suffix, self.index(package), document=path, library=self.library()
            )
            if found:
                return self.rng.choice(found).text
            source = self.rng.choice(("right", "corrupted"))
        if not split.middle.strip():
            return None
        if source == "right":
            return split.middle
        return corrupt_draft(split.middle, split.prefix[-4000:] + split.suffix[:4000], self.rng)

    def library(self) -> LineLibrary | None:
        return library_from_setting(self.cfg.draft_library)

    def index(self, package: str) -> WorkspaceIndex:
        if package not in self._indexes:
            index = WorkspaceIndex()
            for text, (pkg, path) in zip(self.texts, self.keys, strict=True):
                if pkg == package:
                    index.update(path, text, open_buffer=False)
            self._indexes[package] = index
        return self._indexes[package]

    def batch(self, batch_size: int) -> Batch:
        budget = self.rng.choice(self.cfg.context_tokens)
        canvas_len = self.rng.choice(self.cfg.canvas_lens)
        snippet_budget = self.rng.choice(self.cfg.snippet_tokens) if self.cfg.snippets else 0
        samples = [self.sample(budget, canvas_len, snippet_budget) for _ in range(batch_size)]
        return collate(
            self.tok, samples, self.rng, self.cfg.corrupt, self.cfg.ctx_fraction, self.cfg.draft_visible
        )


def collate(
    tok: Tokenizer,
    samples: Sequence[Sample],
    rng: random.Random,
    corrupt: float = 0.1,
    ctx_fraction: float = 1.0,
    draft_visible: float = 0.5,
) -> Batch:
    """Left-pad contexts to one length, append canvases, mask each canvas at its own rate t.
    A drafted canvas holds its draft, not the target, and is all visible (`draft_visible` of
    them) or masked at its rate t, without random corruption."""
    c = len(samples[0].canvas)
    assert all(len(s.canvas) == c for s in samples), "one canvas length per batch"
    ctx_len = max(len(s.context) for s in samples)
    b, seq = len(samples), ctx_len + c
    ids = torch.full((b, seq), tok.pad_id, dtype=torch.long)  # (B, L)
    key_valid = torch.zeros(b, seq, dtype=torch.bool)  # (B, L)
    for i, s in enumerate(samples):
        n = len(s.context)
        ids[i, ctx_len - n : ctx_len] = torch.tensor(s.context, dtype=torch.long)
        ids[i, ctx_len:] = torch.tensor(s.canvas, dtype=torch.long)
        key_valid[i, ctx_len - n :] = True
    targets = ids.clone()
    targets[:, : ctx_len - 1] = ids[:, 1:ctx_len]
    context = torch.zeros(b, seq, dtype=torch.bool)
    context[:, : ctx_len - 1] = key_valid[:, : ctx_len - 1] & key_valid[:, 1:ctx_len]
    gen = torch.Generator().manual_seed(rng.getrandbits(63))
    if ctx_fraction < 1.0:
        context &= torch.rand(b, seq, generator=gen) < ctx_fraction
    canvas = ids[:, ctx_len:]  # (B, C) view
    canvas_masked, drafted = _noise_canvases(tok, samples, canvas, gen, corrupt, draft_visible)
    masked = torch.zeros(b, seq, dtype=torch.bool)
    masked[:, ctx_len:] = canvas_masked
    unmasked = torch.zeros(b, seq, dtype=torch.bool)
    unmasked[:, ctx_len:] = ~canvas_masked & ~drafted[:, None]
    on_draft = torch.zeros(b, seq, dtype=torch.bool)
    on_draft[:, ctx_len:] = ~canvas_masked & drafted[:, None]
    return Batch(ids, key_valid, ctx_len, targets, masked, unmasked, context, on_draft)


def _noise_canvases(
    tok: Tokenizer, samples: Sequence[Sample], canvas: Tensor, gen: torch.Generator, corrupt: float,
    draft_visible: float,
) -> tuple[Tensor, Tensor]:
    """Mask (and corrupt) the (B, C) canvases in place; (masked slots (B, C), drafted rows (B,))."""
    b, c = canvas.shape
    t = torch.rand(b, 1, generator=gen)  # (B, 1) mask rate per sample
    canvas_masked = torch.rand(b, c, generator=gen) < t  # (B, C)
    drafted = torch.tensor([s.draft is not None for s in samples])  # (B,)
    visible = drafted & (torch.rand(b, generator=gen) < draft_visible)  # (B,) all-visible drafts
    canvas_masked[visible] = False
    none = ~canvas_masked.any(1) & ~visible
    canvas_masked[none, torch.randint(0, c, (int(none.sum()),), generator=gen)] = True
    for i, s in enumerate(samples):
        if s.draft is not None:
            canvas[i] = torch.tensor(s.draft, dtype=torch.long)
    normal = torch.tensor(sorted(set(range(tok.vocab_size)) - tok.special_ids), dtype=torch.long)
    swap = ~canvas_masked & (canvas != tok.pad_id) & (torch.rand(b, c, generator=gen) < corrupt)
    swap &= ~drafted[:, None]
    canvas[swap] = normal[torch.randint(0, len(normal), (int(swap.sum()),), generator=gen)]
    canvas[canvas_masked] = tok.mask_id
    return canvas_masked, drafted
