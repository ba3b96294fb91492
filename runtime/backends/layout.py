"""Infill prompt layouts for models whose canvas follows the prompt (DiffusionGemma, remote servers).

A block-diffusion model's encoder is causal and its canvas comes after the
prompt, so the suffix can only reach the model through the prompt.  We put
the suffix first and the prefix last, so the model continues the prefix at
the cursor and a keystroke only changes the tail of the prompt (which keeps
the prompt cache effective)::

    chat layout  (the folder's tokenizer has a chat template)
        <template: user turn = INSTRUCTION + fenced suffix, then the model-turn header>```\\n{prefix}
    chat messages (the same for a server that renders the template: /chat/completions with
        continue_final_message; the model's turn is sent without the prefix's trailing whitespace)

    plain layout (no chat template; the remote backend with remotePrompt "plain", for base models)
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


def _user_turn(suffix: str) -> dict[str, str]:
    return {"role": "user", "content": f"{INSTRUCTION}\n{FENCE}\n{suffix}\n{FENCE}"}


def chat_prompt(prefix: str, suffix: str, render: Callable[[list[dict[str, str]]], str]) -> str:
    """The chat layout: `render` applies the folder's chat template with the generation prompt."""
    return render([_user_turn(suffix)]) + f"{FENCE}\n{prefix}"


def chat_messages(prefix: str, suffix: str) -> tuple[list[dict[str, str]], str]:
    """The chat layout as messages whose last one (the model's turn) the server continues, and
    the whitespace at the end of the prefix that it leaves out.

    A template may trim a message's end, and transformers' `continue_final_message` then cuts
    the prompt back to the trimmed text, so whitespace there would reach the model or not
    depending on the template: it is never sent, and `drop_typed` takes it off the reply."""
    head = prefix.rstrip()
    return [_user_turn(suffix), {"role": "assistant", "content": f"{FENCE}\n{head}"}], prefix[len(head) :]


def drop_typed(reply: str, typed: str) -> str:
    """A reply that continues the prefix without its trailing whitespace `typed` -> the text to
    insert after it: the part of the reply's leading whitespace the user already typed goes."""
    n = 0
    while n < min(len(reply), len(typed)) and reply[n] == typed[n]:
        n += 1
    return reply[n:]


def clean_middle(text: str, req: InfillRequest) -> str:
    """The model's continuation -> the text to insert at the cursor."""
    if FENCE not in req.prefix and FENCE not in req.suffix:
        # the layout fences the code: a fence in the reply closes it
        cut = text.find(FENCE)
        if cut >= 0:  # the newline before a closing fence belongs to the fence
            text = text[:cut].removesuffix("\n")
    return finish(text, req)
