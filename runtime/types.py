"""Plain data that crosses the runtime boundary (no tensors, no LSP types)."""

from __future__ import annotations

from dataclasses import dataclass, field


class RuntimeError_(Exception):
    """Base class for errors the runtime reports to its callers."""


class Cancelled(RuntimeError_):
    """Raised inside the denoising loop when the caller's cancel flag is set."""


class ModelLoadError(RuntimeError_):
    """A model folder or preset could not be loaded; the message is one user-facing line."""


class BadRequest(RuntimeError_):
    """An infill request is malformed (for example an unknown policy name)."""


DTYPES = ("auto", "float32", "bfloat16", "float16")
"""Values of the `dtype` setting / `--dtype` option (see runtime.load.resolve_embedded_dtype)."""


@dataclass(frozen=True)
class InfillRequest:
    """What the caller wants filled: the text before and after the cursor."""

    prefix: str
    suffix: str
    max_tokens: int = 64
    """Upper bound on generated tokens, over all canvases."""
    policy: str = "adaptive"
    """Name of the unmasking policy (see `runtime.policies.POLICIES`)."""
    deadline_ms: float | None = None
    """Wall-clock budget; the `adaptive` policy commits what it has when it runs out."""
    temperature: float = 0.0
    """0 means argmax (deterministic); above 0 samples with `seed`."""
    seed: int = 0
    context_tokens: int = 1024
    """Token budget for prefix plus suffix context."""
    single_line: bool = False
    """Stop at the first newline of the infill (rest-of-line completion)."""
    canvas_tokens: int | None = None
    """Canvas size override; None uses the model's own canvas length."""
    exact_length: bool = False
    """The text is exactly `max_tokens` tokens (the oracle-length evaluation setting): pad is
    banned, and the slots of the last canvas past that length start as pad, so the canvas keeps
    the size the model was trained on."""
    draft: str | None = None
    """Rewrite mode: start the canvas from this text instead of all masks."""
    remask: float = 0.5
    """Rewrite mode: fraction of the draft's tokens masked before denoising."""


@dataclass(frozen=True)
class InfillStats:
    forwards: int = 0
    tokens: int = 0
    remasked: int = 0
    canvases: int = 0
    context_tokens: int = 0
    cached_tokens: int = 0
    """Context tokens whose keys/values came from the context cache."""
    ms: float = 0.0
    deadline_hit: bool = False

    @property
    def tokens_per_forward(self) -> float:
        return self.tokens / self.forwards if self.forwards else 0.0


@dataclass(frozen=True)
class InfillResult:
    text: str
    stats: InfillStats = field(default_factory=InfillStats)
