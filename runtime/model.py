"""The embedded infilling network: a small pre-norm transformer with two attention modes.

* Context tokens are encoded with causal attention, so their keys/values never
  depend on the canvas and can be cached exactly (see `runtime.cache`).
* Canvas tokens attend bidirectionally to each other and to the whole context.

Training runs both at once (`forward_train`, one attention mask); inference
encodes the context once (`encode`) and then runs `denoise` per step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from runtime import ops


@dataclass(frozen=True)
class ModelArgs:
    vocab_size: int = 261
    dim: int = 32
    n_layers: int = 2
    n_heads: int = 2
    ffn_mult: float = 2.75
    canvas_len: int = 16
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        """Impossible shapes are refused here, naming the field, not later inside a forward."""
        for f in fields(self):
            value = getattr(self, f.name)
            kinds = (int,) if f.type in ("int", int) else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds):
                what = "an integer" if kinds == (int,) else "a number"
                raise ValueError(f"{f.name} must be {what}, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{f.name} must be > 0, got {value!r}")
        if self.dim % self.n_heads:
            raise ValueError(f"n_heads {self.n_heads} does not divide dim {self.dim}")
        if self.head_dim % 2:
            raise ValueError(f"dim / n_heads = {self.head_dim} must be even (rotary embeddings rotate pairs)")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_dim(self) -> int:
        return int(self.dim * self.ffn_mult) // 8 * 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelArgs:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**d)


PRESETS: dict[str, ModelArgs] = {
    # random weights, byte-level tokenizer: for tests only
    "tiny": ModelArgs(vocab_size=261, dim=32, n_layers=2, n_heads=2, canvas_len=16),
    # the embedded default model's shape (trained by runtime/train); vocab from its tokenizer
    "small": ModelArgs(vocab_size=8192, dim=256, n_layers=6, n_heads=4, canvas_len=32),
}


KV = list[tuple[Tensor, Tensor]]
"""Per layer (keys, values), each (B, H, T, Dh), rotary already applied to keys."""


class CanvasKV:
    """A context's K/V copied once into per-layer buffers with room for a canvas after it.

    Each denoising step writes the canvas's keys and values into the room, where attaching
    them to the context by concatenation would copy the whole context every step, per
    layer (a tenth of a CPU forward of the embedded model).  Batch 1."""

    def __init__(self, ctx: KV, canvas_len: int) -> None:
        b, h, self.start, dh = ctx[0][0].shape
        if b != 1:
            raise ValueError(f"CanvasKV holds one context, got a batch of {b}")
        self.layers: KV = []
        for k, v in ctx:
            room_k = k.new_empty(1, h, self.start + canvas_len, dh)
            room_v = v.new_empty(1, h, self.start + canvas_len, dh)
            room_k[:, :, : self.start] = k
            room_v[:, :, : self.start] = v
            self.layers.append((room_k, room_v))

    def attach(self, i: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Layer `i`'s context K/V followed by the canvas's `k`, `v` (1, H, C, Dh)."""
        room_k, room_v = self.layers[i]
        end = self.start + k.shape[2]
        room_k[:, :, self.start : end] = k
        room_v[:, :, self.start : end] = v
        return room_k[:, :, :end], room_v[:, :, :end]

    def context(self, i: int) -> tuple[Tensor, Tensor]:
        """Layer `i`'s context K/V, (H, T, Dh) views: what the canvas attention kernel reads."""
        room_k, room_v = self.layers[i]
        return room_k[0, :, : self.start], room_v[0, :, : self.start]


