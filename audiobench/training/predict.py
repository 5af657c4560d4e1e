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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiobench.core.errors import AudiobenchError
from audiobench.data.decode import AudioBlocks
from audiobench.data.resample import AUDIO_RATE, to_mono_16k_blocks
from audiobench.features.base import DTYPES, Extractor, extractor_of, get_extractor
from audiobench.models.checkpoint import load_model
from audiobench.models.net import SEGMENT_FRAMES, pooled, segment_context, use_fast_layout
from audiobench.training.blockwise import BLOCK_FRAMES, check_block_frames, feature_blocks, segment_outputs
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
    note: str | None = None  # a caveat worth a line: audio too short for any segment to see real context only

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, most probable first (ties in class order)."""
        order = np.argsort(-self.clip, kind="stable")[:k]
        return [(self.classes[i], float(self.clip[i])) for i in order]

    def to_dict(self, *, matrices: bool = False) -> dict[str, Any]:
        """JSON-ready: every class's probability, and the matrices' shapes (or, with ``matrices``, their values)."""
        out: dict[str, Any] = {
            "file": str(self.file), "seconds": self.seconds, "segment_seconds": self.segment_seconds,
            "note": self.note,
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
    ``block_frames``: frames scored at a time (a multiple of 16); any size gives the same probabilities
    within float rounding (:mod:`audiobench.training.blockwise`), smaller ones need less memory.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, device: str = "cpu",
                 block_frames: int = BLOCK_FRAMES) -> None:
        self.block_frames = check_block_frames(block_frames)
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

    def blocks(self, path: Path, samples: list[int] | None = None) -> Iterator[np.ndarray]:
        """The file's features as stored in training, ``[frames, bands]`` float32, ``block_frames`` at a time.

        Decoded, mixed to mono, resampled and featurized block by block (:mod:`audiobench.training.blockwise`):
        memory is a few blocks, whatever the file's length. ``samples[0]`` counts the 16 kHz samples read.
        """
        count = [0] if samples is None else samples
        with AudioBlocks(path, block=self._decode_block) as audio:
            for x in feature_blocks(self.extractor, _counted(to_mono_16k_blocks(audio, audio.rate), count),
                                    block_frames=self.block_frames):
                # the net was trained on features rounded to the stored dtype
                yield x if self.dtype == "float32" else x.astype(self.dtype).astype(np.float32)

    @property
    def _decode_block(self) -> int:
        """Samples per decoded block: about one block of frames' worth, within [2**12, 2**20] (1 to 8 MB)."""
        return min(max(self.block_frames * self.extractor.frame_shift, 1 << 12), 1 << 20)

    @torch.no_grad()
    def __call__(self, path: str | os.PathLike[str]) -> Prediction:
        """The prediction for one audio file; an :class:`AudiobenchError` naming it when it cannot be read."""
        path, samples = Path(path), [0]
        try:
            xa, xb, frames = segment_outputs(self.net, self.blocks(path, samples), block_frames=self.block_frames,
                                             padding=self.padding, device=self.device)
        except AudiobenchError as exc:
            message = str(exc)
            raise AudiobenchError(message if message.startswith(str(path)) else f"{path}: {message}") from None
        out = pooled(xa, xb)
        attention = None if out.attention is None else out.attention[0].numpy()
        seconds = samples[0] / AUDIO_RATE
        return Prediction(path, self.classes, out.clip[0].numpy(), out.xa[0].numpy(), attention, seconds,
                          SEGMENT_FRAMES * self.extractor.frame_seconds, self._note(frames, seconds))

    def _note(self, frames: int, seconds: float) -> str | None:
        """A line for audio shorter than what one segment's output depends on, where padding weighs on all."""
        field = SEGMENT_FRAMES + 2 * segment_context()  # frames: 102
        if frames >= field:
            return None
        needs = ((field - 1) * self.extractor.frame_shift + self.extractor.frame_length) / AUDIO_RATE
        padded = ", padded with silence to one segment" if frames < SEGMENT_FRAMES else ""
        return (f"{seconds:.3f} s, shorter than the {needs:.2f} s one segment's output depends on{padded}: "
                "read its probabilities with care")


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


def _counted(blocks: Iterator[np.ndarray], count: list[int]) -> Iterator[np.ndarray]:
    """``blocks`` as they are, their samples added up in ``count[0]``."""
    for block in blocks:
        count[0] += block.size
        yield block


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
