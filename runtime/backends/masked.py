"""LLaDA/Dream-style bidirectional masked diffusion models from a local Hugging Face folder.

    request -> [bos] prefix ids + canvas of masks + suffix ids [eos] -> runtime.blocks.run_chain -> text

These models see the whole sequence at once, so the middle is masked in
place: every step is one forward over prefix + canvas + suffix, and the
canvas rows of the logits go to our one denoising loop, so every policy
(`sequential`, `llada`, `threshold`, `entropy`, `adaptive`) applies.  The
model fills the tail of the canvas with its pad (EOS, DiffuCoder's
<|dlm_pad|>), which ends the middle.  No K/V cache: the canvas attends both ways.

What differs between the published models (how to load, attention, a shifted
head, special ids, layout) is a `runtime.backends.families.Family`, detected
from the folder; DreamOn's span grows and shrinks (`runtime.rules.SpanEdits`):
its forward feeds only the span, not the room after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from runtime.backends.base import Backend
from runtime.backends.families import (
    Family,
    FolderFacts,
    SpecialIds,
    detect_family,
    find_mask_id,
    read_generation_config,
    special_ids,
)
from runtime.backends.hf import REMOTE_CODE_HINT, load_errors, load_tokenizer, resolve_dtype
from runtime.backends.layout import clean_middle
from runtime.blocks import Tally, run_chain
from runtime.canvas import CanvasPlan, CanvasSpec, draft_plan, free_plan, span_plan
from runtime.context import clip_context
from runtime.drafts import Verified, draft_canvases, verify
from runtime.policies import make_policy
from runtime.sampler import Forward
from runtime.types import InfillRequest, InfillResult, ModelLoadError, one_line

DEFAULT_CANVAS = 32
SPAN_START = 4
"""DreamOn's starting span (its quickstart and evaluation default, `min_gen_len` 4)."""


def canvas_rows(logits: Tensor, start: int, length: int, *, shift: bool) -> Tensor:
    """The logits that predict canvas slots start..start+length of a (L, V) forward."""
    if shift:  # position i predicts token i + 1
        assert start >= 1, "a shifted model needs at least one token before the canvas"
        return logits[start - 1 : start - 1 + length]  # (C, V)
    return logits[start : start + length]  # (C, V)


ModelCall = Callable[[Tensor], Tensor]
"""(B, L) ids -> (B, L, V) logits: the model with its family's attention mode."""


class MaskedBackend(Backend):
    name = "masked"

    def __init__(
        self, model, tokenizer, *, family: Family, ids: SpecialIds, shift_logits: bool, call: ModelCall,
        description: str = "", canvas_len: int = DEFAULT_CANVAS,
    ) -> None:  # fmt: skip
        super().__init__()
        self.model = model.eval()
        self.tok = tokenizer
        self.family, self.ids, self.call = family, ids, call
        self.mask_id, self.end_id, self.end_ids = ids.mask, ids.pad, ids.ends
        self.banned = ids.banned
        self.shift_logits = shift_logits
        self.description = description or "masked diffusion model"
        self.canvas_len = canvas_len
        self.device = next(model.parameters()).device

    def _encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def run(self, req: InfillRequest, should_cancel: Callable[[], bool] | None) -> InfillResult:
        started = time.perf_counter()
        canvas_len = req.canvas_tokens or min(self.canvas_len, req.max_tokens)
        policy = make_policy(req.policy, canvas_len)
        prefix, suffix = clip_context(
            req.prefix, req.suffix, req.context_tokens, self._encode, self.tok.decode
        )
        before = ([self.ids.bos] if self.ids.bos is not None else []) + self._encode(prefix)
        if self.shift_logits and not before:
            before = [self.end_id]  # a document separator, so slot 0 has a row to come from
        tail = [self.ids.eos_tail] if self.ids.eos_tail is not None else []
        context = _Sequence(self, before, self._encode(suffix) + tail)
        generator = torch.Generator().manual_seed(req.seed) if req.temperature > 0 else None
        with torch.inference_mode():
            spans = self.ids.delete is not None  # drafts are whole canvases: not for a growing span
            verified = verify(
                draft_canvases(None, "", req.drafts, canvas_len, encode=self._encode, end_id=self.end_id),
                context.verify, self.mask_id,
            ) if req.drafts and not spans else Verified()  # fmt: skip
            out, tally = verified.out, Tally()
            if out is None:
                out, tally = run_chain(
                    self._plan(req, canvas_len, verified), context, policy, req, decode=self.tok.decode,
                    started=started, should_cancel=should_cancel, generator=generator,
                )  # fmt: skip
        text = clean_middle(self.tok.decode(out, skip_special_tokens=True), req)
        stats = tally.stats(tokens=len(out), context_tokens=context.size, started=started)
        return InfillResult(text=text, stats=verified.count(stats, out))

    def _plan(self, req: InfillRequest, canvas_len: int, verified: Verified) -> CanvasPlan:
        ids = self.ids
        if verified.initial is not None:
            return draft_plan([verified.initial], req.max_tokens, mask_id=ids.mask, pad_id=ids.pad,
                              banned_ids=self.banned)  # fmt: skip
        if ids.expand is not None and ids.delete is not None:
            return span_plan(
                req.canvas_tokens or SPAN_START, req.max_tokens, mask_id=ids.mask, expand_id=ids.expand,
                delete_id=ids.delete, banned_ids=self.banned, end_ids=self.end_ids,
            )  # fmt: skip
        return free_plan(
            canvas_len, req.max_tokens, mask_id=ids.mask, pad_id=ids.pad,
            banned_ids=self.banned, end_ids=self.end_ids, shrink_last=True,
        )  # fmt: skip


