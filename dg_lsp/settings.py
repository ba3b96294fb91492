"""User settings: typed, with defaults, validated one field at a time.

Clients send them under the `dgLsp` key of `initializationOptions` and of
`workspace/didChangeConfiguration`.  A bad value never breaks the server: the
field falls back to its default and the problem is reported once (see
`parse_settings`, whose `problems` the server shows with `window/showMessage`).
"""

from __future__ import annotations

import itertools
import re
import typing
from typing import Annotated, Any, Literal

import msgspec

from runtime.policy_spec import parse_policy
from runtime.types import DTYPES, BadRequest, LargeModelOptions

SECTION = "dgLsp"

_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


class Settings(msgspec.Struct, rename="camel", frozen=True, forbid_unknown_fields=True):
    """All settings of the server; field names are camelCase on the wire."""

    model: str = "default"
    """Model to load: a model folder path, "default" (the shipped models/dg-code-small), "tiny"
    (random weights, for tests) or an OpenAI-compatible server URL such as http://host:8000/v1."""
    remote_model: str | None = None
    """Model name on a remote server (vLLM/SGLang); null picks the server's only model."""
    trust_remote_code: bool = False
    """Allow a model folder's own Python modeling code to run (LLaDA/Dream-style folders need it)."""
    device: str = "cpu"
    """Torch device: "cpu", "cuda", "cuda:N" or "mps"."""
    dtype: str = "auto"
    """Number format of the model's matrix products: "auto" (embedded model: bfloat16 where the CPU or
    GPU computes it natively, else float32; Hugging Face folders: the checkpoint's dtype on a GPU,
    float32 on CPU), "float32", "bfloat16" or "float16" (GPU only)."""
    threads: Annotated[int, msgspec.Meta(ge=1, le=256)] | None = None
    """Torch intra-op threads; null picks half the cores (at least 1, at most 4)."""
    kernels: bool = True
    """Use the Triton kernels of the GPU path (fused beliefs, canvas attention) when the device is CUDA;
    false runs the PyTorch reference everywhere, for debugging (so does the environment variable
    DG_LSP_KERNELS=0).  The CPU path is the reference either way."""
    policy: str = "adaptive"
    """Unmasking policy: sequential, llada, threshold, entropy or adaptive; options as
    NAME:KEY=VALUE,... (for example "threshold:tau=0.8").  Options not given take the model's own
    defaults where its config.json declares them (the shipped model: adaptive gamma 3.0), else the
    policy's."""
    automatic_budget_ms: Annotated[float, msgspec.Meta(gt=0, le=60_000)] = 150.0
    """Latency budget of an automatically triggered inline completion (one item)."""
    invoked_budget_ms: Annotated[float, msgspec.Meta(gt=0, le=600_000)] = 1000.0
    """Latency budget per item of an invoked inline completion (up to 3 items) and per command step."""
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64
    """Upper bound on generated tokens per completion."""
    context_tokens: Annotated[int, msgspec.Meta(ge=16, le=65_536)] = 1024
    """Token budget for the text around the cursor (prefix plus suffix)."""
    enabled_languages: list[str] | None = None
    """Language ids that get completions; null means every language not in disabledLanguages."""
    disabled_languages: list[str] = msgspec.field(default_factory=lambda: ["plaintext"])
    """Language ids that never get completions (commands still work there)."""
    workspace_enabled: bool = True
    """Use the workspace as context: the open buffers and the files under the workspace folders
    (.gitignore rules, hidden and vendored folders, binary and large files left out) are indexed in
    the background, and lines from them become drafts that the model verifies on the canvas."""
    workspace_max_files: Annotated[int, msgspec.Meta(ge=0, le=200_000)] = 5000
    """Most files indexed (open buffers included); the rest are left out and counted in dg.stats."""
    workspace_max_file_bytes: Annotated[int, msgspec.Meta(ge=1024, le=2**26)] = 2**20
    """Files larger than this many bytes are not indexed."""
    workspace_max_bytes: Annotated[int, msgspec.Meta(ge=2**20, le=2**31)] = 64 * 2**20
    """Most text indexed in all, in bytes (the index, which keeps the text for context snippets,
    holds about 4 times this in memory at most)."""
    drafts: bool = True
    """Put line drafts from the workspace on the canvas for single-line completions (verified by
    the model in one batched forward); false denoises every completion from masks only."""
    line_library: str = "default"
    """Line pairs that recur across many projects, as a source of drafts beside the workspace:
    "default" (the shipped models/line-library.tsv.gz, built from the training corpus), a file built
    by `python -m runtime.train library`, or "" for none. Loaded with the workspace index."""
    snippets: bool = True
    """Put context snippets from the workspace (windows like the code above the cursor) before the
    context, for a model trained to read them (its config.json declares `layout`); others get none."""
    snippet_tokens: Annotated[int, msgspec.Meta(ge=0, le=4096)] = 512
    """Token budget for the snippets, on top of contextTokens (the model's own cap wins)."""
    max_denoising_steps: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None
    """DiffusionGemma: most denoising steps per 256-token canvas; null keeps the checkpoint's
    generation config (transformers' default: 48). Fewer steps answer sooner and worse."""
    vision: bool = False
    """DiffusionGemma: load the vision tower too. dg-lsp sends no images, so by default it is
    skipped and its weights are never read."""
    device_map: Literal["auto", "balanced", "sequential"] | None = None
    """DiffusionGemma: let accelerate place the model over the GPUs and the CPU ("auto",
    "balanced" or "sequential"); null loads it whole onto `device`. Layers left on the CPU make
    every denoising step copy them over, so this fits a model, it does not make it fast."""
    max_memory: dict[str, str] | None = None
    """With deviceMap: most memory per device, for example {"0": "20GiB", "cpu": "48GiB"}."""
    quantization: Literal["fp8"] | None = None
    """DiffusionGemma: quantize a bfloat16 folder while loading; "fp8" (transformers' fine-grained
    FP8, experts included; CUDA GPUs of compute capability 8.9 or newer). null loads the folder
    as it is (a pre-quantized folder stays quantized)."""
    remote_prompt: Literal["chat", "plain"] = "chat"
    """Remote servers: "chat" sends the chat layout to /chat/completions, continuing the model's
    turn (instruction-tuned checkpoints); "plain" sends the plain layout to /completions (base
    models)."""

    def large_model_options(self) -> LargeModelOptions:
        """The options of the large-model backends; raises `ModelLoadError` for a bad combination."""
        return LargeModelOptions(
            vision=self.vision,
            device_map=self.device_map,
            max_memory=tuple(sorted((self.max_memory or {}).items())),
            quantization=self.quantization,
            max_denoising_steps=self.max_denoising_steps,
            remote_prompt=self.remote_prompt,
        )

    def language_enabled(self, language_id: str) -> bool:
        if language_id in self.disabled_languages:
            return False
        return self.enabled_languages is None or language_id in self.enabled_languages


