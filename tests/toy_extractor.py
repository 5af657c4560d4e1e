"""A feature extractor written the way docs/architecture.md says: one file, one class (registered by the test).

16 bands per 25 ms frame: the mean magnitude of the frame's rfft bins, in 16 equal runs of bins. Not a
useful feature, only a different one: other dims (16), another padding value (0) and the base class's frame
rule, so a test sees every reader take them from the file.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiobench.features.base import Extractor


@dataclass(frozen=True)
class BandMeansParams:
    sample_rate: int = 16_000
    frame_length: int = 400
    frame_shift: int = 160
    bands: int = 16


class BandMeans(Extractor):
    name = "toy-band-means"
    Params = BandMeansParams
    padding_value = 0.0  # silence: every magnitude is 0

    @property
    def dims(self) -> int:
        return self.params.bands

    def extract(self, waveform: np.ndarray) -> np.ndarray:
        magnitude = np.abs(np.fft.rfft(self.frames(waveform), axis=1))
        edges = np.linspace(0, magnitude.shape[1], self.params.bands + 1).astype(int)
        return (np.add.reduceat(magnitude, edges[:-1], axis=1) / np.diff(edges)).astype(np.float32)
