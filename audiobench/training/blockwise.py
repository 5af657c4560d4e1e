"""A long recording scored block by block, with the answer of the whole recording at once (``predict``).

Memory must not follow the file's length: two hours of 44.1 kHz stereo are 2.5 GB of float32 samples before
anything is computed. Each stage therefore streams, and each is exact:

- features (:func:`feature_blocks`): frames are cut as the extractor's frame rule cuts them (frame ``i``
  covers samples ``[hop i, hop i + length)``, no centring), so the samples from the next frame's start on
  are carried into the next block. An extractor that is not frame-local (the Kaldi fbank with the
  waveform's mean subtracted) gets the whole 16 kHz waveform instead;
- the net (:func:`segment_outputs`): it is fully convolutional, and a segment's output depends on the
  frames within :func:`~audiobench.models.net.segment_context` (43) of its own 16. Each block of
  ``block_frames`` frames is run with 48 frames (three segments) of real context on each side, and only
  its own segments are kept; blocks start on a segment boundary, so the pools cut where the whole input's
  do, and the last block ends where the input does, so its edge is the input's edge;
- pooling (:func:`~audiobench.models.net.pooled`): attention normalises Xb over all the segments of the
  file, so the small per-segment outputs (C × T/16) are kept and pooled once at the end.

The segment outputs equal the whole-input net's within float rounding (the convolutions of a shorter
input sum the same terms, but the kernels may block them differently): ``tests/test_predict.py`` checks
1e-5 on every probability, and measures under 1e-6. With ``block_frames`` a multiple of 1024 the VGGish
features are the same bits as the whole file's (its FFTs run in blocks of 1024 frames).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from audiobench.core.errors import AudiobenchError
from audiobench.features.base import Extractor
from audiobench.models.net import Net, segment_context
from audiobench.models.shape import SEGMENT_FRAMES

BLOCK_FRAMES = 4096  # frames per block (41 s at a 10 ms hop): a width-1 net's activations stay under 200 MB
CONTEXT_FRAMES = -(-segment_context() // SEGMENT_FRAMES) * SEGMENT_FRAMES  # 48: whole segments of context


def check_block_frames(block_frames: int) -> int:
    """``block_frames`` if it is a positive multiple of one segment (16 frames), else an error saying so."""
    if block_frames < SEGMENT_FRAMES or block_frames % SEGMENT_FRAMES:
        raise AudiobenchError(f"block_frames must be a positive multiple of {SEGMENT_FRAMES}, got {block_frames}")
    return block_frames


def feature_blocks(extractor: Extractor, samples: Iterable[np.ndarray], *, block_frames: int) -> Iterator[np.ndarray]:
    """The features of the samples put end to end, ``block_frames`` frames at a time (the last block: the rest).

    ``samples``: consecutive 1-D float32 blocks at the extractor's rate, of any sizes. Too short a recording
    (no whole frame) gets the extractor's own error, as the whole recording would.
    """
    step = block_frames if extractor.frame_local else None
    rate, hop, length = extractor.sample_rate, extractor.frame_shift, extractor.frame_length
    pending: list[np.ndarray] = []
    held, cut = 0, False  # samples in pending; whether a block went out
    for chunk in samples:
        pending.append(chunk)
        held += chunk.size
        if step is None or extractor.num_frames(held) < step:
            continue
        buffer = np.concatenate(pending)
        n = extractor.num_frames(buffer.size) // step * step
        yield extractor(buffer[:(n - 1) * hop + length], rate)
        pending, held, cut = [buffer[n * hop:]], buffer.size - n * hop, True
    if not cut or extractor.num_frames(held):  # the rest (never cut: all of it, or the extractor's error)
        yield extractor(np.concatenate(pending) if pending else np.zeros(0, np.float32), rate)


@torch.no_grad()
def segment_outputs(net: Net, frames: Iterable[np.ndarray], *, block_frames: int, padding: float,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """``(Xa [1, C, T'], Xb [1, C, T'] or None, frames in all)`` of the net over the frames put end to end.

    ``frames``: consecutive ``[n, bands]`` float32 blocks. An input shorter than one segment is padded
    with ``padding`` to one, as inference pads (:mod:`audiobench.training.inference`).
    """
    check_block_frames(block_frames)
    xa: list[torch.Tensor] = []
    xb: list[torch.Tensor] = []
    buffer: np.ndarray | None = None
    start = done = 0  # the frame buffer[0] is; frames whose segments are out (a multiple of 16)

    def run(block: np.ndarray, keep_from: int, keep: int | None) -> None:
        out = net(torch.from_numpy(np.ascontiguousarray(block))[None].to(device))
        stop = None if keep is None else keep_from + keep
        xa.append(out.xa[..., keep_from:stop].float().cpu())
        if out.xb is not None:
            xb.append(out.xb[..., keep_from:stop].float().cpu())

    for x in frames:
        buffer = x if buffer is None else np.concatenate([buffer, x])
        while start + len(buffer) >= done + block_frames + CONTEXT_FRAMES:
            low = max(0, done - CONTEXT_FRAMES)
            run(buffer[low - start:done + block_frames + CONTEXT_FRAMES - start], (done - low) // SEGMENT_FRAMES,
                block_frames // SEGMENT_FRAMES)
            done += block_frames
            keep = max(0, done - CONTEXT_FRAMES)  # the next block's left context on
            buffer, start = buffer[keep - start:], keep
    if buffer is None:
        raise AudiobenchError("no frames to score")
    total = start + len(buffer)
    if total < SEGMENT_FRAMES:  # shorter than one segment: padded to one
        padded = np.full((SEGMENT_FRAMES, buffer.shape[1]), padding, dtype=np.float32)
        padded[:len(buffer)] = buffer
        run(padded, 0, None)
    elif total - done >= SEGMENT_FRAMES or not xa:
        low = max(0, done - CONTEXT_FRAMES)
        run(buffer[low - start:], (done - low) // SEGMENT_FRAMES, None)
    return torch.cat(xa, dim=-1), torch.cat(xb, dim=-1) if xb else None, total
