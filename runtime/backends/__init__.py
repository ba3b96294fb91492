"""Model backends behind `runtime.backend.InfillBackend` (the embedded model is `runtime.engine`).

    diffusiongemma.py  DiffusionGemma through transformers' own block-diffusion `generate`
    prompt_cache.py    its encoder K/V kept across keystrokes, cropped to the common prefix
    masked.py          LLaDA/Dream-style masked models; our denoising loop and policies
    remote.py          an OpenAI-compatible completions server (vLLM, SGLang)
    layout.py          the infill prompt layout shared by diffusiongemma and remote
    hf.py              loading a Hugging Face folder (one-line errors)

`runtime.load.load_backend` picks one from the `model` setting.  Nothing here
is imported by the embedded path, so transformers and httpx stay optional.
"""
