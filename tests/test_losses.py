"""Each loss term on small tensors against values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiobench.core.errors import AudiobenchError
from audiobench.models.losses import (attention_bce, clip_bce, loss_terms, pseudo_labels, segment_bce, segment_labels,
                               self_attention_bce, total_loss)
from audiobench.training.metrics import chance_map, mean_average_precision
from audiobench.models.net import Output, attention_weights
from audiobench.models.variants import SPECS, VARIANTS, require_strong, variant_spec


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_clip_bce_weights_the_logs_by_the_target():
    # y = [1, 0]: -(log 0.8 + log(1 - 0.25)) / 2
    expected = -(math.log(0.8) + math.log(0.75)) / 2
    assert clip_bce(t([[0.8, 0.25]]), t([[1, 0]])).item() == pytest.approx(expected, rel=1e-6)


def test_segment_bce_means_over_classes_and_segments():
    xa = t([[[0.9, 0.5], [0.2, 0.6]]])  # one clip, 2 classes, 2 segments
    y = t([[[1, 0], [0, 1]]])
    expected = -(math.log(0.9) + math.log(0.5) + math.log(0.8) + math.log(0.6)) / 4
    assert segment_bce(xa, y).item() == pytest.approx(expected, rel=1e-6)


def test_attention_is_clamped_then_normalised_over_time():
    a = attention_weights(t([[[0.5, 0.5, 0.0, 1.0]]]))
    total = 2.0 + 1e-7
    assert a[0, 0].tolist() == pytest.approx([0.5 / total, 0.5 / total, 1e-7 / total, 1.0 / total])


def test_attention_bce_against_segment_labels():
    a = t([[[0.25, 0.75]]])
    y = t([[[0, 1]]])
    expected = -(math.log(0.75) + math.log(0.75)) / 2
    assert attention_bce(a, y).item() == pytest.approx(expected, rel=1e-6)


def test_segment_labels_from_frame_labels_for_any_length():
    strong = torch.zeros(1, 40, 3)  # 40 frames: 2 segments of 16 frames, frames 32..39 belong to none
    strong[0, 15:17, 0] = 1  # straddles the boundary: both segments
    strong[0, 20, 1] = 1  # one frame in segment 1
    strong[0, 35, 2] = 1  # in the dropped tail: no segment
    y = segment_labels(strong)
    assert y.shape == (1, 3, 2)
    assert y[0].tolist() == [[1, 1], [0, 1], [0, 0]]


def test_segment_labels_for_a_10_second_clip_give_62_segments():
    strong = torch.zeros(2, 998, 4)
    strong[1, 991, 3] = 1  # last frame of segment 61
    y = segment_labels(strong)
    assert y.shape == (2, 4, 62)
    assert y[1, 3].nonzero().flatten().tolist() == [61]
    assert y[0].sum() == 0  # a zero-length event has no frame target, hence no segment label


def test_pseudo_labels_threshold_is_mean_of_absent_classes():
    xa = t([[[0.6, 0.2], [0.3, 0.1], [0.4, 0.25]]])  # 3 classes, 2 segments
    weak = t([[1, 0, 1]])
    # absent: class 1 only -> theta = (0.3 + 0.1) / 2 = 0.2; present classes 0 and 2: Xa >= 0.2
    labels, valid = pseudo_labels(xa, weak)
    assert valid.tolist() == [True]
    assert labels[0].tolist() == [[1, 1], [0, 0], [1, 1]]
    weak_only_0 = t([[1, 0, 0]])  # absent 1 and 2: theta = (0.3 + 0.1 + 0.4 + 0.25) / 4 = 0.2625
    labels, _ = pseudo_labels(xa, weak_only_0)
    assert labels[0].tolist() == [[1, 0], [0, 0], [0, 0]]


def test_pseudo_labels_when_a_clip_has_no_class_or_every_class():
    xa = t([[[0.6, 0.2], [0.3, 0.1]], [[0.6, 0.2], [0.3, 0.1]]])
    weak = t([[0, 0], [1, 1]])
    labels, valid = pseudo_labels(xa, weak)
    assert valid.tolist() == [True, False]  # every class present: no absent class, no theta
    assert labels.sum() == 0  # no class: nothing is pseudo-labelled; every class: left out


def test_self_attention_bce_averages_over_clips_with_a_threshold_only():
    xa = t([[[0.6, 0.2], [0.3, 0.1]], [[0.9, 0.9], [0.9, 0.9]]])
    a = t([[[0.8, 0.2], [0.5, 0.5]], [[0.1, 0.9], [0.5, 0.5]]])
    weak = t([[1, 0], [1, 1]])
    # clip 0: theta = 0.2, P = [[1, 1], [0, 0]]; clip 1 (every class) is left out
    expected = -(math.log(0.8) + math.log(0.2) + 2 * math.log(0.5)) / 4
    assert self_attention_bce(a, xa, weak).item() == pytest.approx(expected, rel=1e-6)
    assert self_attention_bce(a[1:], xa[1:], weak[1:]).item() == 0.0  # no clip has a theta


def test_self_attention_loss_sends_no_gradient_through_the_pseudo_labels():
    xa = t([[[0.6, 0.2], [0.3, 0.1]]]).requires_grad_()
    xb = t([[[0.7, 0.4], [0.5, 0.5]]]).requires_grad_()
    self_attention_bce(attention_weights(xb), xa, t([[1, 0]])).backward()
    assert xa.grad is None
    assert xb.grad is not None and xb.grad.abs().sum() > 0


def test_variants_as_data():
    assert VARIANTS == ("noatt-weak", "noatt-strong", "noatt-weak-strong", "att-unsup", "att-strong",
                        "att-self", "att-strong-self")
    assert [v for v in VARIANTS if SPECS[v].needs_strong] == [
        "noatt-strong", "noatt-weak-strong", "att-strong", "att-strong-self"]
    assert [v for v in VARIANTS if SPECS[v].attention] == ["att-unsup", "att-strong", "att-self",
                                                           "att-strong-self"]
    with pytest.raises(AudiobenchError, match="no variant 'att-foo'"):
        variant_spec("att-foo")


def test_strong_variant_refuses_a_weak_split_naming_it():
    with pytest.raises(AudiobenchError, match="split 'train' has weak labels only") as info:
        require_strong(variant_spec("att-strong"), split="train", has_strong=False)
    assert "\n" not in str(info.value)
    require_strong(variant_spec("att-self"), split="train", has_strong=False)  # no strong labels needed


def test_total_loss_weights_each_term():
    xa = t([[[0.6, 0.2], [0.3, 0.1]]])
    xb = t([[[0.7, 0.4], [0.5, 0.5]]])
    att = attention_weights(xb)
    out = Output(xa, xb, att, (att * xa).sum(-1))
    weak, y = t([[1, 0]]), t([[[1, 0], [0, 0]]])
    spec = variant_spec("att-strong-self")
    values = loss_terms(spec, out, weak, y)
    assert set(values) == {"pred", "att_strong", "att_self"}
    expected = values["pred"] + 0.5 * values["att_strong"] + 2.0 * values["att_self"]
    assert total_loss(spec, values, alpha=0.5, beta=2.0).item() == pytest.approx(expected.item())
    only_segments = loss_terms(variant_spec("noatt-strong"), out, weak, y)
    assert set(only_segments) == {"segment"}


def test_map_skips_classes_without_positives_instead_of_counting_zero():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.5], [0.4, 0.3, 0.5]])
    targets = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0]])
    result = mean_average_precision(scores, targets)
    # class 0: both positives ranked first -> 1.0; class 1: positive ranked 2nd of 3 -> AP = 1/2
    assert result.per_class == (1.0, 0.5, None)
    assert result.skipped == (2,) and result.evaluated == 2
    assert result.map == pytest.approx(0.75)
    assert chance_map(targets) == pytest.approx((2 / 3 + 1 / 3) / 2)
    with pytest.raises(AudiobenchError, match="mAP is undefined"):
        mean_average_precision(scores, np.zeros_like(targets))
