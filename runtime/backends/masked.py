"""LLaDA/Dream-style bidirectional masked diffusion models from a local Hugging Face folder.

    request -> prefix ids + canvas of masks + suffix ids -> runtime.blocks.run_chain -> text

These models see the whole sequence at once, so the middle is masked in
place: every step is one forward over prefix + canvas + suffix, and the
canvas rows of the logits go to our one denoising loop, so every policy
(`sequential`, `llada`, `threshold`, `entropy`, `adaptive`) applies.  The
model fills the tail of the canvas with its end token (EOS, else pad), which
ends the middle.  No K/V cache: the canvas attends both ways.

Dream-style models were initialised from an autoregressive model and keep its
shifted head: the logits at position i predict token i + 1.  Those are
recognised by `model_type` ("Dream") or a `"shift_logits": true` entry in
config.json.  Special ids come from the folder's config and tokenizer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from runtime.backends.base import Backend
from runtime.backends.hf import REMOTE_CODE_HINT, load_errors, load_tokenizer, resolve_dtype
from runtime.backends.layout import clean_middle
from runtime.blocks import Tally, run_chain
from runtime.canvas import CanvasSpec, draft_plan, free_plan
from runtime.context import clip_context
from runtime.drafts import Verified, draft_canvases, verify
from runtime.policies import make_policy
from runtime.sampler import Forward
from runtime.types import InfillRequest, InfillResult, ModelLoadError, one_line

SHIFTED_MODEL_TYPES = frozenset({"dream"})
MASK_TOKENS = ("<|mdm_mask|>", "<|mask|>", "[MASK]", "<mask>")
"""Mask token spellings looked up in the tokenizer when neither config nor tokenizer names one."""
AUTO_CLASSES = ("AutoModelForMaskedLM", "AutoModel", "AutoModelForCausalLM")
DEFAULT_CANVAS = 32


def canvas_rows(logits: Tensor, start: int, length: int, *, shift: bool) -> Tensor:
    """The logits that predict canvas slots start..start+length of a (L, V) forward."""
    if shift:  # position i predicts token i + 1
        assert start >= 1, "a shifted model needs at least one token before the canvas"
        return logits[start - 1 : start - 1 + length]  # (C, V)
    return logits[start : start + length]  # (C, V)


class MaskedBackend(Backend):
    name = "masked"

    def __init__(
        self,
        model,
        tokenizer,
        *,
        mask_id: int,
        end_id: int,
        shift_logits: bool,
        description: str = "",
        canvas_len: int = DEFAULT_CANVAS,
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.tok = tokenizer
        self.mask_id = mask_id
        self.end_id = end_id
        self.shift_logits = shift_logits
        self.description = description or "masked diffusion model"
        self.canvas_len = canvas_len
        self.device = next(model.parameters()).device
        ends = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id, end_id) if i is not None}
        self.end_ids = frozenset(ends)
        vocab = (
            int(model.get_output_embeddings().weight.shape[0])
            if model.get_output_embeddings()
            else len(tokenizer)
        )
        specials = set(tokenizer.all_special_ids) | {mask_id}
        self.banned = tuple(sorted((specials - ends) | set(range(len(tokenizer), vocab))))

    def _encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def run(self, req: InfillRequest, should_cancel: Callable[[], bool] | None) -> InfillResult:
        started = time.perf_counter()
        canvas_len = req.canvas_tokens or min(self.canvas_len, req.max_tokens)
        policy = make_policy(req.policy, canvas_len)
        prefix, suffix = clip_context(
            req.prefix, req.suffix, req.context_tokens, self._encode, self.tok.decode
        )
        head = [self.tok.bos_token_id] if self.tok.bos_token_id is not None else []
        if self.shift_logits and not head:
            head = [self.end_id]  # a document separator, so slot 0 has a row to come from
        context = _Sequence(self, head + self._encode(prefix), self._encode(suffix))
        generator = torch.Generator().manual_seed(req.seed) if req.temperature > 0 else None
        with torch.inference_mode():
            verified = verify(
                draft_canvases(None, "", req.drafts, canvas_len, encode=self._encode, end_id=self.end_id),
                context.verify, self.mask_id,
            ) if req.drafts else Verified()  # fmt: skip
            out, tally = verified.out, Tally()
            if out is None:
                if verified.initial is not None:
                    plan = draft_plan([verified.initial], req.max_tokens, mask_id=self.mask_id,
                                      pad_id=self.end_id, banned_ids=self.banned)  # fmt: skip
                else:
                    plan = free_plan(
                        canvas_len, req.max_tokens, mask_id=self.mask_id, pad_id=self.end_id,
                        banned_ids=self.banned, end_ids=self.end_ids, shrink_last=True,
                    )
                out, tally = run_chain(
                    plan, context, policy, req, decode=self.tok.decode, started=started,
                    should_cancel=should_cancel, generator=generator,
                )
        text = clean_middle(self.tok.decode(out, skip_special_tokens=True), req)
        stats = tally.stats(tokens=len(out), context_tokens=context.size, started=started)
        return InfillResult(text=text, stats=verified.count(stats, out))


class _Sequence:
    """The masked model's whole input: prefix ids, the canvas in place, suffix ids.  No K/V cache:
    the canvas attends both ways, so every step is one forward over all of it."""

    def __init__(self, backend: MaskedBackend, before: list[int], after: list[int]) -> None:
        self.backend, self.before, self.after = backend, before, after
        self.size = len(before) + len(after)

    def forward(self, spec: CanvasSpec) -> Forward:
        head = torch.tensor(self.before, dtype=torch.long)  # (P,)
        tail = torch.tensor(self.after, dtype=torch.long)  # (S,)
        start, model, device = len(self.before), self.backend.model, self.backend.device
        shift = self.backend.shift_logits

        def forward(canvas: Tensor) -> Tensor:
            ids = torch.cat([head, canvas, tail])[None].to(device)  # (1, P + C + S)
            logits = model(input_ids=ids).logits[0]  # (P + C + S, V)
            return canvas_rows(logits, start, canvas.shape[0], shift=shift)  # (C, V) on the device

        return forward

    def verify(self, canvases: Tensor) -> Tensor:
        """(B, C) all-visible canvases -> (B, C, V) logits: B whole sequences in one forward."""
        b, c = canvases.shape
        head = torch.tensor(self.before, dtype=torch.long).expand(b, -1)  # (B, P)
        tail = torch.tensor(self.after, dtype=torch.long).expand(b, -1)  # (B, S)
        ids = torch.cat([head, canvases, tail], dim=1).to(self.backend.device)  # (B, P + C + S)
        logits = self.backend.model(input_ids=ids).logits  # (B, P + C + S, V)
        start, shift = len(self.before), self.backend.shift_logits
        return torch.stack([canvas_rows(row, start, c, shift=shift) for row in logits]).float().cpu()

    def append(self, body: list[int]) -> None:
        self.before = self.before + body


def find_mask_id(config, tokenizer) -> int | None:
    """The mask id: config.mask_token_id, else the tokenizer's mask token, else a known spelling."""
    for value in (getattr(config, "mask_token_id", None), tokenizer.mask_token_id):
        if isinstance(value, int):
            return value
    vocab = tokenizer.get_vocab()
    for token in MASK_TOKENS:
        if token in vocab:
            return vocab[token]
    return None