class SharedKV:
    """A context's K/V (batch 1) read by B canvases at once, with no copy of it per canvas: each
    layer's canvas queries of all B canvases attend to it in one product (`Attention.attend_shared`).
    For verifying several drafts against one context in one forward."""

    def __init__(self, ctx: KV) -> None:
        if ctx[0][0].shape[0] != 1:
            raise ValueError(f"SharedKV holds one context, got a batch of {ctx[0][0].shape[0]}")
        self.layers = ctx
        self.start = ctx[0][0].shape[2]

    def context(self, i: int) -> tuple[Tensor, Tensor]:
        """Layer `i`'s context keys and values, (H, T, Dh) views."""
        k, v = self.layers[i]
        return k[0], v[0]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim: int, positions: Tensor, theta: float) -> tuple[Tensor, Tensor]:
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))  # (Dh/2,)
    ang = positions.float()[:, None] * inv[None, :]  # (T, Dh/2)
    return ang.cos(), ang.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x: (..., T, Dh); cos/sin: (T, Dh/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, H, T, Dh/2, 2)
    return out.flatten(-2).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.n_heads, self.head_dim = a.n_heads, a.head_dim
        self.wqkv = nn.Linear(a.dim, 3 * a.dim, bias=False)
        self.wo = nn.Linear(a.dim, a.dim, bias=False)

    def project(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, _ = x.shape
        qkv = self.wqkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        qk = apply_rope(qkv[:2], cos, sin)  # q and k in one call: (2, B, H, T, Dh)
        return qk[0], qk[1], qkv[2]

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        return self.merge(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))

    def merge(self, y: Tensor) -> Tensor:
        """(B, H, T, Dh) attention output -> (B, T, D) through the output projection."""
        b, t = y.shape[0], y.shape[2]
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))

    def attend_shared(self, q: Tensor, k: Tensor, v: Tensor, ck: Tensor, cv: Tensor) -> Tensor:
        """q, k, v: (B, H, C, Dh) of B canvases; ck, cv: (1, H, T, Dh) of their one context.
        Bidirectional inside each canvas; the context is read once for all B * C queries."""
        b, h, c, dh = q.shape
        t = ck.shape[2]
        rows = q.transpose(0, 1).reshape(1, h, b * c, dh)  # (1, H, B*C, Dh): every canvas's queries
        s_ctx = (rows @ ck.transpose(-1, -2)).view(h, b, c, t).transpose(0, 1)  # (B, H, C, T)
        s_own = q @ k.transpose(-1, -2)  # (B, H, C, C)
        p = (torch.cat((s_ctx, s_own), -1).float() / math.sqrt(dh)).softmax(-1).to(q.dtype)  # (B, H, C, T+C)
        p_ctx = p[..., :t].transpose(0, 1).reshape(1, h, b * c, t)  # (1, H, B*C, T)
        y = (p_ctx @ cv).view(h, b, c, dh).transpose(0, 1) + p[..., t:] @ v  # (B, H, C, Dh)
        return self.merge(y)


class FeedForward(nn.Module):
    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.w13 = nn.Linear(a.dim, 2 * a.ffn_dim, bias=False)
        self.w2 = nn.Linear(a.ffn_dim, a.dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, a: ModelArgs) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(a.dim, a.norm_eps)
        self.attn = Attention(a)
        self.ffn_norm = RMSNorm(a.dim, a.norm_eps)
        self.ffn = FeedForward(a)


