"""The paper's loss terms (Sec. II and III; docs/model.md), one small function each.

All are binary cross-entropy with the target weighting the logs,
``BCE(p, y) = -[y log p + (1 - y) log(1 - p)]`` (the paper prints prediction and target swapped), averaged
over classes and segments (and the batch). Tensors are ``[B, C]`` for clips and ``[B, C, T']`` for
segments, time last, as :class:`audiobench.models.net.Output` gives them. Compute them in float32, outside any
autocast region.

>>> xa = torch.full((1, 2, 4), 0.5)
>>> segment_bce(xa, torch.zeros(1, 2, 4)).item()  # -log(0.5)
0.6931...
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from audiobench.core.errors import AudiobenchError
from audiobench.models.net import Output
from audiobench.models.shape import SEGMENT_FRAMES
from audiobench.models.variants import VariantSpec


def bce(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy; logs are clipped at -100 as ``torch.nn.functional`` does, never NaN."""
    return F.binary_cross_entropy(prediction.float(), target.float())


def clip_bce(clip: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
    """L_pred = BCE(ŷ, y): clip predictions ``[B, C]`` against the weak labels ``[B, C]``."""
    return bce(clip, weak)


def segment_bce(xa: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """BCE(Xa, Y): segment probabilities against segment labels, both ``[B, C, T']``."""
    return bce(xa, segments)


def attention_bce(attention: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """L_att = BCE(A, Y): the normalised attention ``[B, C, T']`` against segment labels."""
    return bce(attention, segments)


def segment_labels(strong: torch.Tensor, segments: int | None = None) -> torch.Tensor:
    """Segment labels ``[B, C, T']`` from frame targets ``[B, T, C]`` (as the Dataset gives ``strong``).

    Segment ``t`` spans frames ``[16t, 16t + 16)``; ``Y[c, t] = 1`` when any of its frames carries an event of
    ``c``. ``segments`` defaults to ``T // 16``, the network's output length for a ``T``-frame input; frames
    past the last whole segment belong to none. Zero-length events have no frame target in the cache, so
    they give no segment label.
    """
    batch, frames, classes = strong.shape
    segments = frames // SEGMENT_FRAMES if segments is None else segments
    if segments * SEGMENT_FRAMES > frames:
        raise ValueError(f"{segments} segments need {segments * SEGMENT_FRAMES} frames, got {frames}")
    used = strong[:, : segments * SEGMENT_FRAMES].reshape(batch, segments, SEGMENT_FRAMES, classes)
    return used.amax(dim=2).transpose(1, 2).float()


@torch.no_grad()
def pseudo_labels(xa: torch.Tensor, weak: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-supervision targets P ``[B, C, T']`` and which clips have them (``[B]`` bool), without gradient.

    ``P[c, t] = 1`` if ``c`` is a weak label of the clip and ``Xa[c, t] >= θ``, where θ is the mean of Xa over
    the clip's absent classes (all segments). Edge cases:

    - a clip with no weak label: θ is the mean over all classes, P is all zeros (like a strongly labelled clip
      with no event);
    - a clip with every class present has no absent class, so no θ: it gets no pseudo labels and is left out
      of the self-supervised term (``valid`` is False for it).
    """
    present = weak.float().unsqueeze(-1)  # [B, C, 1]
    absent = 1.0 - present
    absent_values = (xa * absent).sum(dim=(1, 2))
    absent_count = absent.sum(dim=(1, 2)) * xa.shape[-1]
    valid = absent_count > 0
    theta = absent_values / absent_count.clamp(min=1.0)  # [B]
    labels = (xa >= theta[:, None, None]).float() * present
    return labels * valid[:, None, None], valid


def self_attention_bce(attention: torch.Tensor, xa: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
    """BCE(A, P) with P from :func:`pseudo_labels`, averaged over the clips that have a θ (0 if none do)."""
    labels, valid = pseudo_labels(xa, weak)
    per_clip = F.binary_cross_entropy(attention.float(), labels, reduction="none").mean(dim=(1, 2))
    weights = valid.float()
    return (per_clip * weights).sum() / weights.sum().clamp(min=1.0)


# -- a variant's loss: its terms, weighted (audiobench.models.variants says which) ---------------------------------
def _pred(out: Output, weak: torch.Tensor, segments: torch.Tensor | None) -> torch.Tensor:
    return clip_bce(out.clip, weak)


def _segment(out: Output, weak: torch.Tensor, segments: torch.Tensor | None) -> torch.Tensor:
    assert segments is not None  # loss_terms checks first (the term needs strong labels)
    return segment_bce(out.xa, segments)


def _att_strong(out: Output, weak: torch.Tensor, segments: torch.Tensor | None) -> torch.Tensor:
    assert segments is not None and out.attention is not None  # register_variant and loss_terms check first
    return attention_bce(out.attention, segments)


def _att_self(out: Output, weak: torch.Tensor, segments: torch.Tensor | None) -> torch.Tensor:
    assert out.attention is not None  # register_variant checks the pooling
    return self_attention_bce(out.attention, out.xa, weak)


TermFunction = Callable[[Output, torch.Tensor, torch.Tensor | None], torch.Tensor]
# Each loss term of audiobench.models.variants.TERMS, as ``f(output, weak labels, segment labels or None)``.
TERM_FUNCTIONS: dict[str, TermFunction] = {
    "pred": _pred, "segment": _segment, "att_strong": _att_strong, "att_self": _att_self,
}


def loss_terms(spec: VariantSpec, out: Output, weak: torch.Tensor,
               segments: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Each of the variant's unweighted loss terms for one batch, by term name, in the spec's order.

    ``segments`` are the segment labels Y ``[B, C, T']`` (only needed by strong variants).
    """
    if spec.needs_strong and segments is None:
        raise AudiobenchError(f"variant {spec.name} needs segment labels for every batch")
    return {term: TERM_FUNCTIONS[term](out, weak, segments) for term, _ in spec.terms}


def total_loss(spec: VariantSpec, values: dict[str, torch.Tensor], *, alpha: float,
               beta: float) -> torch.Tensor:
    """The weighted sum of the terms from :func:`loss_terms` (a weight names ``alpha``/``beta`` or is a number)."""
    options = {"alpha": alpha, "beta": beta}
    weighted = [(options[weight] if isinstance(weight, str) else float(weight)) * values[term]
                for term, weight in spec.terms]
    return torch.stack(weighted).sum()
