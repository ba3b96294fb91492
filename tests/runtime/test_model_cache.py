import torch

from runtime.cache import ContextCache, crop, kv_nbytes
from runtime.model import PRESETS, CanvasKV, InfillTransformer, ModelArgs, count_params


def _model(seed=0):
    torch.manual_seed(seed)
    return InfillTransformer(PRESETS["tiny"]).eval()


def test_cached_and_uncached_logits_agree():
    model = _model()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 261, (1, 40), generator=g)  # (1, T)
    canvas = torch.randint(5, 261, (1, 16), generator=g)  # (1, C)
    with torch.inference_mode():
        full = model.denoise(canvas, model.encode(ids, None))
        cache = ContextCache()
        cache.store(ids[0, :30].tolist(), model.encode(ids[:, :30], None))
        n, past = cache.lookup(ids[0].tolist())
        assert n == 30
        cached = model.denoise(canvas, model.encode(ids[:, n:], past))
        assert torch.allclose(full, cached, atol=1e-5, rtol=0)
        # a different tail after a shared prefix (an edit at the cursor) also agrees
        edited = ids.clone()
        edited[0, 35:] = 7
        n, past = cache.lookup(edited[0].tolist())
        assert n == 30
        got = model.denoise(canvas, model.encode(edited[:, n:], past))
        want = model.denoise(canvas, model.encode(edited, None))
        assert torch.allclose(got, want, atol=1e-5, rtol=0)


def test_training_forward_matches_inference():
    """The training layout (one masked forward) and the cached inference path are the same function."""
    model = _model()
    g = torch.Generator().manual_seed(2)
    ctx = torch.randint(5, 261, (1, 24), generator=g)
    canvas = torch.randint(5, 261, (1, 16), generator=g)
    pad = torch.zeros(1, 8, dtype=torch.long)  # left padding inside the training context
    ids = torch.cat([pad, ctx, canvas], dim=1)  # (1, 48)
    valid = torch.cat([torch.zeros(1, 8, dtype=torch.bool), torch.ones(1, 40, dtype=torch.bool)], dim=1)
    with torch.inference_mode():
        train = model.forward_train(ids, ctx_len=32, key_valid=valid)
        infer = model.denoise(canvas, model.encode(ctx, None))
        assert torch.allclose(train[:, 32:], infer, atol=1e-5, rtol=0)
        # context rows are causal: changing the canvas leaves them unchanged
        other = ids.clone()
        other[0, 40:] = 9
        train2 = model.forward_train(other, ctx_len=32, key_valid=valid)
        assert torch.allclose(train[:, 8:32], train2[:, 8:32], atol=1e-6)
        assert not torch.allclose(train[:, 32:], train2[:, 32:], atol=1e-6)


def test_continuations_read_the_causal_head_of_the_training_layout():
    """B continuations of one cached context get the next-token logits the training forward gives
    its context rows (each continuation sees only the context and its own earlier tokens)."""
    model = _model()
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 261, (2, 30), generator=g)
    ids[1, :20] = ids[0, :20]  # one shared context, two continuations of 10 tokens
    canvas = torch.randint(5, 261, (2, 16), generator=g)
    valid = torch.ones(2, 46, dtype=torch.bool)
    with torch.inference_mode():
        train = model.forward_train(torch.cat([ids, canvas], 1), ctx_len=30, key_valid=valid)
        got = model.continuation_logits(ids[:, 20:], model.encode(ids[:1, :20], None))
        assert torch.allclose(got, train[:, 20:30], atol=1e-5, rtol=0)
        padded = model.continuation_logits(torch.cat([ids[:, 20:25], torch.zeros(2, 3, dtype=torch.long)], 1),
                                           model.encode(ids[:1, :20], None))  # fmt: skip
        assert torch.allclose(padded[:, :5], train[:, 20:25], atol=1e-5, rtol=0)


def test_canvas_is_bidirectional():
    model = _model()
    ctx = model.encode(torch.arange(5, 15)[None], None)
    a = torch.arange(20, 36)[None]
    b = a.clone()
    b[0, -1] = 99
    with torch.inference_mode():
        la, lb = model.denoise(a, ctx), model.denoise(b, ctx)
    assert not torch.allclose(la[0, 0], lb[0, 0])  # slot 0 sees the last slot


def test_cache_is_bounded_by_bytes_and_lru():
    model = _model()
    with torch.inference_mode():
        kv = model.encode(torch.arange(5, 45)[None], None)
    size = kv_nbytes(kv)
    cache = ContextCache(max_bytes=int(size * 2.5))
    for start in (100, 150, 200):  # three unrelated contexts of equal size
        ids = list(range(start, start + 40))
        cache.store(ids, kv)
    assert cache.stats().entries == 2 and cache.stats().nbytes <= cache.max_bytes
    assert cache.lookup(list(range(100, 140)))[0] == 0  # the oldest was evicted
    assert cache.lookup(list(range(200, 240)))[0] == 40


