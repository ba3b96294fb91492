"""A model's decoding defaults: the `decoding` section of its config.json.

    {"end_probability": 0.3, "pad_run_confidence": 0.3,
     "policies": {"adaptive": {"gamma": 3.0}}, "length_search": [3, 20], "causal_line": true,
     "tuned_by": "..."}

* `end_probability`, `pad_run_confidence`: the end-of-text bars of its free canvases
  (`runtime.rules.EndBars`; absent: 0.5 each);
* `policies`: per policy, option values that replace the policy's own defaults for this model;
  a request's policy spec still wins (`adaptive:gamma=0.25` runs at 0.25);
* `length_search`: exact lengths (tokens) at which a single line of unknown length is decoded too,
  the causal head choosing among the texts (`runtime.lengths`; absent: none);
* `causal_line`: true: such a line is also written left to right by the causal head, a candidate the
  same choice weighs (`runtime.lengths.causal_line`; absent: false).

These numbers belong to a model (how confident it is decides how much it may commit per step and
how sure of an end it must be), so they live beside its weights, like its `drafts` section; a
model that declares none gets the defaults.  Other keys (notes such as "tuned_by") are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from runtime.policy_spec import parse_policy
from runtime.rules import DEFAULT_BARS, EndBars
from runtime.types import BadRequest

BARS = ("end_probability", "pad_run_confidence")
MAX_SEARCH_LENGTH = 64
"""The longest exact length a search may try (a single line's `max_tokens`)."""


@dataclass(frozen=True)
class Decoding:
    end_bars: EndBars = DEFAULT_BARS
    policies: Mapping[str, Mapping[str, int | float | str]] = field(default_factory=dict)
    """Policy name -> option values (checked as a policy spec is)."""
    length_search: tuple[int, ...] = ()
    """Exact lengths tried beside the free canvas for a single line of unknown length."""
    causal_line: bool = False
    """Whether the causal head's own line is a candidate beside the free canvas's."""

    @property
    def searches(self) -> bool:
        """Whether a single line of unknown length gets candidates beside the free canvas."""
        return bool(self.length_search or self.causal_line)

    def describe(self) -> str:
        """One line for a report: "end bars 0.3 / 0.3; adaptive gamma=3" ("" for the defaults)."""
        if self == Decoding():
            return ""
        bars = f"end bars {self.end_bars.end_probability:g} / {self.end_bars.pad_run_confidence:g}"
        options = [
            f"{name} " + ",".join(f"{k}={_number(v)}" for k, v in opts.items())
            for name, opts in self.policies.items()
        ]
        lengths = [f"length search {', '.join(map(str, self.length_search))}"] if self.length_search else []
        causal = ["causal line"] if self.causal_line else []
        return "; ".join([bars, *options, *lengths, *causal])

    @classmethod
    def from_config(cls, section: object) -> Decoding:
        """The defaults of a config.json `decoding` section (None or absent: the defaults);
        a bad value raises ValueError naming it."""
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ValueError(f"decoding must be an object, not {section!r}")
        bars = {}
        for key in BARS:
            value = section.get(key, getattr(DEFAULT_BARS, key))
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
                raise ValueError(f"decoding.{key} must be a number in (0, 1), not {value!r}")
            bars[key] = float(value)
        lengths = _lengths(section.get("length_search", []))
        causal = section.get("causal_line", False)
        if not isinstance(causal, bool):
            raise ValueError(f"decoding.causal_line must be true or false, not {causal!r}")
        return cls(EndBars(**bars), _policies(section.get("policies", {})), lengths, causal)


def _lengths(value: object) -> tuple[int, ...]:
    ok = isinstance(value, list) and all(type(n) is int and 1 <= n <= MAX_SEARCH_LENGTH for n in value)
    if not ok:
        raise ValueError(
            f"decoding.length_search must be a list of token counts 1-{MAX_SEARCH_LENGTH}, not {value!r}"
        )
    return tuple(sorted(set(value)))


def _number(value: int | float | str) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _policies(section: object) -> dict[str, dict[str, int | float | str]]:
    if not isinstance(section, dict):
        raise ValueError(f"decoding.policies must be an object, not {section!r}")
    out = {}
    for name, options in section.items():
        if not isinstance(options, dict):
            raise ValueError(f"decoding.policies.{name} must be an object, not {options!r}")
        spec = f"{name}:" + ",".join(f"{k}={v}" for k, v in options.items())
        try:
            out[name] = parse_policy(spec).as_dict()
        except BadRequest as e:
            raise ValueError(f"decoding.policies: {e}") from None
    return out
