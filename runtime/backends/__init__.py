"""Model backends, each a `runtime.backends.base.Backend`.

    base.py            the interface: infill(request, should_cancel) -> result; the rewrite-mode check
    embedded.py        the shipped model (runtime.model): context cache, canvas chain, our policies
    masked.py          LLaDA/Dream-style masked models; the same canvas chain and policies
    families.py        the published masked families (detection, ids, layout, attention, shift)
    shims.py           load-time shims for their transformers-4 modeling code under transformers 5
    diffusiongemma.py  DiffusionGemma through transformers' own block-diffusion `generate`
    prompt_cache.py    its encoder K/V kept across keystrokes, cropped to the common prefix
    remote.py          an OpenAI-compatible completions server (vLLM, SGLang)
    layout.py          the infill prompt layout shared by diffusiongemma and remote
    hf.py              loading a Hugging Face folder (one-line errors)

`runtime.load.load_backend` picks one from the `model` setting.  Only masked,
families, diffusiongemma, prompt_cache, remote and hf import transformers or httpx, and the
loader imports them only for such a model, so those packages stay optional.
"""
