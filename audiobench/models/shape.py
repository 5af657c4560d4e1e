"""The network's shape as plain numbers, without torch: what the options, losses and figures need to know of
it without building it.

Four 2×2 max-pools halve time four times, so segment ``t`` spans input frames ``[16t, 16t + 16)`` and an
input of ``T`` frames gives ``T // 16`` segments (frames past the last whole segment are dropped, as in
VGGish). ``--freeze K`` counts the convolutions L1–L7.
"""
from __future__ import annotations

SEGMENT_FRAMES = 16  # input frames per output segment: four 2x pools over time
CONV_LAYERS = ("L1", "L2", "L3", "L4", "L5", "L6", "L7")  # what --freeze K counts


def segments_for(frames: int) -> int:
    """Number of output segments for an input of ``frames`` frames."""
    return frames // SEGMENT_FRAMES
