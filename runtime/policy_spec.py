"""Policy names and their options, parsed and checked without torch.

A policy is written `NAME` or `NAME:KEY=VALUE,...` (`threshold:tau=0.8`,
`llada:steps=4,schedule=cosine`).  This module knows every policy's options and
their types, so a request, a setting or a command-line flag is checked once, at
the boundary, by code that the language server can import before any model
(and torch) is loaded.  `runtime.policies` builds the objects from a `PolicySpec`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtime.types import BadRequest

SCHEDULE_NAMES = ("linear", "cosine")

OPTIONS: dict[str, dict[str, type | tuple[str, ...]]] = {
    "sequential": {},
    "llada": {"steps": int, "schedule": SCHEDULE_NAMES},
    "threshold": {"tau": float},
    "entropy": {"gamma": float},
    "adaptive": {"gamma": float, "remask_floor": float, "max_remask_per_slot": int, "stable_entropy": float},
}
"""Per policy: option name -> int, float or the allowed names.  `runtime.policies.POLICIES`
builds each policy from exactly these options (a test keeps the two in step)."""

POLICY_NAMES = tuple(OPTIONS)
MINIMUM = {"steps": 1}
"""Options with a lower bound above 0 (every number must be finite and >= 0)."""


@dataclass(frozen=True)
class PolicySpec:
    name: str
    options: tuple[tuple[str, int | float | str], ...] = ()

    def as_dict(self) -> dict[str, int | float | str]:
        return dict(self.options)


def parse_policy(spec: str) -> PolicySpec:
    """'entropy' -> PolicySpec('entropy'); 'threshold:tau=0.8' -> PolicySpec('threshold', (('tau', 0.8),)).

    Raises `BadRequest` naming the bad part: an unknown policy or option, a value of the wrong
    type, a number that is not finite or below its minimum."""
    if not isinstance(spec, str):
        raise BadRequest(f"policy must be a string, got {type(spec).__name__}")
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in OPTIONS:
        raise BadRequest(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})")
    known = OPTIONS[name]
    options: dict[str, int | float | str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = (x.strip() for x in item.partition("="))
        if not (eq and key and value):
            raise BadRequest(f"policy option {item!r} in {spec!r} is not NAME=VALUE")
        if key not in known:
            choices = ", ".join(known) or "none"
            raise BadRequest(f"policy {name!r} has no option {key!r} (options: {choices})")
        options[key] = _option_value(name, key, value, known[key])
    return PolicySpec(name, tuple(options.items()))


def _option_value(policy: str, key: str, value: str, kind: type | tuple[str, ...]) -> int | float | str:
    where = f"policy {policy!r} option {key}={value!r}"
    if isinstance(kind, tuple):
        if value not in kind:
            raise BadRequest(f"{where}: choose from {', '.join(kind)}")
        return value
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"{where} is not a number") from None
    if not math.isfinite(number) or number < MINIMUM.get(key, 0):
        raise BadRequest(f"{where} must be a finite number >= {MINIMUM.get(key, 0)}")
    if kind is int:
        if number != int(number):
            raise BadRequest(f"{where} must be a whole number")
        return int(number)
    return number
