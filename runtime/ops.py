"""The runtime's one door to the GPU kernels (kernels/README.md): the kernel path or today's code.

    kernel_path(t)     the dispatch: the Triton kernels run when `t` is on CUDA, triton imports and
                       kernels are on (`kernels.uses_kernels`); otherwise the PyTorch code of
                       `runtime.sampler.beliefs` and `runtime.model`, which is the whole CPU path
    KernelBeliefs      one canvas's beliefs per step, fused (`kernels.beliefs`): the sampler's
                       constraints and its rules' `constrain`/`propose` as a constraint table
    attend_canvases    the embedded model's canvas attention over the shared context K/V

Kernels are off with the `kernels` setting or `--no-kernels` (`runtime.load.load_backend(kernels=False)`
calls `kernels.set_kernels_enabled`), or with DG_LSP_KERNELS=0.  `forced_kernels()` is for tests only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

import kernels
from kernels.beliefs import constraint_rows, constraint_table, triton_beliefs
from kernels.canvas_attention import triton_canvas_attention
from kernels.lazy_triton import triton_available
from runtime.rules import END_PROBABILITY, CanvasRule, ContentRule, WeakEnd

if TYPE_CHECKING:
    from runtime.canvas import CanvasSpec
    from runtime.sampler import CanvasState

_forced = False


@contextmanager
def forced_kernels() -> Iterator[None]:
    """Test only: take the kernel path on CPU tensors too, as if they were on CUDA (the off switch
    and a missing triton still say no).  With TRITON_INTERPRET=1 set before triton is imported,
    Triton's interpreter runs the kernels on the CPU and stands in for a GPU."""
    global _forced
    before, _forced = _forced, True
    try:
        yield
    finally:
        _forced = before


def kernel_path(t: Tensor) -> bool:
    """Whether the op on `t` runs the Triton kernel: the one dispatch rule of the runtime."""
    if _forced:
        return kernels.kernels_enabled() and triton_available()
    return kernels.uses_kernels(t)


def attend_canvases(q: Tensor, ctx_k: Tensor, ctx_v: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """(K, H, C, D) attention of K canvases' q over the shared context ctx_k/ctx_v (Hkv, T, D) and
    their own k/v (K, Hkv, C, D), by the Triton kernel (call only where `kernel_path(q)`)."""
    return triton_canvas_attention(q, ctx_k, ctx_v, k, v)


def _acts_on_beliefs(rule: CanvasRule) -> bool:
    cls = type(rule)
    return cls.constrain is not CanvasRule.constrain or cls.propose is not CanvasRule.propose


@dataclass(frozen=True)
class KernelBeliefs:
    """The beliefs of one canvas's steps from the fused kernel (`kernels.beliefs.triton_beliefs`).

    The sampler's additive bias (banned ids, slot 0's healing set) and the content rule's blocked
    ends become a constraint table, built once per canvas on the logits' device; each step picks
    a row per slot.  Greedy proposals apply the weak-end rule in the kernel; sampling draws one
    uniform number per slot from the request's generator (inverse CDF: the same distribution as
    the reference's `torch.multinomial`, from another random stream)."""

    table: Tensor  # (R, V) bool, on the logits' device
    content: ContentRule | None
    pad_id: int | None  # the weak-end rule's pad
    vocab: int
    device: torch.device
    end_probability: float = END_PROBABILITY  # the weak-end rule's bar

    @classmethod
    def for_canvas(cls, spec: CanvasSpec, logits: Tensor) -> KernelBeliefs | None:
        """None where the kernel cannot say what the rules do (a rule it does not know)."""
        rules = [r for r in spec.rules if _acts_on_beliefs(r)]
        content = [r for r in rules if type(r) is ContentRule]
        weak = [r for r in rules if type(r) is WeakEnd]
        vocab = logits.shape[-1]
        if len(content) + len(weak) != len(rules) or len(content) > 1 or len(weak) > 1:
            return None
        if content and content[0].ends.shape[1] > vocab:
            return None
        ends = content[0].ends if content else None
        table = constraint_table(vocab, spec.banned_ids, spec.first_slot_ids, ends, device=logits.device)
        pad_id = weak[0].pad_id if weak else None
        bar = weak[0].end_probability if weak else END_PROBABILITY
        return cls(table, content[0] if content else None, pad_id, vocab, logits.device, bar)

    def fits(self, logits: Tensor) -> bool:
        return logits.shape[-1] == self.vocab and logits.device == self.device

    def __call__(
        self, logits: Tensor, state: CanvasState, temperature: float, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(proposal, confidence, entropy, current confidence), each (C,) on the CPU, from (C, V)
        logits on the device (any of the kernel's dtypes)."""
        dev, c = logits.device, logits.shape[0]
        blocked = self.content.blocked(state) if self.content is not None else None
        rows = constraint_rows(c, blocked, device=dev)  # (C,)
        uniform = torch.rand(c, generator=generator).to(dev) if temperature > 0 else None  # (C,)
        out = triton_beliefs(
            logits if logits.stride(-1) == 1 else logits.contiguous(), self.table, rows,
            temperature=temperature, token=state.tokens.to(dev), end_probability=self.end_probability,
            pad_id=self.pad_id if uniform is None else None, uniform=uniform,
        )  # fmt: skip
        assert out.token_prob is not None
        floats = torch.stack((out.confidence, out.entropy, out.token_prob)).cpu()  # (3, C): one copy
        return out.proposal.cpu(), floats[0], floats[1], floats[2]
