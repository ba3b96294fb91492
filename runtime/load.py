"""Model folders and presets -> a ready engine.  Performance switches live here, not in the model.

A model folder holds::

    config.json        {"format": "dg-lsp-embedded", "model": {ModelArgs...}, "name": ..., "trained": {...}}
    tokenizer.json     HF tokenizers file with the special tokens of runtime.tokenizer
    *.safetensors      weights (one file or shards)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kernels import set_kernels_enabled
from runtime.backends.base import Backend
from runtime.backends.embedded import EmbeddedBackend
from runtime.decoding import Decoding
from runtime.drafts import DraftRules
from runtime.measure import cpu_has_native_bf16
from runtime.model import PRESETS, InfillTransformer, ModelArgs
from runtime.tokenizer import Tokenizer
from runtime.types import DTYPES, LargeModelOptions, ModelLoadError, one_line

FORMAT = "dg-lsp-embedded"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "dg-code-small"
SHARD_BYTES = 16 * 2**20


def set_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads (default: 1 per physical core we were given, at most 4).

    On a 2-core machine shared with the editor, OpenMP spinning across busy
    cores made one small forward ten times slower than a single thread."""
    if threads is None:
        threads = max(1, min(4, (os.cpu_count() or 2) // 2))
    torch.set_num_threads(threads)


def resolve(spec: str) -> str | Path:
    """'default' -> the shipped model folder, a preset name stays, anything else is a path."""
    if spec == "default":
        return DEFAULT_MODEL_DIR
    if spec in PRESETS:
        return spec
    return Path(spec).expanduser()


def load_embedded(
    spec: str = "default",
    *,
    device: str = "cpu",
    threads: int | None = None,
    seed: int = 0,
    dtype: str = "auto",
) -> EmbeddedBackend:
    set_threads(threads)
    where = resolve(spec)
    if isinstance(where, str):  # random presets are for tests: float32 unless asked, on every machine
        compute = None if dtype == "auto" else resolve_embedded_dtype(dtype, device)
        return random_embedded(where, device=device, seed=seed, compute_dtype=compute)
    compute = resolve_embedded_dtype(dtype, device)
    model, tok, name, max_context = load_folder(where)
    cfg = read_config(where)
    try:
        rules = DraftRules.from_config(cfg.get("drafts"))
        decoding = Decoding.from_config(cfg.get("decoding"))
        snippet_tokens = layout_snippet_tokens(cfg.get("layout"))
    except ValueError as e:
        raise ModelLoadError(f"{where / 'config.json'}: {e}") from None
    model = model.to(device)
    if compute is not None:
        model.cast_matrices(compute)
    return EmbeddedBackend(
        model,
        tok,
        device=device,
        description=name,
        max_context_tokens=max_context,
        compute_dtype=compute,
        draft_rules=rules,
        snippet_tokens=snippet_tokens,
        decoding=decoding,
    )


def layout_snippet_tokens(layout: object) -> int:
    """The snippet budget a config.json `layout` section declares (0 when absent: a model
    trained without snippets must not be shown any)."""
    if layout is None:
        return 0
    if not isinstance(layout, dict):
        raise ValueError(f"layout must be an object, not {layout!r}")
    n = layout.get("snippet_tokens", 0)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"layout.snippet_tokens: bad value {n!r}")
    return n


def resolve_embedded_dtype(dtype: str, device: str) -> torch.dtype | None:
    """The autocast dtype of the embedded model's matrix products, or None for float32.

    "auto" takes bfloat16 where the hardware computes it natively (CPUs with AVX512-BF16 or
    AMX, CUDA GPUs that support it); the model was trained under bfloat16 autocast, so its
    answers barely change, and on this project's 2-core EPYC a forward takes about 30 % less
    time.  Elsewhere (AVX2 laptops, Apple CPUs) bfloat16 is emulated and slower: float32."""
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r} (use {', '.join(DTYPES)})")
    if dtype == "float32":
        return None
    if dtype == "float16" and not device.startswith("cuda"):
        raise ModelLoadError("dtype float16 needs a CUDA device; use bfloat16 or float32 on CPU")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def random_embedded(
    preset: str, *, device: str = "cpu", seed: int = 0, compute_dtype: torch.dtype | None = None
) -> EmbeddedBackend:
    """A random-weight preset with the byte-level tokenizer (tests and plumbing only)."""
    args = PRESETS[preset]
    tok = Tokenizer.byte_level()
    if args.vocab_size < tok.vocab_size:
        raise ModelLoadError(
            f"preset {preset!r} has vocabulary {args.vocab_size} < byte tokenizer's {tok.vocab_size}"
        )
    torch.manual_seed(seed)
    model = InfillTransformer(args).to(device)
    if compute_dtype is not None:
        model.cast_matrices(compute_dtype)
    return EmbeddedBackend(
        model, tok, device=device, description=f"{preset} (random weights)", compute_dtype=compute_dtype
    )