class _Sequence:
    """The masked model's whole input: prefix ids, the canvas in place, suffix ids.  No K/V cache:
    the canvas attends both ways, so every step is one forward over all of it."""

    def __init__(self, backend: MaskedBackend, before: list[int], after: list[int]) -> None:
        self.backend, self.before, self.after = backend, before, after
        self.size = len(before) + len(after)

    def forward(self, spec: CanvasSpec) -> Forward:
        head = torch.tensor(self.before, dtype=torch.long)  # (P,)
        tail = torch.tensor(self.after, dtype=torch.long)  # (S,)
        start, call, device = len(self.before), self.backend.call, self.backend.device
        shift, room = self.backend.shift_logits, self.backend.ids.delete

        def forward(canvas: Tensor) -> Tensor:
            span = canvas if room is None else canvas[canvas != room]  # DreamOn: the span only
            ids = torch.cat([head, span, tail])[None].to(device)  # (1, P + n + S)
            rows = canvas_rows(call(ids)[0], start, span.shape[0], shift=shift)  # (n, V) on the device
            if span.shape[0] == canvas.shape[0]:
                return rows
            filler = rows.new_zeros(canvas.shape[0] - span.shape[0], rows.shape[1])  # the room: certain
            filler[:, room] = 100.0
            return torch.cat([rows, filler])  # (C, V)

        return forward

    def verify(self, canvases: Tensor) -> Tensor:
        """(B, C) all-visible canvases -> (B, C, V) logits: B whole sequences in one forward."""
        b, c = canvases.shape
        head = torch.tensor(self.before, dtype=torch.long).expand(b, -1)  # (B, P)
        tail = torch.tensor(self.after, dtype=torch.long).expand(b, -1)  # (B, S)
        ids = torch.cat([head, canvases, tail], dim=1).to(self.backend.device)  # (B, P + C + S)
        logits = self.backend.call(ids)  # (B, P + C + S, V)
        start, shift = len(self.before), self.backend.shift_logits
        return torch.stack([canvas_rows(row, start, c, shift=shift) for row in logits]).float().cpu()

    def append(self, body: list[int]) -> None:
        self.before = self.before + body


