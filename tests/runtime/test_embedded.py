"""The embedded engine end to end on the random-weight `tiny` preset (the text is noise;
the plumbing is what is checked)."""

import dataclasses
import threading

import pytest

from runtime.policies import POLICIES
from runtime.types import BadRequest, Cancelled, InfillRequest

PREFIX = "def add(a, b):\n    return a"
SUFFIX = "\n\nprint(add(1, 2))\n"


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_policy_runs_with_stats(tiny_backend, policy):
    r = tiny_backend.infill(InfillRequest(PREFIX, SUFFIX, max_tokens=20, policy=policy))
    s = r.stats
    assert 1 <= s.tokens <= 20 and s.forwards >= 1
    assert s.tokens_per_forward == pytest.approx(s.tokens / s.forwards)
    assert s.ms > 0 and s.context_tokens > 0
    if policy == "sequential":
        assert s.forwards >= s.tokens  # one commit per forward (pad closure aside)


def test_deterministic_at_temperature_zero(tiny_backend):
    req = InfillRequest(PREFIX, SUFFIX, max_tokens=24)
    assert tiny_backend.infill(req).text == tiny_backend.infill(req).text


def test_canvases_continue_up_to_max_tokens(tiny_backend):
    """Random weights rarely emit pad, so canvases fill and continue block-autoregressively."""
    c = tiny_backend.canvas_len
    r = tiny_backend.infill(InfillRequest(PREFIX, SUFFIX, max_tokens=2 * c + 3, policy="threshold"))
    if r.stats.tokens == 2 * c + 3:
        assert r.stats.canvases == 3
    else:  # a pad ended it early: then the last canvas was not full
        assert r.stats.tokens < r.stats.canvases * c


def test_keystroke_reuses_the_context_cache(tiny_backend):
    """A keystroke re-encodes at most one chunk: the cached prefix is reused up to a chunk start."""
    from runtime.cache import ENCODE_CHUNK

    tiny_backend.cache.clear()
    prefix = PREFIX * 8
    first = tiny_backend.infill(InfillRequest(prefix, SUFFIX, max_tokens=4))
    second = tiny_backend.infill(InfillRequest(prefix + " +", SUFFIX, max_tokens=4))
    assert first.stats.cached_tokens == 0 and second.stats.context_tokens > 2 * ENCODE_CHUNK
    assert second.stats.cached_tokens > second.stats.context_tokens - ENCODE_CHUNK - 3


def test_cancel_raises_and_engine_stays_usable(tiny_backend):
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        tiny_backend.infill(InfillRequest(PREFIX, SUFFIX, max_tokens=40, policy="sequential"), cancel)
    assert calls["n"] == 3  # checked before each step; stopped right after the flag turned
    assert tiny_backend.infill(InfillRequest(PREFIX, SUFFIX, max_tokens=4)).stats.tokens >= 1


def test_single_line_has_no_newline(tiny_backend):
    r = tiny_backend.infill(InfillRequest(PREFIX, SUFFIX, max_tokens=40, single_line=True, temperature=1.0))
    assert "\n" not in r.text


def test_deadline_returns_early(tiny_backend):
    req = InfillRequest(PREFIX, SUFFIX, max_tokens=64, policy="adaptive", deadline_ms=0.001)
    r = tiny_backend.infill(req)
    assert r.stats.deadline_hit and r.stats.forwards == 1


def test_rewrite_mode_starts_from_the_draft(tiny_backend):
    draft = "This paragraph is rewritten by the model."
    keep = tiny_backend.infill(InfillRequest("# T\n\n", "\n", draft=draft, remask=0.0, policy="sequential"))
    assert keep.text.startswith(draft)  # nothing re-masked: only the few growth slots are generated
    changed = tiny_backend.infill(InfillRequest("# T\n\n", "\n", draft=draft, remask=1.0))
    assert changed.text != draft


