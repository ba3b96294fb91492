"""DiffusionGemma through transformers' own block-diffusion `generate`.

    request -> prompt (runtime.backends.layout) -> encoder K/V (prompt_cache) -> generate -> text

We use what `generate` offers instead of our sampler: entropy-bounded
acceptance with renoising (its self-correction), adaptive stop, one canvas
after another until EOS.  Our request policy names are accepted for a uniform
interface but do not change its sampler.

Temperature.  `generate` divides the logits by its schedule (the checkpoint's
`t_max` -> `t_min`) and feeds the same scaled logits to the entropy bound, the
adaptive stop and the draw of the accepted tokens.  The first two decide how
many slots are accepted per step, i.e. the speed, so we always leave the
checkpoint's schedule in place and change only the draw (`_TemperatureSampler`):
temperature 0 accepts the argmax, temperature T samples at schedule x T / t_max
(T = t_max is the library's own sampling).

Hooks: `generate` calls `streamer.put_draft` after every denoising step and
`streamer.put` after every canvas.  `_StepWatch` counts steps (decoder
forwards), raises `Cancelled` when the caller's flag is set and stops at the
deadline by raising `_DeadlineReached`, at both places and between the chunks
of a cold prompt encode; we then answer with what there is (anytime decoding,
like our `adaptive` policy).  The prompt cache is safe under both because
`generate` only ever extends a per-request view.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSampler

from runtime.backends.base import Backend
from runtime.backends.hf import INSTALL_HINT, load_errors, load_tokenizer, resolve_dtype
from runtime.backends.layout import chat_prompt, clean_middle, plain_prompt
from runtime.backends.prompt_cache import PromptCache
from runtime.context import clip_context
from runtime.types import (
    CacheStats,
    Cancelled,
    InfillRequest,
    InfillResult,
    InfillStats,
    LargeModelOptions,
    ModelLoadError,
)

ARGMAX_NOISE_SEED = 0
"""Temperature 0 ignores the request's seed: the renoising draws come from this one, so the same
prompt always gives the same answer."""


class _DeadlineReached(Exception):
    """Raised from the streamer to leave `generate` between two denoising steps."""


class _TemperatureSampler(EntropyBoundSampler):
    """transformers' entropy-bound sampler, accepting tokens drawn at the request's temperature.

    `logits` arrive divided by the schedule's temperature; `factor` = temperature / t_max.
    The acceptance mask (the entropy bound) is the library's, computed on those logits."""

    def __init__(self, config, canvas_length: int, vocab_size: int, steps: int, *, factor: float) -> None:
        super().__init__(config, canvas_length, vocab_size, steps)
        self.factor = factor

    def accept_canvas(self, current_canvas, denoiser_canvas, logits, cur_step):
        if self.factor == 0:
            denoiser_canvas = logits.argmax(-1)  # (B, C)
        elif self.factor != 1:
            probs = torch.softmax(logits.float() / self.factor, dim=-1)  # (B, C, V)
            draws = torch.multinomial(probs.view(-1, probs.shape[-1]), 1)  # (B*C, 1)
            denoiser_canvas = draws.view(denoiser_canvas.shape)
        return super().accept_canvas(current_canvas, denoiser_canvas, logits, cur_step)


@contextlib.contextmanager
def _request_sampler(model, temperature: float) -> Iterator[None]:
    """Make `model.generate` build a `_TemperatureSampler` (its `_prepare_sampler` hook, 5.24)."""

    def prepare(generation_config) -> EntropyBoundSampler:
        return _TemperatureSampler(
            generation_config.sampler_config,
            model.config.canvas_length,
            model.config.text_config.vocab_size,
            generation_config.max_denoising_steps,
            factor=temperature / generation_config.t_max,
        )

    model._prepare_sampler = prepare
    try:
        yield
    finally:
        del model._prepare_sampler


class _StepWatch:
    """A transformers streamer: `put` gets the prompt then each finished canvas, `put_draft` each step."""

    def __init__(
        self,
        should_cancel: Callable[[], bool] | None,
        deadline_ms: float | None,
        started: float,
        continues: Callable[[list[list[int]]], bool],
    ):
        self.should_cancel = should_cancel
        self.deadline_ms = deadline_ms
        self.started = started
        self.continues = continues
        """Whether `generate` goes on to another canvas after these (no EOS, room left)."""
        self.forwards = 0
        self.canvases: list[list[int]] = []
        self.draft: list[int] = []
        self._seen_prompt = False
        self._last = time.perf_counter()
        self._step_ms = 0.0

    def check(self, ahead_ms: float = 0.0) -> None:
        """Raise `Cancelled` or `_DeadlineReached` if the caller cancelled or time is (about to be) up."""
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled("cancelled during generation")
        elapsed = (time.perf_counter() - self.started) * 1000
        if self.deadline_ms is not None and elapsed + ahead_ms >= self.deadline_ms:
            raise _DeadlineReached

    def put(self, value: torch.Tensor) -> None:
        if not self._seen_prompt:
            self._seen_prompt = True
            self._last = time.perf_counter()  # the prompt's last token was encoded: steps start
            return
        self.canvases.append(value[0].tolist())
        self.draft = []
        if self.continues(self.canvases):  # between canvases
            self.check(ahead_ms=self._step_ms)

    def put_draft(self, value: torch.Tensor) -> None:
        now = time.perf_counter()
        this_ms = (now - self._last) * 1000
        self._step_ms = this_ms if self.forwards == 0 else 0.7 * self._step_ms + 0.3 * this_ms
        self._last = now
        self.forwards += 1
        self.draft = value[0].tolist()
        self.check(ahead_ms=self._step_ms)

    def end(self) -> None:
        pass