def find_end_id(config, tokenizer) -> int | None:
    for value in (
        tokenizer.eos_token_id,
        getattr(config, "eos_token_id", None),
        tokenizer.pad_token_id,
        getattr(config, "pad_token_id", None),
    ):
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, int):
            return value
    return None


def load_masked(
    path: Path,
    cfg: dict,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    allow_remote_code: bool = False,
) -> MaskedBackend:
    from transformers import AutoConfig

    model_type = str(cfg.get("model_type", ""))
    auto_map = cfg.get("auto_map") or {}
    remote = _runs_own_code(path, model_type, auto_map, allow_remote_code)
    with load_errors(path, device):
        config = AutoConfig.from_pretrained(path, trust_remote_code=remote, local_files_only=True)
    tok = load_tokenizer(path, trust_remote_code=remote)
    mask_id = find_mask_id(config, tok)
    if mask_id is None:
        raise ModelLoadError(
            f"{path} ({model_type or 'no model_type'}) has no mask token in config.json or its tokenizer: "
            "it is not a masked diffusion model"
        )
    end_id = find_end_id(config, tok)
    if end_id is None:
        raise ModelLoadError(
            f"{path}: neither config nor tokenizer names an EOS or pad token to end the middle"
        )
    names = [n for n in AUTO_CLASSES if n in auto_map] if remote else list(AUTO_CLASSES)
    if not names:
        raise ModelLoadError(f"{path}: auto_map names none of {', '.join(AUTO_CLASSES)}")
    kwargs: dict = {
        "config": config,
        "trust_remote_code": remote,
        "local_files_only": True,
        "dtype": resolve_dtype(dtype, device),
    }
    model = _from_pretrained(path, names, kwargs, device)
    shift = bool(getattr(config, "shift_logits", model_type.lower() in SHIFTED_MODEL_TYPES))
    backend = MaskedBackend(
        model, tok, mask_id=mask_id, end_id=end_id, shift_logits=shift, description=f"{path.name} (masked)"
    )
    _probe(backend, path)
    return backend


def _runs_own_code(path: Path, model_type: str, auto_map: dict, allowed: bool) -> bool:
    """Whether the folder needs its own modeling code; refused unless `allowed`."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    native = model_type in CONFIG_MAPPING_NAMES
    remote = bool(auto_map) and not native
    if remote and not allowed:
        files = sorted({str(v).split(".")[0] + ".py" for v in auto_map.values() if isinstance(v, str)})
        raise ModelLoadError(
            f"{path} runs its own modeling code ({', '.join(files)}), off by default: {REMOTE_CODE_HINT}"
        )
    if not remote and not native:
        raise ModelLoadError(
            f"{path}: unknown model_type {model_type!r} and no modeling code (auto_map) in the folder"
        )
    return remote


def _from_pretrained(path: Path, names: list[str], kwargs: dict, device: str):
    """The first of the auto classes `names` that loads the folder, on `device`."""
    import transformers

    errors = []
    with load_errors(path, device):
        for name in names:
            try:
                return getattr(transformers, name).from_pretrained(path, **kwargs).to(device)
            except ValueError as e:  # "Unrecognized configuration class ... for this kind of AutoModel"
                errors.append(one_line(e))
    raise ModelLoadError(f"cannot load {path} as a masked model: {errors[-1]}")


def _probe(backend: MaskedBackend, path: Path) -> None:
    """One tiny forward at load time, so a wrong architecture fails here with one line, not per request."""
    ids = torch.tensor([[backend.end_id, backend.mask_id]], device=backend.device)  # (1, 2)
    try:
        with torch.inference_mode():
            logits = backend.model(input_ids=ids).logits
    except Exception as e:
        raise ModelLoadError(f"{path}: test forward failed: {one_line(e)}") from None
    if logits is None or logits.ndim != 3 or logits.shape[-1] < len(backend.tok):
        raise ModelLoadError(f"{path}: the model does not return per-token logits over its vocabulary")
