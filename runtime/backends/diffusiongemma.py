"""DiffusionGemma through transformers' own block-diffusion `generate`.

    request -> prompt (runtime.backends.layout) -> encoder K/V (prompt_cache) -> generate -> text

We use what `generate` offers instead of our sampler: entropy-bounded
acceptance with renoising (its self-correction), adaptive stop, one canvas
after another until EOS, and `tokens_per_forward` in its output.  Our request
policy names are accepted for a uniform interface but do not change its sampler.

Hooks between denoising steps: `generate` calls `streamer.put_draft` after
every step with the argmax canvas.  `_StepWatch` counts those calls (decoder
forwards), raises `Cancelled` when the caller's flag is set, and stops at the
deadline by raising `_DeadlineReached`; we then use the last draft as the
answer (anytime decoding, like our `adaptive` policy).  The prompt cache is
safe under both because `generate` only ever extends a per-request view.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from runtime.backends.base import Backend
from runtime.backends.hf import load_errors, load_tokenizer, resolve_dtype
from runtime.backends.layout import chat_prompt, clean_middle, plain_prompt
from runtime.backends.prompt_cache import PromptCache
from runtime.context import clip_context
from runtime.types import CacheStats, Cancelled, InfillRequest, InfillResult, InfillStats, ModelLoadError


class _DeadlineReached(Exception):
    """Raised from the streamer to leave `generate` between two denoising steps."""


class _StepWatch:
    """A transformers streamer: `put` gets the prompt then each finished canvas, `put_draft` each step."""

    def __init__(self, should_cancel: Callable[[], bool] | None, deadline_ms: float | None, started: float):
        self.should_cancel = should_cancel
        self.deadline_ms = deadline_ms
        self.started = started
        self.forwards = 0
        self.canvases: list[list[int]] = []
        self.draft: list[int] = []
        self._seen_prompt = False
        self._last = time.perf_counter()
        self._step_ms = 0.0

    def put(self, value: torch.Tensor) -> None:
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        self.canvases.append(value[0].tolist())
        self.draft = []

    def put_draft(self, value: torch.Tensor) -> None:
        now = time.perf_counter()
        this_ms = (now - self._last) * 1000
        self._step_ms = this_ms if self.forwards == 0 else 0.7 * self._step_ms + 0.3 * this_ms
        self._last = now
        self.forwards += 1
        self.draft = value[0].tolist()
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled("cancelled between denoising steps")
        elapsed = (now - self.started) * 1000
        if self.deadline_ms is not None and elapsed + self._step_ms >= self.deadline_ms:
            raise _DeadlineReached

    def end(self) -> None:
        pass


class _NewlineStop(StoppingCriteria):
    """Single-line requests: no further canvas once the last one holds a newline."""

    def __init__(self, decode: Callable[[list[int]], str], canvas_len: int) -> None:
        self.decode = decode
        self.canvas_len = canvas_len

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        rows = [("\n" in self.decode(row[-self.canvas_len :].tolist())) for row in input_ids]
        return torch.tensor(rows, dtype=torch.bool, device=input_ids.device)


class DiffusionGemmaBackend(Backend):
    """The prompt cache lives here across requests."""

    name = "diffusiongemma"

    def __init__(
        self,
        model,
        tokenizer,
        *,
        description: str = "",
        max_denoising_steps: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.tok = tokenizer
        self.description = description or "DiffusionGemma"
        self.max_denoising_steps = max_denoising_steps
        self.canvas_len = int(model.config.canvas_length)
        self.prompt_cache = PromptCache(model)
        gen = model.generation_config
        text_cfg = model.config.get_text_config()
        eos = gen.eos_token_id if gen.eos_token_id is not None else text_cfg.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None:
            eos.append(tokenizer.eos_token_id)
        self.end_ids = set(eos)
        pad = gen.pad_token_id if gen.pad_token_id is not None else text_cfg.pad_token_id
        if pad is not None:
            self.end_ids.add(pad)
        self.uses_chat_template = bool(getattr(tokenizer, "chat_template", None))

    def cache_stats(self) -> CacheStats:
        return self.prompt_cache.stats()

    def close(self) -> None:
        self.prompt_cache.clear()

    def prompt_ids(self, req: InfillRequest) -> list[int]:
        """Token ids of the infill prompt (see `runtime.backends.layout`)."""

        def encode(text: str) -> list[int]:
            return self.tok.encode(text, add_special_tokens=False)

        prefix, suffix = clip_context(req.prefix, req.suffix, req.context_tokens, encode, self.tok.decode)
        if self.uses_chat_template:
            text = chat_prompt(prefix, suffix, self._render_chat)
            return encode(text)
        ids = encode(plain_prompt(prefix, suffix))
        bos = self.tok.bos_token_id
        return [bos, *ids] if bos is not None else ids

    def _render_chat(self, messages: list[dict[str, str]]) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def run(self, req: InfillRequest, should_cancel: Callable[[], bool] | None) -> InfillResult:
        with torch.inference_mode():
            return self._generate(req, should_cancel)

    def _generate_options(self, req: InfillRequest, cache, watch: _StepWatch) -> dict:
        kwargs: dict = {
            "cache": cache,
            "streamer": watch,
            "max_new_tokens": math.ceil(req.max_tokens / self.canvas_len) * self.canvas_len,
        }
        if self.max_denoising_steps is not None:
            kwargs["max_denoising_steps"] = self.max_denoising_steps
        if req.temperature > 0:  # its own schedule anneals from t_max to t_min
            kwargs["t_max"], kwargs["t_min"] = req.temperature, req.temperature / 2
        if req.single_line:
            kwargs["stopping_criteria"] = StoppingCriteriaList(
                [_NewlineStop(self.tok.decode, self.canvas_len)]
            )
        return kwargs

    def _generate(self, req: InfillRequest, should_cancel: Callable[[], bool] | None) -> InfillResult:
        started = time.perf_counter()
        if should_cancel is not None and should_cancel():
            raise Cancelled("cancelled before the prompt was encoded")
        ids = self.prompt_ids(req)
        # the cache holds all but the last prompt token: `generate` needs at least one input id
        cache, reused = self.prompt_cache.prepare(ids[:-1])
        watch = _StepWatch(should_cancel, req.deadline_ms, started)
        kwargs = self._generate_options(req, cache, watch)
        input_ids = torch.tensor([ids[-1:]], device=self.model.device)  # (1, 1)
        deadline_hit = False
        tokens_per_forward: float | None = None
        dev = self.model.device
        devices = [dev.index or 0] if dev.type != "cpu" else []
        with torch.random.fork_rng(devices=devices, device_type=dev.type):
            torch.manual_seed(req.seed)  # `generate` samples from the global generator
            try:
                out = self.model.generate(input_ids, **kwargs)
                generated = out.sequences[0, 1:].tolist()
                tokens_per_forward = float(out.tokens_per_forward[0])
            except _DeadlineReached:
                deadline_hit = True
                generated = [t for canvas in watch.canvases for t in canvas] + watch.draft
        body = []
        for t in generated:
            if t in self.end_ids:
                break
            body.append(t)
        body = body[: req.max_tokens]
        text = clean_middle(self.tok.decode(body, skip_special_tokens=True), req)
        # generate's count: non-pad tokens (EOS included) / decoder forwards
        tokens = len(body) if tokens_per_forward is None else round(tokens_per_forward * watch.forwards)
        stats = InfillStats(
            forwards=watch.forwards,
            tokens=tokens,
            canvases=len(watch.canvases) + (1 if deadline_hit else 0),
            context_tokens=len(ids),
            cached_tokens=reused,
            ms=(time.perf_counter() - started) * 1000,
            deadline_hit=deadline_hit,
        )
        return InfillResult(text=text, stats=stats)


def load_diffusiongemma(
    path: Path, *, device: str = "cpu", dtype: str | None = None, max_denoising_steps: int | None = None
) -> DiffusionGemmaBackend:
    from transformers import DiffusionGemmaForBlockDiffusion

    torch_dtype = resolve_dtype(dtype, device)
    with load_errors(path, device):
        kwargs: dict = {"local_files_only": True, "dtype": torch_dtype}
        if device != "cpu":
            kwargs["device_map"] = device  # straight onto the GPU: a 26B checkpoint does not fit twice
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(path, **kwargs)
    tok = load_tokenizer(path)
    vocab = model.config.get_text_config().vocab_size
    if len(tok) > vocab:
        raise ModelLoadError(f"{path}: tokenizer has {len(tok)} tokens but the model only {vocab}")
    return DiffusionGemmaBackend(
        model, tok, description=f"{path.name} (diffusiongemma)", max_denoising_steps=max_denoising_steps
    )