class _AnswerComplete(StoppingCriteria):
    """No further canvas once the last one settles the answer (see `DiffusionGemmaBackend._settled`)."""

    def __init__(self, settled: Callable[[list[int]], bool], canvas_len: int) -> None:
        self.settled = settled
        self.canvas_len = canvas_len

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        rows = [self.settled(row[-self.canvas_len :].tolist()) for row in input_ids]
        return torch.tensor(rows, dtype=torch.bool, device=input_ids.device)


class DiffusionGemmaBackend(Backend):
    """The prompt cache lives here across requests."""

    name = "diffusiongemma"
    sizes_canvas = False  # `generate` always denoises the checkpoint's canvas_length

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

    def _max_new_tokens(self, req: InfillRequest) -> int:
        return -(-req.max_tokens // self.canvas_len) * self.canvas_len  # whole canvases

    def _settled(self, req: InfillRequest) -> Callable[[list[int]], bool]:
        """Whether a canvas ends the answer: it holds an end token (EOS, or pad, which the model
        also ends with), or for a single line a line break; later canvases would be cut off."""

        def settled(canvas: list[int]) -> bool:
            if any(t in self.end_ids for t in canvas):
                return True
            return req.single_line and "\n" in self.tok.decode(canvas)

        return settled

    def _continues(self, req: InfillRequest) -> Callable[[list[list[int]]], bool]:
        """Whether `generate` starts another canvas after `canvases` (its stopping rules and ours)."""
        settled = self._settled(req)

        def continues(canvases: list[list[int]]) -> bool:
            room = len(canvases) * self.canvas_len < self._max_new_tokens(req)
            return room and not settled(canvases[-1])

        return continues

    def _generate_options(self, req: InfillRequest, cache, watch: _StepWatch) -> dict:
        return {
            "cache": cache,
            "streamer": watch,
            "max_new_tokens": self._max_new_tokens(req),
            "stopping_criteria": StoppingCriteriaList([_AnswerComplete(self._settled(req), self.canvas_len)]),
            **({} if self.max_denoising_steps is None else {"max_denoising_steps": self.max_denoising_steps}),
        }

    def _denoise(self, req: InfillRequest, ids: list[int], watch: _StepWatch) -> tuple[list[int], int, bool]:
        """(generated ids, reused prompt tokens, deadline hit): the cached prompt, then `generate`."""
        try:
            # the cache holds all but the last prompt token: `generate` needs at least one input id
            cache, reused = self.prompt_cache.prepare(ids[:-1], check=watch.check)
        except _DeadlineReached:  # during a cold encode: nothing generated yet
            return [], 0, True
        kwargs = self._generate_options(req, cache, watch)
        input_ids = torch.tensor([ids[-1:]], device=self.model.device)  # (1, 1)
        dev = self.model.device
        devices = [dev.index or 0] if dev.type != "cpu" else []
        with torch.random.fork_rng(devices=devices, device_type=dev.type):
            # `generate` draws its noise from the global generator
            torch.manual_seed(ARGMAX_NOISE_SEED if req.temperature == 0 else req.seed)
            try:
                with _request_sampler(self.model, req.temperature):
                    out = self.model.generate(input_ids, **kwargs)
                return out.sequences[0, 1:].tolist(), reused, False
            except _DeadlineReached:
                return [t for canvas in watch.canvases for t in canvas] + watch.draft, reused, True

    def _generate(self, req: InfillRequest, should_cancel: Callable[[], bool] | None) -> InfillResult:
        started = time.perf_counter()
        if should_cancel is not None and should_cancel():
            raise Cancelled("cancelled before the prompt was encoded")
        ids = self.prompt_ids(req)
        watch = _StepWatch(should_cancel, req.deadline_ms, started, self._continues(req))
        generated, reused, deadline_hit = self._denoise(req, ids, watch)
        body = []
        for t in generated:
            if t in self.end_ids:
                break
            body.append(t)
        body = body[: req.max_tokens]
        text = clean_middle(self.tok.decode(body, skip_special_tokens=True), req)
        stats = InfillStats(
            forwards=watch.forwards,
            tokens=self._tokens_of(body, text),
            canvases=len(watch.canvases) + (1 if watch.draft else 0),
            context_tokens=len(ids),
            cached_tokens=reused,
            ms=(time.perf_counter() - started) * 1000,
            deadline_hit=deadline_hit,
        )
        return InfillResult(text=text, stats=stats)

    def _tokens_of(self, body: list[int], text: str) -> int:
        """How many of the generated tokens `text` (a cut of their decoding) is made of."""
        lo, hi = 0, len(body)  # the fewest leading tokens whose decoding covers the text
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self.tok.decode(body[:mid], skip_special_tokens=True)) >= len(text):
                hi = mid
            else:
                lo = mid + 1
        return lo


