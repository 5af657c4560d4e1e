"""The variants (docs/model.md: the paper's Table I and the combination it proposes): everything a variant is.

A variant is one :class:`VariantSpec`: its pooling, its loss terms and their weights, the labels it uses
(the report's "labels used" column), and the variant Fig. 4 measures its AP gain against. Whether it needs
strong labels follows from its terms. Nothing else in the package knows a variant by its name: the trainer,
the loss, the study and the report read these fields, so a new variant is one :func:`register_variant` call
(see docs/architecture.md, "Adding a variant"):

>>> spec = register_variant(VariantSpec("att-self-half", "attention", (("pred", 1.0), ("att_self", 0.5)),
...                                     labels="weak (self-supervised)", fig4_over="noatt-weak"))
>>> variant_spec("att-self-half").loss_formula()
'L_pred + 0.5 BCE(A, P)'
>>> unregister_variant("att-self-half")

Plain data, without torch (the command line reads the names at start-up): each term's function is
:data:`audiobench.models.losses.TERM_FUNCTIONS` ``[term]``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Union, get_args

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import validate_name
from audiobench.core.names import unknown_name

Pooling = Literal["mean", "attention"]
Weight = Union[float, Literal["alpha", "beta"]]  # a number, or the training option (--alpha, --beta) it takes
OPTION_WEIGHTS: dict[str, str] = {"alpha": "α", "beta": "β"}  # the options a weight may name, as the table shows them


@dataclass(frozen=True)
class Term:
    """A loss term as the tables show it and what it reads (its function: ``losses.TERM_FUNCTIONS[name]``)."""

    formula: str
    needs_strong: bool = False  # reads the segment labels Y, so the training split must be strongly labelled
    needs_attention: bool = False  # reads the attention A, so the variant must pool with attention


TERMS: dict[str, Term] = {
    "pred": Term("L_pred"),
    "segment": Term("BCE(Xa, Y)", needs_strong=True),
    "att_strong": Term("BCE(A, Y)", needs_strong=True, needs_attention=True),
    "att_self": Term("BCE(A, P)", needs_attention=True),
}


@dataclass(frozen=True)
class VariantSpec:
    """One variant.

    ``pooling``: ``"attention"`` (the network has the attention head L8-b) or ``"mean"``. ``terms``:
    ``(term, weight)`` pairs, summed in this order; a weight is a number or ``"alpha"``/``"beta"`` (the
    training option of that name). ``labels``: the report's "labels used" column. ``fig4_over``: the variant
    whose per-class AP Fig. 4 subtracts from this one's (when a study has both; else the study's baseline);
    None: this variant is not drawn in Fig. 4. ``paper_row``: its row in the paper's Table I, if any.
    """

    name: str
    pooling: Pooling
    terms: tuple[tuple[str, Weight], ...]
    labels: str = ""
    fig4_over: str | None = None
    paper_row: int | None = field(default=None, compare=False)

    @property
    def attention(self) -> bool:
        """True when the network has the attention head (what :class:`audiobench.models.net.Net` is built with)."""
        return self.pooling == "attention"

    @property
    def needs_strong(self) -> bool:
        """True when a loss term needs segment labels, i.e. a strongly labelled training split."""
        return any(TERMS[term].needs_strong for term, _ in self.terms)

    def loss_formula(self) -> str:
        """The loss as the variants table writes it, e.g. ``L_pred + α BCE(A, Y)``."""
        return " + ".join(_weighted(weight, TERMS[term].formula) for term, weight in self.terms)

    def pooling_text(self) -> str:
        """The pooling as the variants table writes it (mean pooling unused by the loss is only for inference)."""
        if self.pooling == "mean" and all(term != "pred" for term, _ in self.terms):
            return "mean at inference"
        return self.pooling


def _weighted(weight: Weight, formula: str) -> str:
    if isinstance(weight, str):
        return f"{OPTION_WEIGHTS[weight]} {formula}"
    return formula if weight == 1 else f"{weight:g} {formula}"


SPECS: dict[str, VariantSpec] = {}  # every variant by name, in registration order


def register_variant(spec: VariantSpec, *, replace: bool = False) -> VariantSpec:
    """Make ``spec`` a variant that ``train``, ``compare``, pipelines and the report know by its name.

    Checked at once: a plain name (it becomes part of folder names), a pooling, at least one term, each term
    known (:data:`TERMS`) and used once, each weight a number or ``"alpha"``/``"beta"``, attention terms only
    with attention pooling, and ``fig4_over`` a registered other variant. A name already registered is
    refused unless ``replace``. Register before the command line is built for ``--variant`` to offer it.
    """
    validate_name(spec.name, what="variant name")
    problems = []
    if spec.pooling not in get_args(Pooling):
        problems.append(f"pooling {spec.pooling!r} (choose from {', '.join(get_args(Pooling))})")
    if not spec.terms:
        problems.append("no loss term")
    names = [term for term, _ in spec.terms]
    problems += [f"loss term {t!r} twice" for t in dict.fromkeys(names) if names.count(t) > 1]
    for term, weight in spec.terms:
        if term not in TERMS:
            problems.append(f"unknown loss term {term!r} (choose from {', '.join(TERMS)})")
        elif TERMS[term].needs_attention and spec.pooling != "attention":
            problems.append(f"loss term {term!r} reads the attention, but the pooling is {spec.pooling!r}")
        if isinstance(weight, bool) or not (isinstance(weight, (int, float)) or weight in OPTION_WEIGHTS):
            problems.append(f"weight {weight!r} of {term!r} (a number, or one of {', '.join(OPTION_WEIGHTS)})")
    if spec.fig4_over is not None and (spec.fig4_over == spec.name or spec.fig4_over not in SPECS):
        problems.append(f"fig4_over {spec.fig4_over!r} is not another registered variant")
    if spec.name in SPECS and not replace:
        problems.append("a variant of that name is registered already (pass replace=True to redefine it)")
    if problems:
        raise AudiobenchError(f"variant {spec.name}: {'; '.join(problems)}")
    SPECS[spec.name] = spec
    return spec


def unregister_variant(name: str) -> None:
    """Forget a registered variant (tests and notebooks that register one for a while)."""
    SPECS.pop(name, None)


def variant_names() -> tuple[str, ...]:
    """Every registered variant, the paper's first."""
    return tuple(SPECS)


