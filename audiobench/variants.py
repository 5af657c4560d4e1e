"""The seven variants of DESIGN §4 (the paper's Table I and the combination it proposes), as data.

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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from audiobench.errors import AudiobenchError
from audiobench.losses import attention_bce, clip_bce, segment_bce, self_attention_bce
from audiobench.model import Output

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


def loss_terms(spec: VariantSpec, out: Output, weak: torch.Tensor,
               segments: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Each of the variant's unweighted loss terms for one batch, by term name.

    ``segments`` are the segment labels Y ``[B, C, T']`` (only needed by strong variants).
    """
    values: dict[str, torch.Tensor] = {}
    for term, _ in spec.terms:
        if term == "pred":
            values[term] = clip_bce(out.clip, weak)
        elif term == "segment":
            values[term] = segment_bce(out.xa, _need(segments, spec))
        elif term == "att_strong":
            values[term] = attention_bce(out.attention, _need(segments, spec))
        else:
            values[term] = self_attention_bce(out.attention, out.xa, weak)
    return values


def total_loss(spec: VariantSpec, values: dict[str, torch.Tensor], *, alpha: float,
               beta: float) -> torch.Tensor:
    """The weighted sum of the terms from :func:`loss_terms`."""
    scale = {"1": 1.0, "alpha": alpha, "beta": beta}
    weighted = [scale[weight] * values[term] for term, weight in spec.terms]
    return torch.stack(weighted).sum()


def _need(segments: torch.Tensor | None, spec: VariantSpec) -> torch.Tensor:
    if segments is None:
        raise AudiobenchError(f"variant {spec.name} needs segment labels for every batch")
    return segments
