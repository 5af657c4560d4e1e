"""The network of Kim & Ghaffarzadegan (EUSIPCO 2019), Sec. II, Fig. 1: VGGish's six convolutions, a 1-D
convolution over time, and two 1×1 heads, one for segment probabilities (Xa) and one for attention (Xb).

All layers are convolutions, so the network takes any input length ``T >= 16``: four 2×2 max-pools give
``T // 16`` segments (998 frames -> 62), segment ``t`` seeing frames ``[16t, 16t + 16)`` (frames past
``16 * (T // 16)`` are dropped by the pooling, as in VGGish). L7 averages over frequency, so the network
also takes any number of bands ``F >= 16`` (``bands``: 64 for VGGish's log-mel, 128 for the Kaldi fbank),
with the same parameters.

>>> net = Net(17, width=0.25, attention=True)
>>> out = net(torch.zeros(2, 998, 64))          # [B, T, 64] log-mel, as LogmelDataset returns it
>>> out.xa.shape, out.attention.shape, out.clip.shape
(torch.Size([2, 17, 62]), torch.Size([2, 17, 62]), torch.Size([2, 17]))
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from audiobench.core.errors import AudiobenchError
from audiobench.models.shape import SEGMENT_FRAMES

# VGGish's six 3x3 convolutions (torchvggish `features.{0,3,6,8,11,13}`), 2x2 max-pool after L1, L2, L4, L6.
CONV_CHANNELS: tuple[int, ...] = (64, 128, 256, 256, 512, 512)
POOL_AFTER: frozenset[int] = frozenset({0, 1, 3, 5})
EMBEDDING = 1024  # L7 channels: gives 6,613,775 / 7,153,950 parameters for 527 classes (docs/model.md)
MEL_BANDS = 64  # the default input bands (VGGish's log-mel); a run records its own in model.json
MIN_BANDS = 16  # four 2x2 max-pools halve the bands four times: at least one is left
ATTENTION_FLOOR = 1e-7  # Xb is clamped to [1e-7, 1] before normalising (docs/model.md, "Pooling")


def scaled(channels: int, width: float) -> int:
    """A channel count under the width multiplier (at least 1)."""
    return max(1, int(round(channels * width)))


class Output(NamedTuple):
    """What the network returns for a batch; time is the last axis.

    ``xa``: segment probabilities ``[B, C, T']``; ``xb``: attention head output (``None`` without attention);
    ``attention``: A, normalised over time (``None`` without attention); ``clip``: ŷ ``[B, C]``.
    """

    xa: torch.Tensor
    xb: torch.Tensor | None
    attention: torch.Tensor | None
    clip: torch.Tensor


def attention_weights(xb: torch.Tensor) -> torch.Tensor:
    """A = Xb / Σ_t Xb per class, after clamping Xb to [1e-7, 1] (so the sum is never 0)."""
    xb = xb.clamp(ATTENTION_FLOOR, 1.0)
    return xb / xb.sum(dim=-1, keepdim=True)


def attention_pool(xa: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """ŷ = Σ_t A_t ⊙ Xa_t, capped at 1.

    A sums to 1 only up to float rounding, so where Xa saturates at 1.0 the sum can come out as 1 + 2⁻²³,
    which ``binary_cross_entropy`` refuses; the cap removes exactly that rounding excess.
    """
    return (attention * xa).sum(dim=-1).clamp(max=1.0)


def mean_pool(xa: torch.Tensor) -> torch.Tensor:
    """ŷ = mean_t Xa_t (the networks without attention)."""
    return xa.mean(dim=-1)


@dataclass(frozen=True)
class NetSpec:
    """What a checkpoint needs to rebuild the network."""

    classes: int
    width: float = 1.0
    attention: bool = True
    bands: int = MEL_BANDS


class Net(nn.Module):
    """L1–L8 (the table in docs/model.md). Input ``[B, T, bands]`` features; output :class:`Output`.

    Parameter names: ``convs.0`` … ``convs.5`` (L1–L6), ``l7``, ``l8a`` (Xa head), ``l8b`` (attention head,
    absent without attention). :func:`init_parameters` seeds each layer separately, so two networks that
    differ only in the attention head start from the same L1–L8-a weights for the same seed.
    """

    def __init__(self, classes: int, *, width: float = 1.0, attention: bool = True, bands: int = MEL_BANDS) -> None:
        super().__init__()
        if classes < 1:
            raise AudiobenchError(f"the network needs at least one class, got {classes}")
        if not width > 0:
            raise AudiobenchError(f"--width must be positive, got {width}")
        if bands < MIN_BANDS:
            raise AudiobenchError(f"the network needs features of at least {MIN_BANDS} dims (four 2x2 max-pools), "
                                  f"got {bands}")
        self.spec = NetSpec(classes, float(width), attention, int(bands))
        channels = [scaled(c, width) for c in CONV_CHANNELS]
        inputs = [1, *channels[:-1]]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in zip(inputs, channels))
        self.pool = nn.MaxPool2d(2)
        self.l7 = nn.Conv1d(channels[-1], scaled(EMBEDDING, width), 3, padding=1)
        self.l8a = nn.Conv1d(scaled(EMBEDDING, width), classes, 1)
        self.l8b = nn.Conv1d(scaled(EMBEDDING, width), classes, 1) if attention else None

    @property
    def attention(self) -> bool:
        return self.l8b is not None

    def layers(self) -> dict[str, nn.Module]:
        """The named layers, L1 … L8-b, in order."""
        named: dict[str, nn.Module] = {f"L{i + 1}": conv for i, conv in enumerate(self.convs)}
        named["L7"] = self.l7
        named["L8-a"] = self.l8a
        if self.l8b is not None:
            named["L8-b"] = self.l8b
        return named

    def embed(self, logmel: torch.Tensor) -> torch.Tensor:
        """L1–L7: ``[B, T, bands]`` -> ``[B, 1024·width, T // 16]``."""
        if logmel.dim() != 3 or logmel.shape[-1] != self.spec.bands:
            raise AudiobenchError(f"expected input [batch, frames, {self.spec.bands}], got {list(logmel.shape)}")
        if logmel.shape[1] < SEGMENT_FRAMES:
            raise AudiobenchError(f"input of {logmel.shape[1]} frames is shorter than one segment "
                                  f"({SEGMENT_FRAMES} frames)")
        x = logmel.unsqueeze(1)  # [B, 1, T, F]: time is the image height, as in VGGish
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i in POOL_AFTER:
                # pool(relu(x)) == relu(pool(x)) (ReLU is monotonic), values and gradients alike; pooling
                # first runs the ReLU and its backward on a quarter of the activations (a third of a narrow
                # net's step is L1's full-resolution memory traffic).
                x = self.pool(x)
            x = torch.relu(x)
        x = x.mean(dim=3)  # mean over frequency -> [B, C6, T']
        return torch.relu(self.l7(x))

    def forward(self, logmel: torch.Tensor) -> Output:
        h = self.embed(logmel)
        xa = torch.sigmoid(self.l8a(h))
        return pooled(xa, None if self.l8b is None else torch.sigmoid(self.l8b(h)))


def pooled(xa: torch.Tensor, xb: torch.Tensor | None) -> Output:
    """The :class:`Output` of segment outputs Xa and Xb ``[B, C, T']``: attention pooling, or the mean without Xb.

    The clip prediction needs every segment of the clip (A sums Xb over all of them), so ``predict`` runs
    the net over a long file block by block and pools here once, over the segments of all the blocks.
    """
    if xb is None:
        return Output(xa, None, None, mean_pool(xa))
    attention = attention_weights(xb)
    return Output(xa, xb, attention, attention_pool(xa, attention))


def segment_context() -> int:
    """Input frames on each side of a segment's own 16 that reach its output: 43 (about 0.43 s at a 10 ms hop).

    Walked back from L7 to L1: L7's k=3 reaches one segment either side; below a 2x2 pool a reach of r
    steps is 2r on the left and 2r + 1 on the right (the pool's second row); each 3x3 convolution adds one
    step either side. An output further than this from both ends of the input sees real frames only, so
    the net run on overlapping blocks of a long input gives its segments as the whole input would.
    """
    left = right = 1  # L7, in segments
    for i in reversed(range(len(CONV_CHANNELS))):
        if i in POOL_AFTER:
            left, right = 2 * left, 2 * right + 1
        left, right = left + 1, right + 1
    return max(left, right - (SEGMENT_FRAMES - 1))


def use_fast_layout(net: Net, device: torch.device) -> Net:
    """Store the 3×3 convolutions channels-last where that is the faster layout, in place.

    Measured on a 2-core CPU (one training step, batch 8, one thread): channels-last (oneDNN's NHWC
    kernels) takes 0.6-0.75x the time of the default layout at width 1/16, 0.8x at 1/8, 0.95x at 1/4, the
    same at 1/2 and 1.4x at width 1, so it is used on the CPU for narrow nets only; elsewhere (CUDA
    included, not measured) PyTorch's default stays.
    Only speed changes: in-place initialisation, ``load_state_dict`` and ``.to(device)`` keep the layout.
    """
    if device.type == "cpu" and net.spec.width <= 0.25:
        net.convs.to(memory_format=torch.channels_last)
    return net


def layer_seed(seed: int, layer: str) -> int:
    """The seed of one layer's initial weights: a stable hash of (run seed, layer name)."""
    return zlib.crc32(f"{seed}:{layer}".encode())


def init_layer(layer: nn.Module, name: str) -> None:
    """He (Kaiming) normal initialisation, fan-in, zero bias, for the ReLU layers L1–L7; PyTorch's default
    for the heads (:func:`init_prior_bias` then sets L8-a's bias from the data).

    Without batch norm, PyTorch's default uniform init shrinks the signal about sixfold per layer and a
    randomly initialised net sits at the class prior for many epochs. Fan-in (He's forward-variance rule)
    trains faster here than torchvision's fan-out: see docs/model.md "Initialisation" for the figures.
    """
    if name.startswith("L8"):
        layer.reset_parameters()
        return
    nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
    nn.init.zeros_(layer.bias)


def init_prior_bias(net: Net, prior: torch.Tensor) -> Net:
    """Set L8-a's bias to the log-odds of each class's prior (its share of positive training clips), in place.

    The untrained net then predicts the prior instead of 0.5 for every class, so the first steps go to
    learning features rather than to pulling every output down to the class frequency (the usual "bias
    init" of detection heads). The prior is clamped to [1e-3, 1 - 1e-3] so absent or ubiquitous classes
    get a finite bias. Every variant of a trial gets the same bias, so pairing is kept.
    """
    p = prior.to(torch.float64).clamp(1e-3, 1 - 1e-3)
    with torch.no_grad():
        net.l8a.bias.copy_(torch.log(p / (1 - p)).to(net.l8a.bias))
    return net


def init_parameters(net: Net, seed: int) -> Net:
    """Initialise every layer (:func:`init_layer`), each under its own seed.

    Seeding per layer (not once for the whole network) is what pairs the variants of a comparison: for the
    same ``seed``, L1–L8-a start identical whether or not the network has an attention head, and at any
    width the weights do not depend on construction order. The global RNG is left untouched.
    """
    for name, layer in net.layers().items():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(layer_seed(seed, name))
            init_layer(layer, name)
    return net


def build_net(classes: int, *, width: float = 1.0, attention: bool = True, seed: int = 0,
              bands: int = MEL_BANDS) -> Net:
    """A freshly initialised network (see :func:`init_parameters` for how ``seed`` is used).

    The global RNG is untouched (the default initialisation in the layers' constructors is overwritten).
    """
    with torch.random.fork_rng(devices=[]):
        net = Net(classes, width=width, attention=attention, bands=bands)
    return init_parameters(net, seed)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


_WHAT = {
    "L1": "conv 3×3, {c}, ReLU; max-pool 2×2",
    "L2": "conv 3×3, {c}, ReLU; max-pool 2×2",
    "L3": "conv 3×3, {c}, ReLU",
    "L4": "conv 3×3, {c}, ReLU; max-pool 2×2",
    "L5": "conv 3×3, {c}, ReLU",
    "L6": "conv 3×3, {c}, ReLU; max-pool 2×2",
    "L7": "mean over frequency; conv 1-D k=3, {c}, ReLU",
    "L8-a": "conv 1-D k=1, {c}, sigmoid: segment probabilities Xa",
    "L8-b": "conv 1-D k=1, {c}, sigmoid: attention Xb",
}


@dataclass(frozen=True)
class LayerRow:
    """One row of ``audiobench model-info``: output shape is channels × time (× frequency) for one clip."""

    name: str
    what: str
    output: tuple[int, ...]
    params: int


def layer_table(classes: int, *, width: float = 1.0, frames: int = 998, bands: int = MEL_BANDS) -> list[LayerRow]:
    """The layers of the attention network with their output shapes for a ``frames`` × ``bands`` input.

    Built on PyTorch's meta device: shapes and counts without allocating or computing anything.
    """
    with torch.device("meta"):
        net = Net(classes, width=width, attention=True, bands=bands)
        shapes: dict[str, tuple[int, ...]] = {}
        x = torch.zeros(1, frames, bands).unsqueeze(1)
        for i, conv in enumerate(net.convs):
            x = torch.relu(conv(x))
            if i in POOL_AFTER:
                x = net.pool(x)
            shapes[f"L{i + 1}"] = tuple(x.shape[1:])
        h = torch.relu(net.l7(x.mean(dim=3)))
        shapes["L7"] = tuple(h.shape[1:])
        shapes["L8-a"] = shapes["L8-b"] = tuple(net.l8a(h).shape[1:])
    return [LayerRow(name, _WHAT[name].format(c=layer.out_channels), shapes[name], count_parameters(layer))
            for name, layer in net.layers().items()]


def parameter_totals(classes: int, *, width: float = 1.0) -> dict[str, int]:
    """Parameter counts of both configurations: ``{"without attention": n, "with attention": m}``."""
    with torch.device("meta"):
        return {"without attention": count_parameters(Net(classes, width=width, attention=False)),
                "with attention": count_parameters(Net(classes, width=width, attention=True))}