# ----------------------------------------------------------------------------- loading
@functools.cache
def text_only_class() -> type:
    """DiffusionGemma without its vision tower (dg-lsp sends no images), as a subclass.

    `from_pretrained` builds this module tree before it reads any weight, so the checkpoint's
    vision tensors are never loaded; they are the only unused keys, and not reported.  Relies on
    the encoder's `vision_tower` / `embed_vision` attributes of transformers 5.24 (pinned).  Built
    on first use: importing the modeling code imports triton, which must not happen at import time
    (the kernel tests set TRITON_INTERPRET first)."""
    from transformers import DiffusionGemmaForBlockDiffusion

    class DiffusionGemmaTextOnly(DiffusionGemmaForBlockDiffusion):
        _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [
            r"model\.encoder\.(vision_tower|embed_vision)\."
        ]

        def __init__(self, config) -> None:
            super().__init__(config)
            encoder = self.model.encoder
            del encoder.vision_tower, encoder.embed_vision
            encoder.vision_tower = encoder.embed_vision = None

    return DiffusionGemmaTextOnly


def _require_accelerate(why: str) -> None:
    if importlib.util.find_spec("accelerate") is None:
        raise ModelLoadError(f"{why} needs the accelerate package (transformers places weights with it): "
                             f"{INSTALL_HINT}")


def _is_quantized(path: Path) -> bool:
    try:
        return "quantization_config" in json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False  # from_pretrained reports a missing or broken config.json itself


def load_kwargs(path: Path, device: str, dtype: str | None, options: LargeModelOptions) -> dict:
    """`from_pretrained` arguments for the memory options (docs/backends.md, "Memory")."""
    torch_dtype = resolve_dtype(dtype, device)
    if torch_dtype == torch.float16:
        raise ModelLoadError("DiffusionGemma cannot run in float16 (Gemma activations overflow its range): "
                             "use bfloat16 on a GPU, or float32")
    kwargs: dict = {"local_files_only": True, "dtype": torch_dtype}
    if options.quantization == "fp8":
        if _is_quantized(path):
            raise ModelLoadError(f"{path} is already quantized (its config.json has a quantization_config): "
                                 "leave quantization unset")
        if not device.startswith("cuda"):
            raise ModelLoadError("quantization fp8 needs a CUDA GPU of compute capability 8.9 or newer "
                                 "(RTX 4090, L4, L40S, H100); leave it unset on CPU")
        from transformers import FineGrainedFP8Config

        kwargs["quantization_config"] = FineGrainedFP8Config()
    if options.device_map is not None:
        _require_accelerate(f"deviceMap {options.device_map!r}")
        kwargs["device_map"] = options.device_map
        if options.max_memory:  # accelerate wants GPU indices as ints
            kwargs["max_memory"] = {int(k) if k.isdigit() else k: v for k, v in options.max_memory}
    elif device != "cpu":
        _require_accelerate(f"loading onto {device}")
        kwargs["device_map"] = device  # straight onto the GPU: a 26B checkpoint does not fit twice
    return kwargs


def load_diffusiongemma(
    path: Path,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    options: LargeModelOptions | None = None,
) -> DiffusionGemmaBackend:
    options = options or LargeModelOptions()
    kwargs = load_kwargs(path, device, dtype, options)
    from transformers import DiffusionGemmaForBlockDiffusion

    cls = DiffusionGemmaForBlockDiffusion if options.vision else text_only_class()
    with load_errors(path, device):
        model = cls.from_pretrained(path, **kwargs)
    tok = load_tokenizer(path)
    vocab = model.config.get_text_config().vocab_size
    if len(tok) > vocab:
        raise ModelLoadError(f"{path}: tokenizer has {len(tok)} tokens but the model only {vocab}")
    name, steps = f"{path.name} (diffusiongemma)", options.max_denoising_steps
    return DiffusionGemmaBackend(model, tok, description=name, max_denoising_steps=steps)
