"""VGGish and two-step transfer: real weight files written in tmp_path, loaded with weights_only=True."""
from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from audiobench.models.checkpoint import load_model, save_checkpoint
from audiobench.core.errors import AudiobenchError
from audiobench.models.net import Net, build_net
from audiobench.models.transfer import apply_init, freeze, load_run, load_vggish, vggish_shapes

# torchvggish's VGG: features = [conv, relu, pool, conv, relu, pool, conv, relu, conv, relu, pool, conv, relu,
# conv, relu, pool]; embeddings = Linear(512*4*6, 4096), ReLU, Linear(4096, 4096), ReLU, Linear(4096, 128).
TORCHVGGISH = OrderedDict([
    ("features.0.weight", (64, 1, 3, 3)), ("features.0.bias", (64,)),
    ("features.3.weight", (128, 64, 3, 3)), ("features.3.bias", (128,)),
    ("features.6.weight", (256, 128, 3, 3)), ("features.6.bias", (256,)),
    ("features.8.weight", (256, 256, 3, 3)), ("features.8.bias", (256,)),
    ("features.11.weight", (512, 256, 3, 3)), ("features.11.bias", (512,)),
    ("features.13.weight", (512, 512, 3, 3)), ("features.13.bias", (512,)),
    ("embeddings.0.weight", (4096, 12288)), ("embeddings.0.bias", (4096,)),
    ("embeddings.2.weight", (4096, 4096)), ("embeddings.2.bias", (4096,)),
    ("embeddings.4.weight", (128, 4096)), ("embeddings.4.bias", (128,)),
])


def _vggish_state(with_embeddings: bool = False) -> OrderedDict:
    g = torch.Generator().manual_seed(0)
    state = OrderedDict((k, torch.randn(shape, generator=g)) for k, shape in TORCHVGGISH.items()
                        if k.startswith("features."))
    if with_embeddings:  # never read: zero views of one element (torch.save stores the 1-element storage)
        state.update((k, torch.zeros(()).expand(shape)) for k, shape in TORCHVGGISH.items() if k not in state)
    return state


def _paper_net() -> Net:
    with torch.random.fork_rng(devices=[]):
        return Net(17, width=1.0, attention=True)


def test_vggish_layout_is_the_torchvggish_one():
    assert vggish_shapes() == {k: v for k, v in TORCHVGGISH.items() if k.startswith("features.")}


def test_vggish_weights_land_in_l1_to_l6(tmp_path):
    state = _vggish_state(with_embeddings=True)  # the release file also holds the embedding MLP: ignored
    torch.save(state, tmp_path / "vggish-10086976.pth")
    net = _paper_net()
    apply_init(net, f"vggish:{tmp_path / 'vggish-10086976.pth'}")
    for layer, index in zip(net.convs, (0, 3, 6, 8, 11, 13)):
        assert torch.equal(layer.weight, state[f"features.{index}.weight"])
        assert torch.equal(layer.bias, state[f"features.{index}.bias"])


def test_vggish_with_a_wrong_shape_is_refused(tmp_path):
    state = _vggish_state()
    state["features.8.weight"] = torch.zeros(256, 128, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(AudiobenchError, match=r"features.8.weight has shape \[256, 128, 3, 3\], VGGish has "
                                              r"\[256, 256, 3, 3\]"):
        load_vggish(_paper_net(), tmp_path / "bad.pth")


def test_vggish_with_a_missing_key_is_refused(tmp_path):
    state = _vggish_state()
    del state["features.13.bias"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(AudiobenchError, match="missing features.13.bias"):
        load_vggish(_paper_net(), tmp_path / "partial.pth")


def test_vggish_needs_width_1(tmp_path):
    torch.save(_vggish_state(), tmp_path / "v.pth")
    with pytest.raises(AudiobenchError, match="need --width 1"):
        load_vggish(build_net(17, width=0.25), tmp_path / "v.pth")


class _RunsCode:
    """Unpickling this would create a marker file: exactly what weights_only=True must refuse."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_that_runs_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    state = _vggish_state()
    state["features.0.weight"] = _RunsCode(marker)
    with open(evil, "wb") as f:
        pickle.dump(state, f, protocol=2)  # torch.save's protocol
    for init in (f"vggish:{evil}", f"run:{evil}"):
        with pytest.raises(AudiobenchError, match=r"refused: unpickling it would call \S*mkdir") as info:
            apply_init(_paper_net(), init)
        assert str(evil) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_garbage_and_missing_files_get_one_line_errors(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a weight file at all")
    with pytest.raises(AudiobenchError, match="not a PyTorch weight file holding only tensors"):
        load_vggish(_paper_net(), tmp_path / "junk.pth")
    missing = r"no VGGish weight file .*absent.pth \(looked for .*absent.pth\); `audiobench weights vggish` downloads"
    with pytest.raises(AudiobenchError, match=missing):
        load_vggish(_paper_net(), tmp_path / "absent.pth")
    with pytest.raises(AudiobenchError, match="expected vggish:PATH or run:PATH"):
        apply_init(_paper_net(), "imagenet:x.pth")


def test_two_step_transfer_loads_l1_to_l7_and_keeps_fresh_heads(tmp_path):
    source = build_net(527, width=0.0625, attention=False, seed=1)  # model (a): no attention, 527 classes
    save_checkpoint(tmp_path, source, {"variant": "noatt-weak"})
    target = build_net(17, width=0.0625, attention=True, seed=2)
    heads_before = target.l8a.weight.clone()
    load_run(target, tmp_path)  # the run folder, or its model.pt
    for name, value in source.state_dict().items():
        if name.startswith(("convs.", "l7.")):
            assert torch.equal(target.state_dict()[name], value), name
    assert torch.equal(target.l8a.weight, heads_before)
    with pytest.raises(AudiobenchError, match="train with the same --width"):
        load_run(build_net(17, width=0.125), tmp_path / "model.pt")


def test_checkpoint_round_trip_rebuilds_the_network(tmp_path):
    net = build_net(5, width=0.0625, attention=True, seed=3)
    save_checkpoint(tmp_path, net, {"variant": "att-self"})
    again, meta = load_model(tmp_path)
    assert meta["variant"] == "att-self" and meta["attention"] is True
    x = torch.randn(1, 64, 64)
    assert torch.equal(again(x).clip, net.eval()(x).clip)


def test_freeze_fixes_the_first_k_conv_layers():
    net = build_net(3, width=0.0625)
    trainable = freeze(net, 3)
    assert [c.weight.requires_grad for c in net.convs] == [False, False, False, True, True, True]
    assert net.l7.weight.requires_grad and net.l8b.bias.requires_grad
    assert len(trainable) == 2 * (3 + 1 + 2)
    with pytest.raises(AudiobenchError, match="between 0 and 7"):
        freeze(net, 8)
