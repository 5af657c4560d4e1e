"""The seven variants (docs/model.md: the paper's Table I and the combination it proposes), as data.

Each variant says whether the network has the attention head and which loss terms it sums, with the weight
(none, α or β) of each term:

| name                | pooling             | loss                                  |
| ------------------- | ------------------- | ------------------------------------- |
| `noatt-weak`        | mean                | L_pred                                |
| `noatt-strong`      | mean at inference   | BCE(Xa, Y)                            |
| `noatt-weak-strong` | mean                | BCE(Xa, Y) + L_pred                   |
| `att-unsup`         | attention           | L_pred                                |
| `att-strong`        | attention           | L_pred + α BCE(A, Y)                  |
| `att-self`          | attention           | L_pred + α BCE(A, P)                  |
| `att-strong-self`   | attention           | L_pred + α BCE(A, Y) + β BCE(A, P)    |

Plain data, without torch (the command line reads the names at start-up): the terms are computed by
:func:`audiobench.models.losses.loss_terms`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from audiobench.core.errors import AudiobenchError

Variant = Literal["noatt-weak", "noatt-strong", "noatt-weak-strong", "att-unsup", "att-strong", "att-self",
                  "att-strong-self"]
VARIANTS: tuple[str, ...] = get_args(Variant)

Term = Literal["pred", "segment", "att_strong", "att_self"]
Weight = Literal["1", "alpha", "beta"]
STRONG_TERMS = frozenset({"segment", "att_strong"})  # the terms that need segment labels Y


@dataclass(frozen=True)
class VariantSpec:
    """One variant: network shape and loss terms (``(term, weight)`` pairs, summed)."""

    name: str
    attention: bool
    terms: tuple[tuple[Term, Weight], ...]

    @property
    def needs_strong(self) -> bool:
        """True when a loss term needs segment labels, i.e. a strongly labelled training split."""
        return any(term in STRONG_TERMS for term, _ in self.terms)


SPECS: dict[str, VariantSpec] = {spec.name: spec for spec in (
    VariantSpec("noatt-weak", False, (("pred", "1"),)),
    VariantSpec("noatt-strong", False, (("segment", "1"),)),
    VariantSpec("noatt-weak-strong", False, (("segment", "1"), ("pred", "1"))),
    VariantSpec("att-unsup", True, (("pred", "1"),)),
    VariantSpec("att-strong", True, (("pred", "1"), ("att_strong", "alpha"))),
    VariantSpec("att-self", True, (("pred", "1"), ("att_self", "alpha"))),
    VariantSpec("att-strong-self", True, (("pred", "1"), ("att_strong", "alpha"), ("att_self", "beta"))),
)}


def variant_spec(name: str) -> VariantSpec:
    """The spec of a variant by name, or an error listing the names."""
    try:
        return SPECS[name]
    except KeyError:
        raise AudiobenchError(f"unknown variant {name!r} (choose from {', '.join(VARIANTS)})") from None


def require_strong(spec: VariantSpec, *, split: str, has_strong: bool) -> None:
    """Refuse a variant that needs strong labels on a split that has none, in one line naming the split."""
    if spec.needs_strong and not has_strong:
        raise AudiobenchError(f"variant {spec.name} needs strong labels, but split {split!r} has weak labels "
                              f"only (choose noatt-weak, att-unsup or att-self)")