def load_masked(
    path: Path,
    cfg: dict,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    allow_remote_code: bool = False,
) -> MaskedBackend:
    from transformers import AutoConfig

    from runtime.backends.families import attention_call

    native = _is_native(cfg)
    remote = _runs_own_code(path, cfg, native, allow_remote_code)
    with load_errors(path, device):
        config = AutoConfig.from_pretrained(path, trust_remote_code=remote, local_files_only=True)
    tok = load_tokenizer(path, trust_remote_code=remote)
    facts = FolderFacts(cfg, read_generation_config(path), tok.get_vocab(), native, tok.mask_token_id)
    mask = find_mask_id(facts, config, tok)
    if mask is None:
        raise ModelLoadError(
            f"{path} ({cfg.get('model_type') or 'no model_type'}) has no mask token in config.json, "
            "generation_config.json or its tokenizer: it is not a masked diffusion model"
        )
    family = detect_family(facts, path)
    model = _load_model(path, family, cfg, config, remote, device, dtype)
    head = model.get_output_embeddings()
    ids = special_ids(family, facts, config, tok, mask, int(head.weight.shape[0]) if head else len(tok))
    shift = family.shift_logits
    if shift is None:  # the generic family: config.json says
        shift = bool(getattr(config, "shift_logits", False))
    backend = MaskedBackend(
        model, tok, family=family, ids=ids, shift_logits=shift, call=attention_call(model, family),
        description=f"{path.name} ({family.name}, masked)",
    )  # fmt: skip
    _probe(backend, path)
    return backend


def _is_native(cfg: dict) -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return cfg.get("model_type") in CONFIG_MAPPING_NAMES


def _runs_own_code(path: Path, cfg: dict, native: bool, allowed: bool) -> bool:
    """Whether the folder needs its own modeling code; refused unless `allowed`."""
    auto_map = cfg.get("auto_map") or {}
    remote = bool(auto_map) and not native
    if remote and not allowed:
        files = sorted({str(v).split(".")[0] + ".py" for v in auto_map.values() if isinstance(v, str)})
        raise ModelLoadError(
            f"{path} runs its own modeling code ({', '.join(files)}), off by default: {REMOTE_CODE_HINT}"
        )
    if not remote and not native:
        raise ModelLoadError(
            f"{path}: unknown model_type {cfg.get('model_type')!r} and no modeling code (auto_map) in it"
        )
    return remote


def _load_model(path: Path, family: Family, cfg: dict, config, remote: bool, device: str, dtype: str | None):
    """The family's model class, with its load shims, on `device`."""
    from runtime.backends import shims

    kwargs = {"config": config, "local_files_only": True, "dtype": resolve_dtype(dtype, device)}
    auto_map = cfg.get("auto_map") or {}
    names = [n for n in family.auto_classes if n in auto_map] if remote else list(family.auto_classes)
    if not names:
        raise ModelLoadError(f"{path}: auto_map names none of {', '.join(family.auto_classes)}")
    errors = []
    with load_errors(path, device), shims.loading(family.shims):
        for name in names:
            try:
                model = _model_class(path, name, auto_map if remote else None, family).from_pretrained(
                    path, **kwargs
                )
            except ValueError as e:  # "Unrecognized configuration class ... for this kind of AutoModel"
                errors.append(one_line(e))
                continue
            shims.after_load(model, family.shims)
            return model.to(device)
    raise ModelLoadError(f"cannot load {path} as a masked model: {errors[-1]}")


def _model_class(path: Path, name: str, auto_map: dict | None, family: Family):
    """transformers' auto class `name`, or the folder's own class behind it, shimmed."""
    import transformers

    if auto_map is None:
        return getattr(transformers, name)
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    from runtime.backends.shims import shimmed_class

    cls = get_class_from_dynamic_module(auto_map[name], str(path), local_files_only=True)
    return shimmed_class(cls, family.shims)


def _probe(backend: MaskedBackend, path: Path) -> None:
    """One tiny forward at load time, so a wrong architecture fails here with one line, not per request."""
    ids = torch.tensor([[backend.end_id, backend.mask_id]], device=backend.device)  # (1, 2)
    try:
        with torch.inference_mode():
            logits = backend.call(ids)
    except Exception as e:
        raise ModelLoadError(f"{path}: test forward failed: {one_line(e)}") from None
    if logits is None or logits.ndim != 3 or logits.shape[-1] < len(backend.tok):
        raise ModelLoadError(f"{path}: the model does not return per-token logits over its vocabulary")
