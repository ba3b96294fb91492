"""Objective: character-level splits, server-identical context/canvas layout, batch masking."""

import random

import pytest
import torch

from runtime.canvas import canvas_target
from runtime.context import build_context
from runtime.train.objective import (
    KINDS,
    ObjectiveConfig,
    SampleStream,
    Split,
    clip_window,
    collate,
    corrupt_draft,
    make_sample,
    split_document,
)
from runtime.train.tokenizer_train import train_tokenizer


def module(n: int) -> str:
    return "".join(
        f"def handler_{i}(request, value={i}):\n    result = request.get('key_{i}', value)\n"
        f"    if result is None:\n        return []\n    return [result] * {i % 7}\n\n"
        for i in range(n)
    )


DOC = module(120)  # ~16k characters: longer than any context window below


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([module(30), "Plain prose in a README.\n"] * 5, vocab_size=500)


@pytest.mark.parametrize("kind", KINDS)
def test_splits_are_character_level_and_concatenate(kind):
    rng = random.Random(kind)
    for _ in range(300):
        s = split_document(DOC, kind, rng)
        assert s.prefix + s.middle + s.suffix == DOC
        if kind == "rest_of_line":
            assert "\n" not in s.middle and (s.suffix == "" or s.suffix.startswith("\n"))
        if kind in ("line", "lines"):
            assert s.prefix == "" or s.prefix.endswith("\n")
            assert s.middle.endswith("\n") or not s.suffix
        if kind == "line":
            assert s.middle.count("\n") <= 1
        if kind == "lines":
            assert s.middle.count("\n") >= 2 or not s.suffix


def test_rest_of_line_cursor_lands_mid_word_and_after_indentation():
    rng = random.Random(0)
    splits = [split_document(DOC, "rest_of_line", rng) for _ in range(400)]
    mid_word = [s for s in splits if s.prefix[-1:].isalnum() and s.middle[:1].isalnum()]
    after_indent = [s for s in splits if s.prefix.endswith("    ") and s.middle[:1].isalpha()]
    assert len(mid_word) > 20 and len(after_indent) > 20


@pytest.mark.parametrize("budget", [64, 128, 320])
def test_clip_window_changes_nothing_build_context_sees(tok, budget):
    rng = random.Random(budget)
    for _ in range(60):
        s = split_document(DOC, rng.choice(KINDS), rng)
        prefix, suffix = clip_window(s.prefix, s.suffix, budget)
        assert len(prefix) <= len(s.prefix)
        full = build_context(tok, s.prefix, s.suffix, budget)
        cut = build_context(tok, prefix, suffix, budget)
        assert (cut.ids, cut.heal) == (full.ids, full.heal)


def test_sample_layout_is_exactly_the_servers(tok):
    rng = random.Random(1)
    for _ in range(100):
        s = split_document(DOC, rng.choice(KINDS), rng)
        sample = make_sample(tok, s, 128, 16, random.Random(0), max_blocks=0)
        ctx = build_context(tok, s.prefix, s.suffix, 128)
        target = canvas_target(tok, ctx.heal, s.middle)
        assert sample.context == ctx.ids
        assert len(sample.canvas) == 16
        body = target[:16]
        assert sample.canvas == body + [tok.pad_id] * (16 - len(body))


def test_block_continuation_appends_earlier_canvases_to_the_context(tok):
    split = Split(DOC[:3000], DOC[3000:3400], DOC[3400:], "span")
    ctx = build_context(tok, split.prefix, split.suffix, 128)
    target = canvas_target(tok, ctx.heal, split.middle)
    assert len(target) > 3 * 16
    blocks = set()
    for seed in range(40):
        s = make_sample(tok, split, 128, 16, random.Random(seed), max_blocks=3)
        j = s.block
        blocks.add(j)
        assert s.context == ctx.ids + target[: j * 16]
        assert s.canvas == target[j * 16 : (j + 1) * 16]  # full canvas: no pad, the engine goes on
    assert blocks == {0, 1, 2, 3}


