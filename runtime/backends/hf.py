"""Loading a Hugging Face model folder: local files only, and every failure as one `ModelLoadError` line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch

from runtime.types import DTYPES, ModelLoadError, one_line

INSTALL_HINT = "pip install 'dg-lsp[backends]'"
REMOTE_CODE_HINT = (
    "enable it with the server setting trustRemoteCode (dg-lsp.trustRemoteCode) or the CLI flag "
    "--trust-remote-code, only if you trust the code in that folder"
)


def require_transformers(backend: str) -> None:
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise ModelLoadError(f"the {backend} backend needs transformers: {INSTALL_HINT}") from None


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype | str:
    """'auto' keeps the checkpoint's dtype on a GPU; on CPU bfloat16 matmuls are slow, so float32."""
    if dtype is None or dtype == "auto":
        return "auto" if device != "cpu" else torch.float32
    try:
        return getattr(torch, dtype)
    except AttributeError:
        raise ModelLoadError(f"unknown dtype {dtype!r} (use {', '.join(DTYPES)})") from None


@contextlib.contextmanager
def load_errors(path: Path, device: str) -> Iterator[None]:
    """Turn whatever transformers raises while loading into one user-facing line."""
    try:
        yield
    except ModelLoadError:
        raise
    except (torch.OutOfMemoryError, MemoryError):
        raise ModelLoadError(
            f"out of memory loading {path} on {device}: use a smaller or quantized model, or another device"
        ) from None
    except ImportError as e:
        raise ModelLoadError(f"cannot load {path}: missing package ({one_line(e)})") from None
    except Exception as e:  # transformers raises ValueError, OSError, KeyError, RuntimeError, ...
        msg = one_line(e)
        if "out of memory" in msg.lower():
            raise ModelLoadError(f"out of memory loading {path} on {device}: {msg}") from None
        raise ModelLoadError(f"cannot load {path}: {msg}") from None


def load_tokenizer(path: Path, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    with load_errors(path, "cpu"):
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
