"""Infill prompt layouts for models whose canvas follows the prompt (DiffusionGemma, remote servers).

A block-diffusion model's encoder is causal and its canvas comes after the
prompt, so the suffix can only reach the model through the prompt.  We put
the suffix first and the prefix last, so the model continues the prefix at
the cursor and a keystroke only changes the tail of the prompt (which keeps
the prompt cache effective)::

    chat layout  (the folder's tokenizer has a chat template)
        <template: user turn = INSTRUCTION + fenced suffix, then the model-turn header>```\\n{prefix}

    plain layout (no chat template; also what the remote backend sends)
        Text after the cursor:\\n```\\n{suffix}\\n```\\n
        Text before the cursor, continued at the cursor:\\n```\\n{prefix}

The model's reply is the middle; `clean_middle` cuts it at a closing fence
and drops a tail that repeats the suffix.
"""

from __future__ import annotations

from collections.abc import Callable

from runtime.text import finish
from runtime.types import InfillRequest

FENCE = "```"
INSTRUCTION = (
    "Fill in the code at the cursor. The text after the cursor is below. Reply by continuing the text "
    "before the cursor, which starts your reply; write only the missing code and stop where it joins "
    "the text after the cursor."
)
PLAIN_SUFFIX_HEADER = "Text after the cursor:\n"
PLAIN_PREFIX_HEADER = "Text before the cursor, continued at the cursor:\n"


def plain_prompt(prefix: str, suffix: str) -> str:
    """The fallback layout: plain text, no special tokens."""
    return f"{PLAIN_SUFFIX_HEADER}{FENCE}\n{suffix}\n{FENCE}\n{PLAIN_PREFIX_HEADER}{FENCE}\n{prefix}"


def chat_prompt(prefix: str, suffix: str, render: Callable[[list[dict[str, str]]], str]) -> str:
    """The chat layout: `render` applies the folder's chat template with the generation prompt."""
    user = f"{INSTRUCTION}\n{FENCE}\n{suffix}\n{FENCE}"
    return render([{"role": "user", "content": user}]) + f"{FENCE}\n{prefix}"


def clean_middle(text: str, req: InfillRequest) -> str:
    """The model's continuation -> the text to insert at the cursor."""
    if FENCE not in req.prefix and FENCE not in req.suffix:
        # the layout fences the code: a fence in the reply closes it
        cut = text.find(FENCE)
        if cut >= 0:  # the newline before a closing fence belongs to the fence
            text = text[:cut].removesuffix("\n")
    return finish(text, req)