def test_middle_ending_on_a_canvas_boundary_trains_an_all_pad_canvas(tok):
    prefix = "x = 1\n"
    ctx = build_context(tok, prefix, "", 64)
    middle = "y"
    while len(canvas_target(tok, ctx.heal, middle)) < 8:
        middle += " y"
    assert len(canvas_target(tok, ctx.heal, middle)) == 8
    seen = {
        make_sample(tok, Split(prefix, middle, "", "span"), 64, 8, random.Random(s)).block for s in range(20)
    }
    assert seen == {0, 1}
    s = next(
        make_sample(tok, Split(prefix, middle, "", "span"), 64, 8, random.Random(k))
        for k in range(20)
        if make_sample(tok, Split(prefix, middle, "", "span"), 64, 8, random.Random(k)).block == 1
    )
    assert s.canvas == [tok.pad_id] * 8


def test_collate_left_pads_masks_and_sets_targets(tok):
    rng = random.Random(3)
    samples = [make_sample(tok, split_document(DOC, k, rng), 96, 16, rng) for k in KINDS]
    b = collate(tok, samples, random.Random(0), corrupt=0.0, ctx_fraction=1.0)
    n, seq = b.ids.shape
    assert n == len(samples) and seq == b.ctx_len + 16
    for i, s in enumerate(samples):
        start = b.ctx_len - len(s.context)
        assert b.ids[i, start : b.ctx_len].tolist() == s.context
        assert not b.key_valid[i, :start].any() and b.key_valid[i, start:].all()
        assert b.targets[i, b.ctx_len :].tolist() == s.canvas
        # context rows predict the next context token
        rows = b.context[i].nonzero().flatten().tolist()
        assert rows == list(range(start, b.ctx_len - 1))
        assert b.targets[i, rows].tolist() == s.context[1:]
    canvas = b.ids[:, b.ctx_len :]
    assert torch.equal(canvas == tok.mask_id, b.masked[:, b.ctx_len :])
    assert (b.masked.sum(1) >= 1).all()
    assert torch.equal(b.unmasked[:, b.ctx_len :], ~b.masked[:, b.ctx_len :])
    visible = ~b.masked[:, b.ctx_len :]
    assert torch.equal(canvas[visible], b.targets[:, b.ctx_len :][visible])  # no corruption asked


def test_mask_rate_varies_and_corruption_hits_only_visible_tokens(tok):
    rng = random.Random(4)
    samples = [make_sample(tok, split_document(DOC, "lines", rng), 96, 32, rng) for _ in range(64)]
    b = collate(tok, samples, random.Random(0), corrupt=0.3, ctx_fraction=0.25)
    rates = b.masked.sum(1).float() / 32
    assert rates.min() < 0.2 and rates.max() > 0.8  # t ~ U(0, 1) per sample
    canvas, target = b.ids[:, b.ctx_len :], b.targets[:, b.ctx_len :]
    changed = (canvas != target) & ~b.masked[:, b.ctx_len :]
    assert changed.any()
    assert not (changed & (target == tok.pad_id)).any()  # pads are never corrupted
    assert not set(canvas[changed].tolist()) & (tok.special_ids - {tok.mask_id})
    full = collate(tok, samples, random.Random(0), ctx_fraction=1.0).context.sum()
    assert 0.15 * full < b.context.sum() < 0.35 * full


