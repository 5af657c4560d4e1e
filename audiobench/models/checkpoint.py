"""Checkpoint files of a run: ``model.pt`` (a plain state dict) and ``model.json`` (how to rebuild the net).

Every weight file this project reads goes through :func:`load_state_dict`, which uses
``torch.load(path, map_location="cpu", weights_only=True)`` only: a file that would run code when
unpickled is refused, never executed.
"""
from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from audiobench.core.errors import AudiobenchError, InputFormatError
from audiobench.core.jsonfile import read_json_object
from audiobench.core.layout import atomic_path, write_atomic
from audiobench.models.net import MEL_BANDS, Net

CHECKPOINT = "model.pt"
CHECKPOINT_META = "model.json"


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A ``{name: tensor}`` state dict from ``path``, loaded without running any pickled code."""
    path = Path(path)
    if not path.is_file():
        raise AudiobenchError(f"no weight file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler: an import of a global means the file would run code when unpickled
        blocked = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if blocked:
            raise AudiobenchError(f"{path}: refused: unpickling it would call {blocked.group(1)} (it could run "
                                  f"code); only plain tensor state dicts are loaded") from None
        detail = next((line.strip() for line in str(exc).splitlines() if line.startswith("Unsupported")), "")
        raise AudiobenchError(f"{path}: not a PyTorch weight file holding only tensors ({detail})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AudiobenchError(f"{path}: not a PyTorch weight file ({first[:200]})") from None
    if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise AudiobenchError(f"{path}: expected a state dict of named tensors, got {type(state).__name__}")
    return dict(state)


def save_checkpoint(run_dir: Path, net: Net, meta: Mapping[str, Any]) -> Path:
    """Write ``model.pt`` (CPU state dict) and ``model.json`` (``net`` spec + ``meta``); returns model.pt."""
    weights = run_dir / CHECKPOINT
    with atomic_path(weights) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    info = {**meta, "classes": net.spec.classes, "width": net.spec.width, "attention": net.spec.attention,
            "bands": net.spec.bands}
    write_atomic(run_dir / CHECKPOINT_META, json.dumps(info, indent=2, default=str))
    return weights


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """``model.pt`` of a run: ``path`` itself, or ``path/model.pt`` when ``path`` is a run folder."""
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def load_model(path: str | os.PathLike[str]) -> tuple[Net, dict[str, Any]]:
    """The trained network of a run (folder or ``model.pt``) and its ``model.json``, on the CPU, eval mode."""
    weights = checkpoint_path(path)
    meta_path = weights.with_name(CHECKPOINT_META)
    if not meta_path.is_file():
        raise AudiobenchError(f"no {CHECKPOINT_META} beside {weights}: not an audiobench run checkpoint")
    fix = "train the run again, or restore its folder from a copy"
    meta = read_json_object(meta_path, required=("classes", "width", "attention"), fix=fix)
    try:
        shape = (int(meta["classes"]), float(meta["width"]), bool(meta["attention"]),
                 int(meta.get("bands", MEL_BANDS)))  # runs from before bands was recorded: VGGish's 64
    except (TypeError, ValueError) as exc:
        raise InputFormatError(f"{meta_path}: classes, width or bands is not a number ({exc}); {fix}") from None
    with torch.random.fork_rng(devices=[]):  # the weights are overwritten: leave the global RNG alone
        try:
            net = Net(shape[0], width=shape[1], attention=shape[2], bands=shape[3])
        except (ValueError, RuntimeError) as exc:
            raise InputFormatError(f"{meta_path}: describes no network ({exc}); {fix}") from None
    state = load_state_dict(weights)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise AudiobenchError(f"{weights}: does not match {meta_path.name} ({str(exc).splitlines()[0]})") from None
    return net.eval(), meta