def test_extension_replaces_its_prefix_entry():
    model = _model()
    with torch.inference_mode():
        kv = model.encode(torch.arange(5, 45)[None], None)
    cache = ContextCache()
    cache.store(list(range(30)), crop(kv, 30))
    cache.store(list(range(40)), kv)
    assert cache.stats().entries == 1


def test_model_args_roundtrip_and_validation():
    a = ModelArgs(dim=64, n_heads=4)
    assert ModelArgs.from_dict(a.to_dict()) == a
    try:
        ModelArgs.from_dict({"dimm": 3})
    except ValueError as e:
        assert "dimm" in str(e)
    else:
        raise AssertionError("unknown key accepted")


def test_chunked_encode_equals_one_pass():
    model = _model()
    ids = torch.randint(5, 261, (1, 70), generator=torch.Generator().manual_seed(3))
    canvas = torch.arange(5, 21)[None]
    with torch.inference_mode():
        kv = None
        for start in range(0, 70, 32):
            kv = model.encode(ids[:, start : start + 32], kv)
        a = model.denoise(canvas, kv)
        b = model.denoise(canvas, model.encode(ids, None))
    assert torch.allclose(a, b, atol=1e-5, rtol=0)


def test_canvas_kv_steps_equal_concatenation():
    """Denoising steps through one `CanvasKV` (canvas K/V written into room after the context)
    give the logits of the plain path, step after step, and leave the context's K/V untouched."""
    model = _model()
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(5, 261, (1, 30), generator=g)
    with torch.inference_mode():
        kv = model.encode(ids, None)
        before = [(k.clone(), v.clone()) for k, v in kv]
        room = CanvasKV(kv, 16)
        for _ in range(3):  # each step a different canvas: nothing of the previous step may remain
            canvas = torch.randint(5, 261, (1, 16), generator=g)
            assert torch.equal(model.denoise(canvas, room), model.denoise(canvas, kv))
        shorter = torch.randint(5, 261, (1, 8), generator=g)  # a canvas shorter than the room
        assert torch.equal(model.denoise(shorter, room), model.denoise(shorter, kv))
        for (k, v), (k0, v0) in zip(kv, before, strict=True):
            assert torch.equal(k, k0) and torch.equal(v, v0)
        try:
            CanvasKV([(k.expand(2, -1, -1, -1), v.expand(2, -1, -1, -1)) for k, v in kv], 16)
        except ValueError as e:
            assert "batch" in str(e)
        else:
            raise AssertionError("a batch of contexts accepted")


def test_cast_matrices_keeps_autocast_logits_and_a_float32_embedding():
    """Storing the matrices in bfloat16 once gives the logits autocast gives with float32
    weights (it casts them the same way at every call); the embedding stays float32."""
    model = _model()
    ids = torch.randint(5, 261, (1, 20), generator=torch.Generator().manual_seed(5))
    canvas = torch.arange(5, 21)[None]
    size = count_params(model)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = model.denoise(canvas, model.encode(ids, None))
    model.cast_matrices(torch.bfloat16)
    assert count_params(model) == size  # the head copy is not a new parameter of the model
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = model.denoise(canvas, model.encode(ids, None))
    assert torch.equal(got, want)
    assert model.embed.weight.dtype == torch.float32
    assert model.head.weight.dtype == torch.bfloat16 and model.head.weight is not model.embed.weight
    assert model.layers[0].attn.wqkv.weight.dtype == torch.bfloat16


def test_greedy_answers_do_not_depend_on_what_the_cache_holds(tiny_backend):
    """Issue 15 item 9: the same document and position give the same greedy answer cold and warm
    (after the contexts of earlier keystrokes were cached), because a cached prefix is reused only
    up to a chunk start and every chunk is computed from the same inputs.  Compared bit for bit."""
    import torch

    from runtime.context import build_context
    from runtime.types import InfillRequest

    text = "".join(f"def f{i}(x):\n    return x * {i} + sum(range({i}))\n" for i in range(40))
    req = InfillRequest(prefix=text + "def g(y):\n    return y", suffix="\n", single_line=True)
    ids = build_context(tiny_backend.tok, req.prefix, req.suffix, req.context_tokens).ids
    b = tiny_backend
    with torch.inference_mode():
        b.cache.clear()
        cold = b.cache.encode(b.model, list(ids), b.device).kv
        b.cache.clear()
        for k in (9, 5, 2):
            b.cache.encode(b.model, list(ids[:-k]), b.device)
        warm = b.cache.encode(b.model, list(ids), b.device)
    assert warm.cached > 0 and warm.cached % 64 == 0
    same = [torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]) for a, c in zip(cold, warm.kv, strict=True)]
    assert all(same)
    b.cache.clear()
    first = b.infill(req).text
    for k in (7, 3):
        b.infill(InfillRequest(prefix=req.prefix[:-k], suffix="\n", single_line=True))
    assert b.infill(req).text == first