def test_bad_requests(tiny_backend):
    with pytest.raises(BadRequest, match="unknown policy"):
        tiny_backend.infill(InfillRequest("a", "b", policy="nope"))
    with pytest.raises(BadRequest, match="max_tokens"):
        tiny_backend.infill(InfillRequest("a", "b", max_tokens=0))
    with pytest.raises(BadRequest, match="remask"):
        tiny_backend.infill(InfillRequest("a", "b", draft="x", remask=2.0))


def test_concurrent_callers_are_serialised(tiny_backend):
    results, errors = [], []

    def work(i):
        try:
            results.append(tiny_backend.infill(InfillRequest(PREFIX + str(i), SUFFIX, max_tokens=8)).text)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4


def test_long_uncached_context_encode_is_cancellable(tiny_backend):
    tiny_backend.cache.clear()
    checks = {"n": 0}

    def cancel():
        checks["n"] += 1
        return True

    with pytest.raises(Cancelled, match="encoding"):
        tiny_backend.infill(InfillRequest("x = 1\n" * 400, "", context_tokens=2048), cancel)
    assert checks["n"] == 1  # stopped at the first chunk boundary


def test_a_completion_on_a_blank_line_is_never_empty():
    """A stand-in for a model sure that the middle is empty (random weights with +30 on pad and
    on line breaks): mid-line it ends at once; on a blank line visible text must come first."""
    import torch

    from runtime.load import load_embedded

    eng = load_embedded("tiny", threads=1)
    real = eng.model.denoise
    ends = torch.tensor(sorted(eng.tok.newline_ids | {eng.tok.pad_id}))

    def ends_first(canvas, kv):
        logits = real(canvas, kv)
        logits[..., ends] += 30.0
        return logits

    eng.model.denoise = ends_first
    for policy in ("sequential", "threshold", "adaptive"):
        mid_line = InfillRequest(prefix="x = fo", suffix="\n", single_line=True, policy=policy)
        assert eng.infill(mid_line).text == ""
        for prefix in ("def f(x):\n    ", "x = 1\n", ""):
            req = InfillRequest(prefix=prefix, suffix="\n", single_line=True, policy=policy)
            assert eng.infill(req).text.strip(), (policy, prefix)


def test_bfloat16_autocast_engine():
    """The bf16 path (used where the CPU has native bf16) fills, caches bf16 K/V, and is deterministic."""
    import torch

    from runtime.load import load_embedded

    eng = load_embedded("tiny", threads=1, dtype="bfloat16")
    assert eng.compute_dtype is torch.bfloat16
    req = InfillRequest(prefix="def add(a, b):\n    return ", suffix="\n", max_tokens=8)
    first, second = eng.infill(req), eng.infill(req)
    assert first.text == second.text and second.stats.cached_tokens > 0
    entry = next(iter(eng.cache._entries.values()))
    assert entry.kv[0][0].dtype is torch.bfloat16  # half the cache memory of float32
    assert load_embedded("tiny", threads=1).compute_dtype is None  # presets: float32 unless asked


def test_dtype_choices():
    import torch

    from runtime import load
    from runtime.types import ModelLoadError

    assert load.resolve_embedded_dtype("float32", "cpu") is None
    assert load.resolve_embedded_dtype("bfloat16", "cpu") is torch.bfloat16
    with pytest.raises(ModelLoadError, match="CUDA"):
        load.resolve_embedded_dtype("float16", "cpu")
    with pytest.raises(ModelLoadError, match="int8"):
        load.resolve_embedded_dtype("int8", "cpu")
    native = load.cpu_has_native_bf16()
    assert load.resolve_embedded_dtype("auto", "cpu") is (torch.bfloat16 if native else None)


