"""Plain data that crosses the runtime boundary (no tensors, no LSP types, no torch import).

`InfillRequest` is checked once, when it is made: every backend and the language
server can rely on a request being well formed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class RuntimeError_(Exception):
    """Base class for errors the runtime reports to its callers."""


class Cancelled(RuntimeError_):
    """Raised inside the denoising loop when the caller's cancel flag is set."""


class ModelLoadError(RuntimeError_):
    """A model folder or preset could not be loaded; the message is one user-facing line."""


class BadRequest(RuntimeError_):
    """An infill request is malformed (for example an unknown policy name)."""


def one_line(e: BaseException) -> str:
    """An exception as one line of at most 300 characters, for user-facing errors."""
    return " ".join(str(e).split())[:300] or type(e).__name__


DTYPES = ("auto", "float32", "bfloat16", "float16")
"""Values of the `dtype` setting / `--dtype` option (see runtime.load.resolve_embedded_dtype)."""

DEVICE_MAPS = ("auto", "balanced", "sequential")
"""Values of the `deviceMap` setting: accelerate spreads a Hugging Face model over the GPUs and the CPU."""
QUANTIZATIONS = ("fp8",)
"""Values of the `quantization` setting (on-the-fly quantization at load time; docs/backends.md)."""
REMOTE_PROMPTS = ("chat", "plain")
"""Values of the `remotePrompt` setting: the chat layout through /chat/completions, or plain text."""


@dataclass(frozen=True)
class LargeModelOptions:
    """How a large model (a DiffusionGemma folder, a remote server) is loaded and prompted.

    The embedded and masked backends ignore these; docs/backends.md says what each does."""

    vision: bool = False
    """Load DiffusionGemma's vision tower (dg-lsp never sends images, so it is skipped by default)."""
    device_map: str | None = None
    """One of DEVICE_MAPS: accelerate places the layers over the GPUs and the CPU (None: `device`)."""
    max_memory: tuple[tuple[str, str], ...] = ()
    """With `device_map`: (device, size) pairs such as ("0", "20GiB"), ("cpu", "48GiB")."""
    quantization: str | None = None
    """One of QUANTIZATIONS, applied while loading a bfloat16 folder (None: the folder as it is)."""
    max_denoising_steps: int | None = None
    """DiffusionGemma: most denoising steps per canvas (None: the checkpoint's generation config)."""
    remote_prompt: str = "chat"
    """One of REMOTE_PROMPTS: how the remote backend prompts the server."""

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("device_map", self.device_map, DEVICE_MAPS),
            ("quantization", self.quantization, QUANTIZATIONS),
            ("remote_prompt", self.remote_prompt, REMOTE_PROMPTS),
        ):
            if value is not None and value not in allowed:
                raise ModelLoadError(f"{name} {value!r} is not one of {', '.join(allowed)}")
        if self.max_denoising_steps is not None and self.max_denoising_steps < 1:
            raise ModelLoadError(f"max_denoising_steps must be >= 1, got {self.max_denoising_steps}")
        if self.max_memory and self.device_map is None:
            raise ModelLoadError("max_memory needs device_map (for example device_map auto)")


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
    drafts: tuple[tuple[str, float], ...] = ()
    """Candidate texts for the infill with their retrieval evidence (> 0), best first: line
    drafts from the workspace (`runtime.retrieval`).  The backend verifies them all on canvases
    in one forward before it denoises (see `runtime.drafts`)."""
    snippets: tuple[tuple[str, str], ...] = ()
    """Context snippets from the workspace, (path, text), best first (`runtime.snippets`); used
    only by a model trained with them (its config.json `layout.snippet_tokens`)."""
    snippet_tokens: int = 512
    """Token budget for the snippets, on top of `context_tokens` (the model's own cap wins)."""

    def __post_init__(self) -> None:
        from runtime.policy_spec import parse_policy  # torch-free; imported late to avoid a cycle

        if self.max_tokens < 1:
            raise BadRequest(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.context_tokens < 8:
            raise BadRequest(f"context_tokens must be >= 8, got {self.context_tokens}")
        if self.canvas_tokens is not None and self.canvas_tokens < 1:
            raise BadRequest(f"canvas_tokens must be >= 1, got {self.canvas_tokens}")
        if self.deadline_ms is not None and not self.deadline_ms > 0:
            raise BadRequest(f"deadline_ms must be > 0, got {self.deadline_ms}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise BadRequest(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0.0 <= self.remask <= 1.0:
            raise BadRequest(f"remask must be within [0, 1], got {self.remask}")
        if not isinstance(self.drafts, tuple) or not all(
            isinstance(d, tuple) and len(d) == 2 and isinstance(d[0], str) and d[1] > 0 for d in self.drafts
        ):
            raise BadRequest("drafts must be a tuple of (text, evidence > 0) pairs")
        if not isinstance(self.snippets, tuple) or not all(
            isinstance(x, tuple) and len(x) == 2 and all(isinstance(y, str) for y in x) for x in self.snippets
        ):
            raise BadRequest("snippets must be a tuple of (path, text) pairs")
        if self.snippet_tokens < 0:
            raise BadRequest(f"snippet_tokens must be >= 0, got {self.snippet_tokens}")
        parse_policy(self.policy)


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
    drafts_tried: int = 0
    """Drafts verified on canvases (all in one batched forward)."""
    drafts_accepted: int = 0
    tokens_corrected: int = 0
    """Tokens of an accepted draft the model re-masked and denoised again (self-correction)."""
    snippets: tuple[tuple[str, int], ...] = ()
    """(path, tokens) of each context snippet the backend put in the context, best first (the
    rest of `InfillRequest.snippets` was already in the context or over the budget); their
    tokens are part of `context_tokens`.  Empty for a model that reads none."""

    @property
    def tokens_per_forward(self) -> float:
        return self.tokens / self.forwards if self.forwards else 0.0

    @property
    def snippet_tokens(self) -> int:
        """Context tokens spent on snippets."""
        return sum(n for _, n in self.snippets)


@dataclass(frozen=True)
class CacheStats:
    """Counters of a backend's context (or prompt) cache, for `dg.stats`."""

    lookups: int
    hits: int
    reused_tokens: int
    entries: int
    nbytes: int


@dataclass(frozen=True)
class InfillResult:
    text: str
    stats: InfillStats = field(default_factory=InfillStats)