_FIELDS = {f.encode_name: f for f in msgspec.structs.fields(Settings)}
_HINTS = typing.get_type_hints(Settings, include_extras=True)
_TYPES = {name: _HINTS[f.name] for name, f in _FIELDS.items()}


def _default(name: str) -> Any:
    f = _FIELDS[name]
    return f.default_factory() if f.default is msgspec.NODEFAULT else f.default


def _check_choice(name: str, value: Any) -> str | None:
    """Constraints msgspec types cannot say: returns a problem or None."""
    if name == "policy":
        try:
            parse_policy(value)
        except BadRequest as e:
            return f"{name}: {e}"
    if name == "device" and not _DEVICE.match(value):
        return f"{name}: {value!r} is not a device (cpu, cuda, cuda:N, mps)"
    if name == "dtype" and value not in DTYPES:
        return f"{name}: {value!r} is not one of {', '.join(DTYPES)}"
    if name == "model" and not value.strip():
        return f"{name}: empty model name"
    return None


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings from a client's `dgLsp` object, plus one line per problem found.

    Fields missing from `raw` keep their value in `base` (defaults when None); a
    bad field gets its default.  Unknown keys are reported and ignored.
    """
    base = base or Settings()
    if raw is None:
        return base, []
    if not isinstance(raw, dict):
        return base, [f"settings must be an object, got {type(raw).__name__}"]
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        if key not in _FIELDS:
            problems.append(f"unknown setting {key!r} (ignored)")
            continue
        try:
            converted = msgspec.convert(value, _TYPES[key], strict=False)
        except msgspec.ValidationError as e:
            problems.append(f"{key}: bad value {value!r} ({e}); using the default")
            values[key] = _default(key)
            continue
        if isinstance(converted, str) and (problem := _check_choice(key, converted)):
            problems.append(problem + "; using the default")
            values[key] = _default(key)
            continue
        values[key] = converted
    current = msgspec.structs.asdict(base)
    current.update({_FIELDS[k].name: v for k, v in values.items()})
    return Settings(**current), problems


def from_initialization_options(options: Any) -> tuple[Settings, list[str]]:
    """`initializationOptions` may hold the settings under `dgLsp` or directly."""
    if isinstance(options, dict) and SECTION in options:
        return parse_settings(options[SECTION])
    if options is None or options == {}:
        return Settings(), []
    return parse_settings(options)


def documented_fields() -> list[tuple[str, str, str]]:
    """(wire name, default as JSON, docstring) for docs/settings.md and tests."""
    out = []
    for name, f in _FIELDS.items():
        out.append((name, msgspec.json.encode(_default(name)).decode(), _field_docs()[f.name]))
    return out


def _field_docs() -> dict[str, str]:
    """Field docstrings read from this module's source (they are the documentation)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for a, b in itertools.pairwise(body):
        if isinstance(a, ast.AnnAssign) and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant):
            docs[a.target.id] = " ".join(str(b.value.value).split())  # type: ignore[union-attr]
    return docs
