"""Predictions of a trained run on audio files: any format, any rate, any number of channels (docs/api.md).

Each file is decoded (:func:`audiobench.data.decode.read_audio`), mixed to mono and resampled to 16 kHz as
``audiobench resample`` does, turned into the features the run was trained on, and passed through the net at
its true length, as validation and test clips are (:mod:`audiobench.training.inference`): a 16 kHz mono
FLAC of a dataset gets the probabilities its features got in training's own evaluation.

>>> from audiobench import predict
>>> [p.top(3) for p in predict("audiobench-data/runs/train-synth-att-self-s0-...", ["dog.wav"])]  # doctest: +SKIP
[[('Dog', 0.91), ('Car', 0.12), ('Bicycle', 0.04)]]
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiobench.core.errors import AudiobenchError
from audiobench.data.decode import read_audio
from audiobench.data.resample import AUDIO_RATE, to_mono_16k
from audiobench.features.base import DTYPES, Extractor, extractor_of, get_extractor
from audiobench.models.checkpoint import load_model
from audiobench.models.net import SEGMENT_FRAMES, use_fast_layout
from audiobench.training.train import resolve_device


@dataclass(frozen=True)
class Prediction:
    """What the run's net says about one file.

    ``clip`` ``[C]``: the clip probability of each class (in the order of ``classes``); ``segments``
    ``[C, T']``: the segment probabilities Xa, one column per :attr:`segment_seconds` of audio; ``attention``
    ``[C, T']``: the attention weights A, each row summing to 1 (``None`` for a run without attention).
    """

    file: Path
    classes: tuple[str, ...]
    clip: np.ndarray
    segments: np.ndarray
    attention: np.ndarray | None
    seconds: float  # of the 16 kHz audio
    segment_seconds: float  # one segment (column) of the matrices, in seconds

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, most probable first (ties in class order)."""
        order = np.argsort(-self.clip, kind="stable")[:k]
        return [(self.classes[i], float(self.clip[i])) for i in order]

    def to_dict(self, *, matrices: bool = False) -> dict[str, Any]:
        """JSON-ready: every class's probability, and the matrices' shapes (or, with ``matrices``, their values)."""
        out: dict[str, Any] = {
            "file": str(self.file), "seconds": self.seconds, "segment_seconds": self.segment_seconds,
            "probabilities": {name: float(p) for name, p in zip(self.classes, self.clip)},
            "segments_shape": list(self.segments.shape),
            "attention_shape": None if self.attention is None else list(self.attention.shape),
        }
        if matrices:
            out["segments"] = self.segments.tolist()
            out["attention"] = None if self.attention is None else self.attention.tolist()
        return out


class Predictor:
    """A trained run loaded once, to predict file after file (what :func:`predict` and the CLI use).

    ``run_dir`` is a run folder holding ``model.pt`` and ``model.json`` (or the ``model.pt`` itself).
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, device: str = "cpu") -> None:
        self.device = resolve_device(device)
        net, meta = load_model(run_dir)
        self.net = use_fast_layout(net.to(self.device), self.device)
        self.classes: tuple[str, ...] = tuple(meta.get("class_names") or
                                              (f"class {c}" for c in range(int(meta["classes"]))))
        self.extractor, self.dtype = run_features(meta, where=str(run_dir))
        if self.extractor.sample_rate != AUDIO_RATE:
            raise AudiobenchError(f"{run_dir}: trained on {self.extractor.sample_rate} Hz features; predict "
                                  f"resamples to {AUDIO_RATE} Hz only")
        # What a padded frame holds in the stored features (rounded to their dtype), as inference pads.
        self.padding = float(np.float32(np.dtype(self.dtype).type(self.extractor.padding_value)))

    def features(self, path: Path) -> tuple[np.ndarray, float]:
        """``([frames, bands] float32 features as stored in training, seconds of 16 kHz audio)`` of a file."""
        audio, rate = read_audio(path)
        mono = to_mono_16k(audio, rate)
        try:
            x = self.extractor(mono, AUDIO_RATE)
        except AudiobenchError as exc:
            raise AudiobenchError(f"{path}: {exc}") from None
        if self.dtype != "float32":  # the net was trained on features rounded to the stored dtype
            x = x.astype(self.dtype).astype(np.float32)
        return x, mono.size / AUDIO_RATE

    @torch.no_grad()
    def __call__(self, path: str | os.PathLike[str]) -> Prediction:
        """The prediction for one audio file; an :class:`AudiobenchError` naming it when it cannot be read."""
        path = Path(path)
        x, seconds = self.features(path)
        batch = torch.full((1, max(len(x), SEGMENT_FRAMES), x.shape[1]), self.padding)  # short clips: one segment
        batch[0, :len(x)] = torch.from_numpy(x)
        out = self.net(batch.to(self.device))
        attention = None if out.attention is None else out.attention[0].float().cpu().numpy()
        return Prediction(path, self.classes, out.clip[0].float().cpu().numpy(), out.xa[0].float().cpu().numpy(),
                          attention, seconds,
                          SEGMENT_FRAMES * self.extractor.frame_seconds)


def predict(model_dir: str | os.PathLike[str], files: Iterable[str | os.PathLike[str]], *,
            device: str = "cpu") -> list[Prediction]:
    """Class probabilities, segment probabilities and attention of a trained run for each audio file.

    ``model_dir``: a run folder (``model.pt`` + ``model.json``, as ``audiobench train`` writes). ``files``:
    audio in any format ``audiobench resample`` reads, at any rate, mono or not. ``device``: ``cpu``,
    ``cuda`` or ``auto``. Raises :class:`AudiobenchError` naming the first file that cannot be read (use
    :class:`Predictor` to go on past it).
    """
    predictor = Predictor(model_dir, device=device)
    return [predictor(path) for path in files]


def run_features(meta: dict[str, Any], *, where: str) -> tuple[Extractor, str]:
    """The feature extractor and storage dtype a run was trained on, from its ``model.json``.

    Runs record both; for a run that does not, its feature id must be the VGGish recipe's (float32 or float16).
    """
    recorded, features = meta.get("extractor"), meta.get("features") or {}
    if recorded:
        return (extractor_of({"extractor": recorded["name"], **recorded["params"]}, where=where),
                str(features.get("dtype", "float32")))
    fid = (meta.get("config") or {}).get("feature_id")
    default = get_extractor()
    for dtype in DTYPES:
        if fid is None and dtype == "float32" or fid == default.feature_id(dtype):
            return default, dtype
    raise AudiobenchError(f"{where}: trained on feature set {fid!r}, whose recipe its model.json does not record; "
                          "predict cannot compute its features")
