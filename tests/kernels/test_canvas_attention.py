"""Batched canvas attention: the Triton kernels against the reference on small awkward shapes (under the
interpreter on CPU), the reference against the embedded model's own attention, the launcher's
messages, and the real shapes on a GPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kernel_support import DEVICE, gpu_only, needs_triton

from kernels.canvas_attention import reference, triton_canvas_attention
from runtime.model import PRESETS, CanvasKV, InfillTransformer


def inputs(n, h, hkv, c, t, d, dtype=torch.float32, device=DEVICE, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    return r(n, h, c, d), r(hkv, t, d), r(hkv, t, d), r(n, hkv, c, d), r(n, hkv, c, d)


def reference_fp32(q, ck, cv, k, v):
    """The reference on the same values in float32: what the kernel's float32 accumulation aims at."""
    return reference(*(x.float() for x in (q, ck, cv, k, v)))


# (K canvases, H heads, Hkv kv heads, C slots, T context, D head dim, splits); block_t is 16 throughout
SHAPES = [
    (1, 2, 2, 1, 50, 16, 3),  # K = 1, C = 1; T = 50 is not a multiple of the 16-key tile
    (3, 4, 2, 5, 37, 24, 2),  # K = 3, grouped heads (2 per kv head); D = 24 is not a power of two
    (3, 4, 4, 19, 16, 64, 1),  # C = 19 spans two canvas tiles; one split
    (2, 2, 1, 3, 0, 16, None),  # no context at all: the canvas attends to itself only
]


@needs_triton
@pytest.mark.parametrize(("n", "h", "hkv", "c", "t", "d", "splits"), SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_matches_reference(n, h, hkv, c, t, d, splits, dtype):
    q, ck, cv, k, v = inputs(n, h, hkv, c, t, d, dtype)
    got = triton_canvas_attention(q, ck, cv, k, v, splits=splits, block_t=16)
    assert got.dtype == dtype and got.shape == q.shape
    if dtype == torch.float32:
        # float32 throughout (the products at IEEE precision): only the order of the sums differs
        torch.testing.assert_close(got, reference_fp32(q, ck, cv, k, v), rtol=1e-5, atol=1e-5)
    else:
        # the output is rounded to bfloat16 (2**-8 relative), and on a GPU the softmax weights are too
        # before the P @ V product; values are O(1), so 2e-2 holds a few such roundings
        torch.testing.assert_close(got.float(), reference_fp32(q, ck, cv, k, v), rtol=2e-2, atol=2e-2)


@needs_triton
def test_kernel_reads_the_context_in_place_from_a_canvas_room():
    """The model keeps the context in a `CanvasKV` room with space after it: a (Hkv, T, D) view whose
    rows are T + C apart and whose heads are not contiguous; the kernel takes its strides as they are."""
    n, h, c, t, d = 2, 2, 4, 40, 16
    q, ck, cv, k, v = inputs(n, h, h, c, t, d)
    room = CanvasKV([(ck[None], cv[None])], canvas_len=c)
    room_k, room_v = room.layers[0]
    ctx_k, ctx_v = room_k[0, :, :t], room_v[0, :, :t]  # (H, T, D) views into (1, H, T + C, D)
    assert not ctx_k.is_contiguous()
    got = triton_canvas_attention(q, ctx_k, ctx_v, k, v, splits=2, block_t=16)
    torch.testing.assert_close(got, reference(q, ck, cv, k, v), rtol=1e-5, atol=1e-5)


def test_reference_is_the_models_attention():
    """The embedded model's denoise step (context K/V expanded to the batch, concatenated with the
    canvas's, no mask) is the reference with q (B, H, C, Dh) and the context's (H, T, Dh)."""
    torch.manual_seed(0)
    model = InfillTransformer(PRESETS["tiny"]).eval()
    ctx = model.encode(torch.randint(0, 200, (1, 9)), None)
    layer = model.layers[0]
    canvas = torch.randint(0, 200, (3, 5))  # (B, C): three drafts on one context
    x = layer.attn_norm(model.embed(canvas))
    q, k, v = layer.attn.project(x, *model._rope(9, 5, canvas.device))  # (B, H, C, Dh)
    pk, pv = ctx[0]  # (1, H, T, Dh)
    keys = torch.cat((pk.expand(3, -1, -1, -1), k), dim=2)
    values = torch.cat((pv.expand(3, -1, -1, -1), v), dim=2)
    want = F.scaled_dot_product_attention(q, keys, values)
    assert torch.equal(reference(q, pk[0], pv[0], k, v), want)


# ---------------------------------------------------------------- launcher checks


def ok(**change):
    args = dict(zip(("q", "ctx_k", "ctx_v", "k", "v"), inputs(2, 4, 2, 3, 8, 16, device="cpu"), strict=True))
    return {**args, **change}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (ok(q=torch.zeros(4, 3, 16)), r"q must be \(K, H, C, D\), got shape \(4, 3, 16\)"),
        (ok(ctx_k=torch.zeros(2, 8, 32)), r"ctx_k must be \(Hkv, T, D\) with D = 16"),
        (ok(ctx_v=torch.zeros(2, 9, 16)), r"ctx_v must match ctx_k \(2, 8, 16\), got \(9|\(2, 9, 16\)"),
        (ok(k=torch.zeros(1, 2, 3, 16)), r"k must be \(K, Hkv, C, D\) = \(2, 2, 3, 16\), got \(1, 2,"),
        (ok(q=torch.zeros(2, 3, 3, 16)), r"query heads \(3\) must be a multiple of kv heads \(2\)"),
        (ok(v=torch.zeros(2, 2, 3, 16, dtype=torch.float16)), "v is torch.float16 but q is torch.float32"),
        (ok(q=torch.zeros(2, 4, 3, 16, dtype=torch.int64)), "float32, float16 or bfloat16"),
        (ok(ctx_k=torch.zeros(2, 16, 8).transpose(1, 2)), "ctx_k must be contiguous along D"),
    ],
)
def test_launcher_names_the_bad_argument(args, message):
    with pytest.raises(ValueError, match=message):
        triton_canvas_attention(**args)


def test_launcher_refuses_cpu_tensors_outside_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="need CUDA tensors, got cpu"):
        triton_canvas_attention(**ok())


# ---------------------------------------------------------------- real shapes on a GPU


@gpu_only
@needs_triton
@pytest.mark.parametrize(
    ("n", "h", "hkv", "c", "t", "d"),
    [
        (3, 4, 4, 32, 32_768, 64),  # the embedded model (4 heads of 64), three drafts, a 32k context
        (1, 4, 4, 32, 4_000, 64),
        (4, 16, 8, 64, 8_192, 256),  # DiffusionGemma-like grouped heads
    ],
)
def test_kernel_at_real_shapes(n, h, hkv, c, t, d):
    q, ck, cv, k, v = inputs(n, h, hkv, c, t, d, torch.bfloat16, device="cuda")
    got = triton_canvas_attention(q, ck, cv, k, v)
    # bfloat16 output and softmax weights, as above; the float32 sums over 32k keys add ~1e-6
    torch.testing.assert_close(got.float(), reference_fp32(q, ck, cv, k, v), rtol=2e-2, atol=2e-2)
