"""Load-time compatibility shims for modeling code written for transformers 4.x, run under 5.24.

Nothing here edits the user's folder or transformers itself beyond the load: the remote class
is subclassed (same module, same name) and a rope entry lives only inside `loading`.

    post_init       the class's __init__ never calls post_init() (LLaDA), so transformers 5's
                    loader fails on `all_tied_weights_keys`: the subclass calls it when missing
    tie_weights     the class's tie_weights(self) takes no arguments (LLaDA) while transformers 5
                    calls tie_weights(missing_keys=..., recompute_mapping=False): the subclass
                    accepts them and calls the original
    rope_default    the rotary embedding looks up ROPE_INIT_FUNCTIONS["default"] (Dream), a key
                    transformers 5 removed: present during the load, computing the standard
                    frequencies 1 / theta ** (2i / d)
    rotary_buffers  transformers 5 builds the model on the meta device and refills non-persistent
                    buffers with uninitialised memory, expecting _init_weights to set them; Dream's
                    _init_weights knows only Linear and Embedding, so every rotary inv_freq is
                    recomputed after the load from the module's own rope_init_fn
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator

import torch

SHIMS = ("post_init", "tie_weights", "rope_default", "rotary_buffers")


def default_rope(config=None, device=None, seq_len=None, **kwargs) -> tuple[torch.Tensor, float]:
    """The standard RoPE inverse frequencies (no scaling) and attention factor 1."""
    if config is not None:
        params = getattr(config, "rope_parameters", None) or {}
        base = params.get("rope_theta", getattr(config, "rope_theta", 10000.0))
        head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        dim = int(head * params.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", 1.0)))
    else:  # the pre-4.46 keyword form
        base, dim = kwargs["base"], kwargs["dim"]
    exponent = torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim
    return 1.0 / (base**exponent), 1.0


@contextlib.contextmanager
def loading(shims: tuple[str, ...]) -> Iterator[None]:
    """The context of one load: a "default" rope entry while `rope_default` is asked for."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    added = "rope_default" in shims and "default" not in ROPE_INIT_FUNCTIONS
    if added:
        ROPE_INIT_FUNCTIONS["default"] = default_rope
    try:
        yield
    finally:
        if added:
            ROPE_INIT_FUNCTIONS.pop("default", None)


def shimmed_class(cls: type, shims: tuple[str, ...]) -> type:
    """`cls`, or a subclass of it (same module and name) with the class shims that it needs."""
    namespace: dict = {}
    if "post_init" in shims:

        def __init__(self, *args, **kwargs):
            cls.__init__(self, *args, **kwargs)
            if not hasattr(self, "all_tied_weights_keys"):  # the class did not call post_init()
                self.post_init()

        namespace["__init__"] = __init__
    if "tie_weights" in shims and "missing_keys" not in inspect.signature(cls.tie_weights).parameters:

        def tie_weights(self, missing_keys=None, recompute_mapping=True):
            return cls.tie_weights(self)

        namespace["tie_weights"] = tie_weights
    if not namespace:
        return cls
    namespace.update(__module__=cls.__module__, __qualname__=cls.__qualname__)
    return type(cls.__name__, (cls,), namespace)


def after_load(model: torch.nn.Module, shims: tuple[str, ...]) -> None:
    """The shims that act on the loaded model."""
    if "rotary_buffers" not in shims:
        return
    with torch.no_grad():
        for module in model.modules():
            init = getattr(module, "rope_init_fn", None)
            freq = getattr(module, "inv_freq", None)
            if init is None or not isinstance(freq, torch.Tensor):
                continue
            inv, scale = init(module.config, freq.device, **getattr(module, "rope_kwargs", {}))
            module.register_buffer("inv_freq", inv.to(freq.device, torch.float32), persistent=False)
            module.original_inv_freq = module.inv_freq
            module.attention_scaling = scale