def test_stream_samples_documents_by_weighted_size(tok):
    """Weights scale each document's characters; 0 leaves it out; none keeps the old draws."""
    cfg = ObjectiveConfig(context_tokens=(64, 96), canvas_lens=(8, 16))
    texts = ["a" * 1000, "b" * 1000, "c" * 1000]
    plain = SampleStream(tok, texts, cfg, seed=1)
    ones = SampleStream(tok, texts, cfg, seed=1, weights=[1.0, 1.0, 1.0])
    assert [plain.document() for _ in range(50)] == [ones.document() for _ in range(50)]
    mixed = SampleStream(tok, texts, cfg, seed=1, weights=[3.0, 0.0, 1.0])
    assert mixed.texts == ["a" * 1000, "c" * 1000]
    draws = [mixed.document() for _ in range(4000)]
    assert 0.70 < draws.count(0) / len(draws) < 0.80  # 3 : 1
    with pytest.raises(ValueError, match="weight"):
        SampleStream(tok, texts, cfg, weights=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="one weight >= 0 per document"):
        SampleStream(tok, texts, cfg, weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="one weight >= 0 per document"):
        SampleStream(tok, texts, cfg, weights=[1.0])


def test_stream_is_deterministic_per_seed(tok):
    cfg = ObjectiveConfig(context_tokens=(64, 96), canvas_lens=(8, 16))
    a = SampleStream(tok, [DOC, "short doc\n"], cfg, seed=7).batch(4)
    b = SampleStream(tok, [DOC, "short doc\n"], cfg, seed=7).batch(4)
    assert torch.equal(a.ids, b.ids) and torch.equal(a.masked, b.masked)
    with pytest.raises(ValueError, match="unknown sample kinds"):
        ObjectiveConfig(kinds={"paragraph": 1.0})


# ------------------------------------------------------------------ drafted canvases
def test_drafted_sample_keeps_the_answer_as_target_and_the_draft_on_the_canvas(tok):
    prefix, middle = DOC[:4000] + "    result = ", "request.get('key_9', value)"
    s = make_sample(tok, Split(prefix, middle, "\n" + DOC[4000:], "rest_of_line"), 96, 16,
                    random.Random(0), draft="request.get('key_8', value)")  # fmt: skip
    ctx = build_context(tok, *clip_window(prefix, "\n" + DOC[4000:], 96), 96)
    assert s.canvas[: len(canvas_target(tok, ctx.heal, middle))] == canvas_target(tok, ctx.heal, middle)
    assert s.draft[: len(canvas_target(tok, ctx.heal, "request.get('key_8', value)"))] == canvas_target(
        tok, ctx.heal, "request.get('key_8', value)"
    )
    assert len(s.draft) == len(s.canvas) == 16 and s.draft != s.canvas
    # a draft that does not fit a canvas with room for its end is not used
    split = Split(prefix, middle, "", "rest_of_line")
    long = make_sample(tok, split, 96, 16, random.Random(0), draft="x " * 40)
    assert long.draft is None


def test_collate_puts_drafts_on_canvases_and_marks_their_slots(tok):
    rng = random.Random(5)
    plain = [make_sample(tok, split_document(DOC, "rest_of_line", rng), 96, 16, rng) for _ in range(8)]
    split = Split(DOC[:3000] + "    return [", "result] * 3", "\n" + DOC[3000:], "rest_of_line")
    drafted = [make_sample(tok, split, 96, 16, rng, draft="value] * 3") for _ in range(8)]
    b = collate(tok, plain + drafted, random.Random(0), corrupt=0.5, ctx_fraction=1.0, draft_visible=0.5)
    c = b.ctx_len
    assert not b.drafted[:8].any() and not b.unmasked[8:].any()  # each visible slot has one loss
    for i, s in enumerate(drafted, start=8):
        visible = ~b.masked[i, c:]
        assert b.ids[i, c:][visible].tolist() == torch.tensor(s.draft)[visible].tolist()  # not corrupted
        assert b.targets[i, c:].tolist() == s.canvas  # the truth at every slot
        assert torch.equal(b.drafted[i, c:], visible)
    all_visible = [i for i in range(8, 16) if not b.masked[i].any()]
    assert 0 < len(all_visible) < 8  # some verification passes, some re-masked canvases


