"""The dispatch rule: CPU tensors go to the reference; CUDA ones to the kernel unless kernels are off
(DG_LSP_KERNELS=0, the process switch, or the call's use_kernels=False) or triton is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import kernels
from kernels import beliefs, canvas_attention, dispatch

CUDA_LIKE = SimpleNamespace(is_cuda=True)  # all `uses_kernels` reads of a tensor


@pytest.fixture(autouse=True)
def kernels_on(monkeypatch):
    monkeypatch.delenv(kernels.ENV_SWITCH, raising=False)
    yield
    kernels.set_kernels_enabled(True)


def refuse(*args, **kwargs):
    raise AssertionError("the Triton path was taken")


def test_cpu_tensors_run_the_reference(monkeypatch):
    monkeypatch.setattr(beliefs, "triton_beliefs", refuse)
    monkeypatch.setattr(canvas_attention, "triton_canvas_attention", refuse)
    logits = torch.randn(4, 50)
    token = torch.tensor([0, 1, 2, 3])
    got = kernels.compute_beliefs(logits, [1, 2], token=token, pad_id=0, use_kernels=True)
    want = beliefs.reference(logits, [1, 2], token=token, pad_id=0)
    assert torch.equal(got.proposal, want.proposal) and torch.equal(got.token_logp, want.token_logp)
    q, ck, cv = torch.randn(2, 2, 3, 8), torch.randn(1, 5, 8), torch.randn(1, 5, 8)  # grouped: 2 heads, 1 kv
    k, v = torch.randn(2, 2, 1, 3, 8)  # (K, Hkv, C, D) each
    assert torch.equal(kernels.attend_canvases(q, ck, cv, k, v), canvas_attention.reference(q, ck, cv, k, v))


def test_cuda_tensors_use_the_kernels_unless_switched_off(monkeypatch):
    monkeypatch.setattr(dispatch, "triton_available", lambda: True)
    assert kernels.uses_kernels(CUDA_LIKE)
    assert not kernels.uses_kernels(CUDA_LIKE, use_kernels=False)
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    assert not kernels.kernels_enabled() and not kernels.uses_kernels(CUDA_LIKE)
    monkeypatch.setenv(kernels.ENV_SWITCH, "1")
    kernels.set_kernels_enabled(False)
    assert not kernels.uses_kernels(CUDA_LIKE)
    kernels.set_kernels_enabled(True)
    assert kernels.uses_kernels(CUDA_LIKE)
    monkeypatch.setattr(dispatch, "triton_available", lambda: False)
    assert not kernels.uses_kernels(CUDA_LIKE, use_kernels=True)  # no triton: no kernel, whatever asked


def test_the_chosen_kernel_gets_every_argument(monkeypatch):
    calls = []
    monkeypatch.setattr(dispatch, "uses_kernels", lambda t, use_kernels=None: True)
    monkeypatch.setattr(beliefs, "triton_beliefs", lambda *a, **kw: calls.append((a, kw)))
    logits, rows, u = torch.randn(2, 9), torch.zeros(2, dtype=torch.int32), torch.rand(2)
    kernels.compute_beliefs(logits, [3], rows, temperature=0.5, uniform=u, end_probability=0.4)
    (args, kw), = calls
    assert args[0] is logits and args[1] == [3] and args[2] is rows
    assert kw == dict(temperature=0.5, token=None, pad_id=None, end_probability=0.4, uniform=u)


def test_importing_kernels_never_imports_triton_and_works_without_it():
    """In a fresh interpreter: `import kernels` and the CPU path leave triton unimported; with triton
    made unimportable, the package still imports and the CPU path still runs."""
    root = Path(__file__).resolve().parents[2]
    script = """
import sys
import torch
import kernels
kernels.compute_beliefs(torch.randn(2, 5), [1])
q, k, v = torch.randn(3, 1, 1, 2, 4)  # (K, H, C, D) each
kernels.attend_canvases(q, torch.randn(1, 3, 4), torch.randn(1, 3, 4), k, v)
assert "triton" not in sys.modules, "importing kernels imported triton"
sys.modules["triton"] = None  # as if not installed: `import triton` raises ImportError
from kernels.lazy_triton import triton_available
assert not triton_available()
print("ok")
"""
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