class InfillTransformer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.embed = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(Block(args) for _ in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.head = nn.Linear(args.dim, args.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied: the vocabulary dominates a small model's size
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith(("wo.weight", "w2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * args.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def _layers(
        self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
        past: KV | CanvasKV | SharedKV | None, keep: bool,
    ) -> tuple[Tensor, KV]:
        """Run every block; keys/values of `past` (per layer) are prepended to the new ones.

        Returns the final hidden states and, if `keep`, the per-layer K/V including `past`."""
        kept: KV = []
        for i, layer in enumerate(self.layers):
            q, k, v = layer.attn.project(layer.attn_norm(x), cos, sin)
            if isinstance(past, SharedKV | CanvasKV) and not keep and ops.kernel_path(q):
                ck, cv = past.context(i)  # (H, T, Dh) each: one context for B canvases
                x = x + layer.attn.merge(ops.attend_canvases(q, ck, cv, k, v))
                x = x + layer.ffn(layer.ffn_norm(x))
                continue
            if isinstance(past, SharedKV):
                x = x + layer.attn.attend_shared(q, k, v, *past.layers[i])
                x = x + layer.ffn(layer.ffn_norm(x))
                continue
            if isinstance(past, CanvasKV):
                k, v = past.attach(i, k, v)
            elif past:
                pk, pv = past[i]
                k = torch.cat((pk.expand(x.shape[0], -1, -1, -1), k), dim=2)  # (B, H, T0+T, Dh)
                v = torch.cat((pv.expand(x.shape[0], -1, -1, -1), v), dim=2)
            if keep:
                kept.append((k, v))
            x = x + layer.attn.attend(q, k, v, mask)
            x = x + layer.ffn(layer.ffn_norm(x))
        return x, kept

    def _rope(self, start: int, length: int, device: torch.device) -> tuple[Tensor, Tensor]:
        pos = torch.arange(start, start + length, device=device)
        return rope_tables(self.args.head_dim, pos, self.args.rope_theta)

    def cast_matrices(self, dtype: torch.dtype) -> None:
        """For inference under `dtype` autocast: store the matrix weights in `dtype` once.

        Autocast otherwise converts every float32 weight at every call, about a quarter of a
        CPU forward of the embedded model.  The products are the same (autocast rounds the
        weights the same way); the head gets its own copy, so the embedding, and the float32
        residual stream it starts, stay as they were.  Inference only: it unties the head."""
        for module in self.modules():
            if isinstance(module, nn.Linear) and module is not self.head:
                module.weight = nn.Parameter(module.weight.detach().to(dtype), requires_grad=False)
        self.head.weight = nn.Parameter(self.embed.weight.detach().to(dtype), requires_grad=False)

    # ------------------------------------------------------------------ training
    def forward_train(self, ids: Tensor, ctx_len: int, key_valid: Tensor) -> Tensor:
        """ids: (B, L) = context (first `ctx_len`, left-padded) + canvas; key_valid: (B, L) bool.

        Returns logits (B, L, V): context rows predict the next context token,
        canvas rows predict the canvas token at their own slot.
        """
        return self.head(self.norm(self.hidden_train(ids, ctx_len, key_valid)))  # (B, L, V)

    def hidden_train(self, ids: Tensor, ctx_len: int, key_valid: Tensor) -> Tensor:
        """`forward_train` before the final norm and head: (B, L, D).  The trainer applies
        the vocabulary-sized head only to the rows it puts a loss on (the head is most of a
        small model's training FLOPs)."""
        seq = ids.shape[1]
        cos, sin = self._rope(0, seq, ids.device)
        allowed = torch.ones(seq, seq, dtype=torch.bool, device=ids.device).tril()
        allowed[ctx_len:, :] = True  # canvas rows see everything
        mask = allowed[None] & key_valid[:, None, :]  # (B, L, L)
        # left-padding rows would see no key at all: let them see themselves (their output is unused)
        mask |= torch.eye(seq, dtype=torch.bool, device=ids.device)[None]
        x, _ = self._layers(self.embed(ids), cos, sin, mask[:, None], None, keep=False)  # (B, L, D)
        return x

    # ----------------------------------------------------------------- inference
    def encode(self, ids: Tensor, past: KV | None) -> KV:
        """Causally encode context tokens `ids` (1, T) after `past`; returns the extended K/V."""
        return self._causal(ids, past, keep=True)[1]

    def _causal(self, ids: Tensor, past: KV | None, keep: bool) -> tuple[Tensor, KV]:
        """`ids` (B, T) after `past` (batch 1), each row seeing `past` and its own earlier tokens."""
        start = past[0][0].shape[2] if past else 0
        t = ids.shape[1]
        cos, sin = self._rope(start, t, ids.device)
        mask = torch.ones(t, start + t, dtype=torch.bool, device=ids.device).tril(diagonal=start)
        return self._layers(self.embed(ids), cos, sin, mask, past, keep=keep)

    def continuation_logits(self, ids: Tensor, past: KV) -> Tensor:
        """Next-token logits (B, T, V) of `ids` (B, T): B causal continuations of one context
        (`past`, batch 1), each row seeing the context and its own earlier tokens.  The causal
        head the context rows are trained with, for scoring candidate texts; a continuation
        shorter than T may be padded on the right (the logits after its end are unused)."""
        x, _ = self._causal(ids, past, keep=False)
        return self.head(self.norm(x))

    def extend(self, ids: Tensor, past: KV) -> tuple[Tensor, KV]:
        """One step of a cached left-to-right decode with the causal head: next-token logits (1, T, V)
        of context tokens `ids` (1, T) after `past`, and the K/V extended by them."""
        x, kv = self._causal(ids, past, keep=True)
        return self.head(self.norm(x)), kv

    def denoise(self, canvas: Tensor, ctx: KV | CanvasKV | SharedKV) -> Tensor:
        """canvas: (B, C) token ids (mask ids at open slots); ctx: the context K/V (batch 1),
        or a `CanvasKV` of it (then B is 1), which repeated steps on one context should use,
        or a `SharedKV` of it (any B, the context not copied per canvas: draft verification).

        Returns logits (B, C, V).
        """
        start = ctx.start if isinstance(ctx, CanvasKV | SharedKV) else ctx[0][0].shape[2]
        cos, sin = self._rope(start, canvas.shape[1], canvas.device)
        x, _ = self._layers(self.embed(canvas), cos, sin, None, ctx, keep=False)  # (B, C, D)
        return self.head(self.norm(x))  # (B, C, V)


def count_params(model: nn.Module) -> int:
    """The model's size as trained: the head is the embedding (tied), also where `cast_matrices`
    made it a separate inference copy."""
    head, embed = getattr(model, "head", None), getattr(model, "embed", None)
    copy = isinstance(model, InfillTransformer) and head.weight is not embed.weight
    return sum(p.numel() for name, p in model.named_parameters() if not (copy and name == "head.weight"))