def test_stream_retrieves_drafts_from_the_documents_own_package(tok):
    shared = "    total = compute_the_total(values, weights)\n"
    docs = [
        "def a(values, weights):\n" + shared + "    return total\n" + module(3),
        "def b(values, weights):\n" + shared + "    return total\n" + module(4),
        "def c(values):\n    total = sum(values)\n    return total\n" + module(5),
    ]
    keys = [("site:one", "a.py"), ("site:one", "b.py"), ("site:two", "c.py")]
    cfg = ObjectiveConfig(drafts=1.0, draft_sources={"retrieved": 1.0})
    stream = SampleStream(tok, docs, cfg, seed=0, keys=keys)
    split = Split("def a(values, weights):\n    total = ", "compute_the_total(values, weights)",
                  "\n    return total\n", "rest_of_line")  # fmt: skip
    assert stream.draft(0, split) == "compute_the_total(values, weights)"  # found in b.py, not a.py
    assert stream.index("site:one").keys() == ["a.py", "b.py"] and stream.index("site:two").keys() == ["c.py"]
    with pytest.raises(ValueError, match="package, path"):
        SampleStream(tok, docs, cfg, seed=0)
    a = SampleStream(tok, docs, ObjectiveConfig(drafts=0.5), seed=3, keys=keys).batch(16)
    b = SampleStream(tok, docs, ObjectiveConfig(drafts=0.5), seed=3, keys=keys).batch(16)
    assert torch.equal(a.ids, b.ids) and torch.equal(a.drafted, b.drafted)


def test_corrupted_drafts_are_plausible_and_wrong():
    rng = random.Random(0)
    for text in ("self.value = value", "return compute(x, y)", "))", "x"):
        bad = corrupt_draft(text, "def f(alpha, beta):\n    gamma = alpha\n", rng)
        assert bad != text and bad


def test_stream_puts_package_snippets_before_the_context(tok):
    shared = (
        "def compute_the_total(values, weights):\n    return sum(v * w for v, w in zip(values, weights))\n"
    )
    docs = [shared + "\n" * 25 + module(3), "values = load()\nweights = load()\ntotal = ok\n" + module(4)]
    keys = [("site:one", "a.py"), ("site:one", "b.py")]
    cfg = ObjectiveConfig(snippets=1.0, snippet_noise=0.0, snippet_tokens=(96,))
    stream = SampleStream(tok, docs, cfg, seed=0, keys=keys)
    split = Split(docs[1][: docs[1].index("total =")] + "total = ", "compute_the_total(values, weights)",
                  "\n" + module(4), "rest_of_line")  # fmt: skip
    found = stream.snippets(1, split)
    assert found and found[0][0] == "a.py" and "compute_the_total" in found[0][1]
    sample = make_sample(tok, split, 96, 16, random.Random(0), snippets=found, snippet_budget=96)
    assert sample.context[0] == tok.file_sep_id  # the layout the server uses (runtime.context)
    assert sample.context[-len(make_sample(tok, split, 96, 16, random.Random(0)).context) :] == (
        make_sample(tok, split, 96, 16, random.Random(0)).context
    )
    assert stream.batch(4).ids.shape[0] == 4  # batches draw a snippet budget and still build


def test_retrieved_drafts_come_from_the_line_library_too(tok, tmp_path):
    """`draft_library`: the samples' retrieved drafts include the library's, as the server's do."""
    from runtime import library

    lib = tmp_path / "lines.tsv.gz"
    library.write(lib, [(40, 1, "if qx_seen:", "return qx_hit")], {"corpus": "test"})
    docs = ["def a(qx_seen):\n    if qx_seen:\n        return 1\n" + module(3)]
    split = Split("def a(qx_seen):\n    if qx_seen:\n        ", "return 1", "\n", "rest_of_line")
    for spec, want in ((str(lib), "return qx_hit"), ("", None)):
        cfg = ObjectiveConfig(drafts=1.0, draft_sources={"retrieved": 1.0}, draft_library=spec)
        stream = SampleStream(tok, docs, cfg, seed=0, keys=[("site:one", "a.py")])
        got = stream.draft(0, split)
        assert (got == want) if want else got != "return qx_hit"