def variant_spec(name: str) -> VariantSpec:
    """The spec of a variant by name, or an error listing the names."""
    try:
        return SPECS[name]
    except KeyError:
        raise unknown_name("variant", str(name), SPECS) from None


def require_strong(spec: VariantSpec, *, split: str, has_strong: bool) -> None:
    """Refuse a variant that needs strong labels on a split that has none, in one line naming the split."""
    if spec.needs_strong and not has_strong:
        weak_only = [s.name for s in SPECS.values() if not s.needs_strong]
        choices = ", ".join(weak_only[:-1]) + f" or {weak_only[-1]}" if len(weak_only) > 1 else "".join(weak_only)
        raise AudiobenchError(f"variant {spec.name} needs strong labels, but split {split!r} has weak labels "
                              f"only (choose {choices})")


def fig4_pair(variants: Sequence[str], baseline: str) -> tuple[str, str] | None:
    """Fig. 4's ``(variant, over)`` for a study: the last of ``variants`` that names a Fig. 4 comparison, over
    the variant it names when the study has it, else over the baseline; None when no variant qualifies.

    Names that are not registered (a study folder written elsewhere) are passed over.
    """
    for name in reversed(variants):
        spec = SPECS.get(name)
        if spec is None or spec.fig4_over is None:
            continue
        over = spec.fig4_over if spec.fig4_over in variants else baseline
        if over != name:
            return name, over
    return None


def variants_table() -> str:
    """The variants table of docs/model.md, from the registered specs (a test keeps the page in step)."""
    rows = ["| name | Table I row | pooling | loss | labels used | needs strong labels | Fig. 4: gain over |",
            "| --- | ---: | --- | --- | --- | --- | --- |"]
    for spec in SPECS.values():
        row = "–" if spec.paper_row is None else str(spec.paper_row)
        over = "–" if spec.fig4_over is None else f"`{spec.fig4_over}`"
        rows.append(f"| `{spec.name}` | {row} | {spec.pooling_text()} | `{spec.loss_formula()}` | {spec.labels} | "
                    f"{'yes' if spec.needs_strong else 'no'} | {over} |")
    return "\n".join(rows)


for _spec in (
    VariantSpec("noatt-weak", "mean", (("pred", 1.0),), labels="weak", paper_row=1),
    VariantSpec("noatt-strong", "mean", (("segment", 1.0),), labels="strong", paper_row=2),
    VariantSpec("noatt-weak-strong", "mean", (("segment", 1.0), ("pred", 1.0)), labels="weak + strong", paper_row=3),
    VariantSpec("att-unsup", "attention", (("pred", 1.0),), labels="weak", fig4_over="noatt-weak", paper_row=4),
    VariantSpec("att-strong", "attention", (("pred", 1.0), ("att_strong", "alpha")),
                labels="weak + strong (attention)", fig4_over="noatt-weak", paper_row=5),
    VariantSpec("att-self", "attention", (("pred", 1.0), ("att_self", "alpha")),
                labels="weak (self-supervised)", fig4_over="att-unsup", paper_row=6),  # Fig. 4: rows 6 over 4
    VariantSpec("att-strong-self", "attention", (("pred", 1.0), ("att_strong", "alpha"), ("att_self", "beta")),
                labels="weak + strong + self", fig4_over="noatt-weak"),
):
    register_variant(_spec)
del _spec

VARIANTS: tuple[str, ...] = variant_names()  # the paper's seven, as shipped
