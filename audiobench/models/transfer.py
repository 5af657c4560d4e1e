"""Transfer learning (paper, Sec. IV): start from VGGish or from an earlier run, optionally freezing layers.

- one-step: ``vggish:PATH``, a torchvggish-layout state dict (the release file ``vggish-10086976.pth``), whose
  ``features.{0,3,6,8,11,13}`` convolutions become L1–L6;
- two-step: ``run:PATH``, L1–L7 of an earlier run (the paper's model (a): no attention, 527 classes, balanced
  AudioSet); the heads L8 start fresh, so the class count may differ;
- ``freeze``: the first K of L1–L7 keep their weights during training.
"""
from __future__ import annotations

from pathlib import Path

import torch

from audiobench.models.checkpoint import checkpoint_path, load_state_dict
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import weights_dir
from audiobench.models.net import CONV_CHANNELS, Net
from audiobench.models.shape import CONV_LAYERS

# torchvggish `features` indices of its six convolutions (ReLUs and pools sit between them).
VGGISH_CONVS: tuple[int, ...] = (0, 3, 6, 8, 11, 13)


def vggish_shapes() -> dict[str, tuple[int, ...]]:
    """The tensors :func:`load_vggish` reads, with their shapes: ``features.0.weight`` is 64×1×3×3, etc."""
    shapes: dict[str, tuple[int, ...]] = {}
    inputs = (1, *CONV_CHANNELS[:-1])
    for index, cin, cout in zip(VGGISH_CONVS, inputs, CONV_CHANNELS):
        shapes[f"features.{index}.weight"] = (cout, cin, 3, 3)
        shapes[f"features.{index}.bias"] = (cout,)
    return shapes


def vggish_file(path: str | Path, root: Path | None = None) -> Path:
    """The VGGish weight file ``path`` names: the file itself when it exists; a bare file name (no folder)
    also under ``<root>/weights/``, where ``audiobench weights vggish`` puts it. The error names every place
    looked in."""
    given = Path(path)
    tried = [given]
    if root is not None and len(given.parts) == 1:
        tried.append(weights_dir(root) / given)
    for candidate in tried:
        if candidate.is_file():
            return candidate
    where = weights_dir(root) if root is not None else Path("<root>/weights")
    raise AudiobenchError(f"no VGGish weight file {path} (looked for {' and '.join(str(p) for p in tried)}); "
                          f"`audiobench weights vggish` downloads it to {where}/")


def load_vggish(net: Net, path: str | Path, *, root: Path | None = None) -> Net:
    """Copy VGGish's six convolutions into L1–L6 (width 1 only), checking every key and shape first.

    ``path``: the file, or with ``root`` a bare file name under ``<root>/weights/`` (:func:`vggish_file`).
    """
    if net.spec.width != 1.0:
        raise AudiobenchError(f"VGGish weights need --width 1 (the network has width {net.spec.width:g})")
    path = vggish_file(path, root)
    state = load_state_dict(path)
    missing = [key for key in vggish_shapes() if key not in state]
    if missing:
        raise AudiobenchError(f"{path}: not a torchvggish state dict: missing {', '.join(missing)}")
    for key, shape in vggish_shapes().items():
        if tuple(state[key].shape) != shape:
            raise AudiobenchError(f"{path}: {key} has shape {list(state[key].shape)}, VGGish has {list(shape)}")
    with torch.no_grad():
        for layer, index in zip(net.convs, VGGISH_CONVS):
            layer.weight.copy_(state[f"features.{index}.weight"])
            layer.bias.copy_(state[f"features.{index}.bias"])
    return net


def load_run(net: Net, path: str | Path) -> Net:
    """Copy L1–L7 from an earlier run's ``model.pt`` (``path`` is the file or its run folder)."""
    weights = checkpoint_path(path)
    state = load_state_dict(weights)
    own = net.state_dict()
    shared = [k for k in own if k.startswith(("convs.", "l7."))]
    missing = [k for k in shared if k not in state]
    if missing:
        raise AudiobenchError(f"{weights}: not an audiobench checkpoint: missing {', '.join(missing[:4])}")
    for key in shared:
        if state[key].shape != own[key].shape:
            raise AudiobenchError(f"{weights}: {key} has shape {list(state[key].shape)}, this network has "
                                  f"{list(own[key].shape)} (train with the same --width)")
    net.load_state_dict({k: state[k] for k in shared}, strict=False)
    return net


def apply_init(net: Net, init: str | None, *, root: Path | None = None) -> Net:
    """Apply ``--init``: ``None`` (keep the seeded random weights), ``vggish:PATH`` or ``run:PATH``.

    ``root``: the storage root, where a bare VGGish file name (``vggish:vggish-10086976.pth``) is looked for
    under ``weights/`` when it is not in the working folder."""
    if init is None:
        return net
    kind, sep, path = init.partition(":")
    if not sep or not path or kind not in ("vggish", "run"):
        raise AudiobenchError(f"--init {init!r}: expected vggish:PATH or run:PATH")
    return load_vggish(net, path, root=root) if kind == "vggish" else load_run(net, path)


def freeze(net: Net, layers: int) -> list[torch.nn.Parameter]:
    """Fix the first ``layers`` of L1–L7; returns the parameters left to train."""
    if not 0 <= layers <= len(CONV_LAYERS):
        raise AudiobenchError(f"--freeze must be between 0 and {len(CONV_LAYERS)} (L1–L7), got {layers}")
    frozen = [*net.convs, net.l7][:layers]
    for layer in frozen:
        layer.requires_grad_(False)
    return [p for p in net.parameters() if p.requires_grad]
