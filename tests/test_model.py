from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.models.net import (Net, attention_pool, attention_weights, build_net, count_parameters, layer_table,
                              parameter_totals)


def test_parameter_counts_match_design_for_527_classes():
    assert parameter_totals(527) == {"without attention": 6_613_775, "with attention": 7_153_950}
    with torch.device("meta"):
        assert count_parameters(Net(527, attention=False)) == 6_613_775


def test_layer_table_gives_design_shapes_for_a_10_second_input():
    rows = {r.name: r for r in layer_table(527)}
    assert rows["L1"].output == (64, 499, 32)
    assert rows["L2"].output == (128, 249, 16)
    assert rows["L4"].output == (256, 124, 8)
    assert rows["L6"].output == (512, 62, 4)
    assert rows["L7"].output == (1024, 62)
    assert rows["L8-a"].output == rows["L8-b"].output == (527, 62)
    assert rows["L1"].params == 64 * 9 + 64
    assert rows["L7"].params == 512 * 1024 * 3 + 1024


@pytest.mark.parametrize("frames,segments", [(998, 62), (160, 10), (31, 1), (16, 1)])
def test_network_is_convolutional_over_time(frames, segments):
    net = build_net(5, width=0.0625, attention=True)
    out = net(torch.randn(2, frames, 64))
    assert out.xa.shape == out.attention.shape == (2, 5, segments)
    assert out.clip.shape == (2, 5)
    assert torch.allclose(out.attention.sum(-1), torch.ones(2, 5))
    assert torch.allclose(out.clip, (out.attention * out.xa).sum(-1))
    assert ((out.clip > 0) & (out.clip < 1)).all()


def test_attention_pooling_of_saturated_segments_never_exceeds_one():
    """Xa = 1.0 everywhere: A sums to 1 only up to rounding, and BCE refuses 1 + 2^-23."""
    xa = torch.ones(256, 3, 62)
    attention = attention_weights(torch.rand(256, 3, 62, generator=torch.Generator().manual_seed(0)))
    assert ((attention * xa).sum(-1) > 1).any(), "no rounding excess: the case this test is about is absent"
    clip = attention_pool(xa, attention)
    assert (clip <= 1).all() and torch.allclose(clip, torch.ones_like(clip))
    torch.nn.functional.binary_cross_entropy(clip, torch.zeros_like(clip))  # accepted


def test_without_attention_the_clip_prediction_is_the_mean_of_xa():
    net = build_net(3, width=0.0625, attention=False)
    out = net(torch.randn(1, 64, 64))
    assert out.xb is None and out.attention is None
    assert torch.allclose(out.clip, out.xa.mean(-1))


def test_width_scales_every_channel_count():
    net = Net(10, width=0.25)
    assert [c.out_channels for c in net.convs] == [16, 32, 64, 64, 128, 128]
    assert net.l7.out_channels == 256
    assert net.l8a.in_channels == net.l8b.in_channels == 256


def test_input_shorter_than_one_segment_or_wrong_bands_is_refused():
    net = build_net(2, width=0.0625)
    with pytest.raises(AudiobenchError, match="shorter than one segment"):
        net(torch.zeros(1, 15, 64))
    with pytest.raises(AudiobenchError, match=r"expected input \[batch, frames, 64\], got \[1, 100, 40\]"):
        net(torch.zeros(1, 100, 40))


@pytest.mark.parametrize("bands, pooled", [(16, 1), (40, 2), (64, 4), (128, 8)])
def test_the_network_takes_any_number_of_bands_with_the_same_parameters(bands, pooled):
    # Four 2x2 pools leave bands // 16 frequency rows before L7 averages them: any F >= 16 runs, and no
    # parameter depends on F, so a run on 128-band features has the 64-band network's parameter count.
    net = build_net(3, width=0.0625, bands=bands)
    out = net(torch.randn(2, 96, bands))
    assert out.xa.shape == (2, 3, 6) and torch.isfinite(out.clip).all()
    assert count_parameters(net) == count_parameters(build_net(3, width=0.0625))
    assert {r.name: r.output for r in layer_table(3, width=0.0625, frames=96, bands=bands)}["L6"][-1] == pooled
    with pytest.raises(AudiobenchError, match=f"expected input \\[batch, frames, {bands}\\]"):
        net(torch.randn(2, 96, 64 if bands != 64 else 128))


def test_fewer_than_16_bands_is_refused():
    with pytest.raises(AudiobenchError, match="at least 16 dims"):
        Net(3, bands=15)


def test_same_seed_gives_same_shared_weights_with_or_without_attention():
    torch.manual_seed(123)  # the global RNG must not matter
    with_att = build_net(4, width=0.0625, attention=True, seed=7).state_dict()
    torch.manual_seed(999)
    without = build_net(4, width=0.0625, attention=False, seed=7).state_dict()
    assert set(with_att) - set(without) == {"l8b.weight", "l8b.bias"}
    for key, value in without.items():
        assert torch.equal(value, with_att[key]), key
    other_seed = build_net(4, width=0.0625, attention=False, seed=8).state_dict()
    assert not torch.equal(other_seed["convs.0.weight"], without["convs.0.weight"])


def test_building_a_net_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_net(2, width=0.0625, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_model_info_prints_the_table_and_both_totals():
    result = CliRunner().invoke(cli, ["model-info", "--classes", "527"])
    assert result.exit_code == 0, result.output
    assert "6,613,775" in result.output and "7,153,950" in result.output
    assert "512 × 62 × 4" in result.output
    assert [line.split()[0] for line in result.output.splitlines()[1:10]] == [
        "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8-a", "L8-b"]


def test_model_info_json_at_demo_width():
    result = CliRunner().invoke(cli, ["model-info", "--classes", "17", "--width", "0.25", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["totals"]["with attention"] == count_parameters(Net(17, width=0.25))
    assert info["layers"][0]["output"] == [16, 499, 32]