@pytest.mark.parametrize("extra", [-11, 0, 3])
def test_exact_length_fills_exactly_max_tokens(tiny_backend, extra):
    """The oracle-length setting: pad banned, and the last canvas keeps the model's size with its
    slots past the length starting as pad."""
    n = tiny_backend.canvas_len + extra
    req = InfillRequest(prefix="def f(x):\n    return ", suffix="\n", max_tokens=n, exact_length=True)
    res = tiny_backend.infill(req)
    assert res.stats.tokens == n
    assert res.stats.canvases == (2 if extra > 0 else 1)


def test_snippets_reach_only_a_model_trained_with_them(tiny_backend):
    from runtime.types import InfillRequest

    snippets = (("util.py", "def helper_function(value):\n    return value * 2"),)
    base = InfillRequest(prefix="x = helper_", suffix="\n", max_tokens=4, single_line=True)
    with_snippets = InfillRequest(prefix=base.prefix, suffix="\n", max_tokens=4, single_line=True,
                                  snippets=snippets)  # fmt: skip
    plain = tiny_backend.infill(base).stats.context_tokens
    assert tiny_backend.snippet_tokens == 0  # the tiny preset declares no layout
    assert tiny_backend.infill(with_snippets).stats.context_tokens == plain
    tiny_backend.snippet_tokens = 64
    try:
        assert tiny_backend.infill(with_snippets).stats.context_tokens > plain
    finally:
        tiny_backend.snippet_tokens = 0


def test_a_model_declaring_the_layout_encodes_the_snippet_blocks_it_reports(snippet_model, monkeypatch):
    """The shipped weights under a config.json that declares `layout.snippet_tokens` (conftest's
    `snippet_model`; plumbing only, the weights never learned snippets).  The ids the backend hands
    its context cache (a spy that calls through) start with the snippet's `[FILE_SEP] path` block
    and its identifier; the stats report that block, whole snippets only, within the request's
    budget and the model's cap."""
    from runtime.load import load_embedded

    backend = load_embedded(str(snippet_model), threads=1)
    assert backend.snippet_tokens == 128
    tok, encoded, encode = backend.tok, [], backend.cache.encode
    monkeypatch.setattr(
        backend.cache, "encode", lambda model, ids, *a: encoded.append(list(ids)) or encode(model, ids, *a)
    )
    helpers = ("pkg/helpers.py", "def qx_norm(qvec):\n    return qvec\n")
    req = InfillRequest(
        "def f(qvec):\n    value = qx", "\n", max_tokens=8, single_line=True, snippets=(helpers,)
    )
    block = [tok.file_sep_id, *tok.encode("pkg/helpers.py\ndef qx_norm(qvec):\n    return qvec\n\n")]
    r = backend.infill(req)
    assert encoded[-1][: len(block) + 1] == [*block, tok.fim_suffix_id]
    assert "pkg/helpers.py\ndef qx_norm(" in tok.decode(encoded[-1][1 : len(block)])
    assert r.stats.snippets == (("pkg/helpers.py", len(block)),) and r.stats.snippet_tokens == len(block)
    assert r.stats.context_tokens == len(encoded[-1])
    tight = backend.infill(dataclasses.replace(req, snippet_tokens=len(block) - 1))
    assert tight.stats.snippets == () and encoded[-1][0] == tok.fim_suffix_id  # whole or not at all
    long = ("pkg/long.py", "def qx_norm(qvec):\n" + "    qvec = qvec + 1\n" * 40)  # > 128 tokens
    assert 128 < 1 + len(tok.encode(f"{long[0]}\n{long[1]}\n")) < 4096
    capped = backend.infill(dataclasses.replace(req, snippets=(long, helpers), snippet_tokens=4096))
    assert capped.stats.snippets == (("pkg/helpers.py", len(block)),)  # the model's cap, 128, wins
    held = InfillRequest("def qx_norm(qvec):\n    return qvec\n\n\ndef f(qvec):\n    value = qx", "\n",
                         max_tokens=8, single_line=True, snippets=(helpers,))  # fmt: skip
    assert backend.infill(held).stats.snippets == ()  # the context already holds its lines