def read_config(path: Path) -> dict:
    """A model folder's config.json (it must exist and be a JSON object)."""
    if path == DEFAULT_MODEL_DIR and not path.exists():  # `pip install .`: models/ stays behind
        raise ModelLoadError(
            f"the default model is missing ({path}); it ships in the repository's models/ folder, "
            "so install dg-lsp from a checkout with `pip install -e` (or set `model` to a folder)"
        )
    if not path.exists():
        raise ModelLoadError(f"model folder {path} does not exist")
    if not path.is_dir():
        raise ModelLoadError(f"model path {path} is not a folder")
    cfg_path = path / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"model folder {path} has no config.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{cfg_path} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{cfg_path} is not a JSON object")
    return cfg


def trained_context(cfg: dict) -> int | None:
    """The longest context the model was trained on (`trained.context_tokens`), if recorded."""
    value = (cfg.get("trained") or {}).get("context_tokens") if isinstance(cfg.get("trained"), dict) else None
    return int(value) if isinstance(value, int | float) and value >= 16 else None


def load_folder(path: Path) -> tuple[InfillTransformer, Tokenizer, str, int | None]:
    cfg = read_config(path)
    cfg_path = path / "config.json"
    if cfg.get("format") != FORMAT:
        raise ModelLoadError(f"{cfg_path} is not a dg-lsp embedded model (format != {FORMAT!r})")
    try:
        args = ModelArgs.from_dict(cfg["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"{cfg_path}: bad model section: {e}") from None
    try:
        tok = Tokenizer.from_file(path / "tokenizer.json")
    except Exception as e:  # tokenizers raises its own Exception subclasses
        raise ModelLoadError(f"{path / 'tokenizer.json'} cannot be loaded: {one_line(e)}") from None
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        raise ModelLoadError(f"model folder {path} has no *.safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        try:
            state.update(load_file(str(shard)))
        except (SafetensorError, OSError) as e:
            raise ModelLoadError(f"{shard} is corrupt: {one_line(e)}") from None
    model = InfillTransformer(args)
    state.setdefault("head.weight", state.get("embed.weight"))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelLoadError(f"weights in {path} do not match config.json: {one_line(e)}") from None
    if args.vocab_size < tok.vocab_size:
        raise ModelLoadError(f"{path}: model vocabulary {args.vocab_size} < tokenizer's {tok.vocab_size}")
    return model.eval(), tok, str(cfg.get("name", path.name)), trained_context(cfg)


def save_folder(
    path: Path, model: InfillTransformer, tok: Tokenizer, *, name: str, extra: dict | None = None
) -> list[Path]:
    """Write config.json, tokenizer.json and weight shards of at most 16 MiB each."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.safetensors"):
        old.unlink()
    cfg = {"format": FORMAT, "name": name, "model": model.args.to_dict(), **(extra or {})}
    (path / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    tok.save(path / "tokenizer.json")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "head.weight"}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, v in state.items():
        n = v.numel() * v.element_size()
        if shards[-1] and size + n > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += n
    written = []
    for i, shard in enumerate(shards):
        f = path / f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(f))
        written.append(f)
    return written


# ----------------------------------------------------------------------------- backends
def load_backend(
    spec: str = "default",
    *,
    device: str = "cpu",
    threads: int | None = None,
    remote_model: str | None = None,
    allow_remote_code: bool = False,
    dtype: str = "auto",
    kernels: bool = True,
    options: LargeModelOptions | None = None,
) -> Backend:
    """The backend the `model` setting names (see docs/backends.md).

    "http(s)://HOST:PORT/v1" -> remote; "default", a preset or an embedded folder -> embedded;
    a Hugging Face folder whose config.json says model_type "diffusion_gemma" -> diffusiongemma;
    any other Hugging Face folder -> masked (its modeling code runs only with `allow_remote_code`).
    Every failure is a `ModelLoadError` with one line.  `kernels=False` turns the Triton kernels of
    the GPU path off for the process (the `kernels` setting, `--no-kernels`; kernels/README.md).
    `options` (memory, denoising steps, the remote prompt) reach diffusiongemma and remote only.
    """
    options = options or LargeModelOptions()
    set_kernels_enabled(kernels)
    if spec.startswith(("http://", "https://")):
        from runtime.backends.remote import RemoteOptions, connect_remote

        return connect_remote(spec, remote_model, RemoteOptions(prompt=options.remote_prompt))
    where = resolve(spec)
    if isinstance(where, str):
        return load_embedded(spec, device=device, threads=threads, dtype=dtype)
    from runtime.backends.hf import require_transformers

    cfg = read_config(where)
    if cfg.get("format") == FORMAT:
        return load_embedded(spec, device=device, threads=threads, dtype=dtype)
    if "model_type" not in cfg:
        raise ModelLoadError(
            f"{where / 'config.json'} is neither a dg-lsp embedded nor a Hugging Face model (no model_type)"
        )
    set_threads(threads)
    if cfg["model_type"] == "diffusion_gemma":
        require_transformers("diffusiongemma")
        from runtime.backends.diffusiongemma import load_diffusiongemma

        return load_diffusiongemma(where, device=device, dtype=dtype, options=options)
    require_transformers("masked")
    from runtime.backends.masked import load_masked

    return load_masked(where, cfg, device=device, dtype=dtype, allow_remote_code=allow_remote_code)
