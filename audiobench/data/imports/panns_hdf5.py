"""PANNs' packed HDF5 files (github.com/qiuqiangkong/audioset_tagging_cnn, ``utils/dataset.py pack_waveforms_to_hdf5``).

Datasets: ``audio_name`` (``Y<ytid>.wav`` as ``S20`` bytes), ``waveform`` int16 ``[N, 320000]`` (10 s at
32 kHz, ``float32_to_int16``), ``target`` bool ``[N, 527]`` (AudioSet's class order), and the int32 file
attribute ``sample_rate``. Other packers store ``waveform`` as int32, float32 or float64: each is scaled by its
type (:data:`entry.PCM_SCALES`; floats are already in [-1, 1]). A row whose clip was never downloaded has an
empty name and zeros: it is no entry. A short clip was zero-padded at the end to 10 s; :mod:`validate` trims
the trailing exact zeros. Rows are read one at a time (h5py reads the row's chunks only) as the stream reaches
it, so a 14 GB file takes the memory of a few rows.

The layout is checked before any row is read: shapes, types, the rate and every name, each refused in one
line naming the file (and the row). ``create_indexes.py``'s index files (``hdf5s/indexes/*.h5``: names,
targets, ``hdf5_path``, ``index_in_hdf5``, no waveforms) are passed over with a notice.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from audiobench.core.errors import AudiobenchError
from audiobench.data.imports.entry import PCM_SCALES, Entry, Pcm, name_of, notice

FORMAT = "panns-hdf5"
SUFFIXES = (".h5", ".hdf5")
PANNS_RATE, PANNS_CLIP = 32000, 320000  # utils/config.py: sample_rate, clip_samples = sample_rate * 10
RATES = (1000, 768000)  # a sample_rate attribute outside this is not one
_INDEX_DATASETS = ("hdf5_path", "index_in_hdf5")  # utils/create_indexes.py


@dataclass(frozen=True)
class Layout:
    """What a packed file holds, checked: the rows' names (None: never downloaded), the rate, the datasets."""

    names: list[str | None]
    rate: int
    waveform: object  # h5py.Dataset [N, samples]
    target: object | None  # h5py.Dataset [N, classes]


def count(path: Path) -> int:
    import h5py  # deferred: heavy, and only PANNs copies need it

    with h5py.File(path, "r") as f:
        names = f.get("audio_name")
        if _is_index(f) or not isinstance(names, h5py.Dataset) or names.ndim != 1:
            return 0  # entries() says what is wrong
        return sum(1 for name in names[:] if _is_named(name))


def entries(copy: Path, path: Path | None = None) -> Iterator[Entry]:
    """Entries of one packed file (``path``; default ``copy`` itself)."""
    import h5py  # deferred: heavy, and only PANNs copies need it

    path = path or copy
    member_of = path.relative_to(copy).as_posix() if path != copy else path.name
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise AudiobenchError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        if _is_index(f):
            where = _first_text(f["hdf5_path"])
            yield notice(FORMAT, copy, member_of, "a PANNs index file (create_indexes.py: names and targets, no "
                         f"waveforms{f'; they are packed in {where}' if where else ''})")
            return
        layout = read_layout(f, path)
        for row, name in enumerate(layout.names):
            if name is None:
                continue  # never downloaded
            labels = None
            if layout.target is not None:
                labels = tuple(f"#{i}" for i in np.asarray(layout.target[row]).nonzero()[0])  # class indices
            try:
                samples = np.asarray(layout.waveform[row])  # read now: the file closes when the stream moves on
            except OSError as exc:
                raise AudiobenchError(f"{path} row {row}: cannot read its waveform ({exc})") from None
            pcm = Pcm(samples[None, :], layout.rate)
            yield Entry(FORMAT, copy, f"{member_of}#{row}", name, ".flac", lambda pcm=pcm: pcm, labels=labels)


def read_layout(f, path: Path) -> Layout:
    """The checked layout of an open packed file; :class:`AudiobenchError` naming the file for anything else."""
    import h5py  # deferred: heavy, and only PANNs copies need it

    audio_name, waveform, target = f.get("audio_name"), f.get("waveform"), f.get("target")
    if not isinstance(audio_name, h5py.Dataset) or not isinstance(waveform, h5py.Dataset):
        raise AudiobenchError(f"{path}: not a PANNs packed file (needs the datasets audio_name and waveform; "
                              f"has {', '.join(sorted(f.keys())) or 'none'})")
    if waveform.ndim != 2 or waveform.shape[1] == 0:
        raise AudiobenchError(f"{path}: waveform has shape {waveform.shape}; a packed file holds one mono row "
                              "per clip, [clips, samples] (PANNs: [N, 320000])")
    if waveform.dtype not in PCM_SCALES:
        raise AudiobenchError(f"{path}: waveform is {waveform.dtype}; expected int16 (PANNs), int32, float32 or "
                              "float64 samples")
    if audio_name.ndim != 1 or audio_name.dtype.kind not in "SOU":
        raise AudiobenchError(f"{path}: audio_name is {audio_name.dtype} of shape {audio_name.shape}; expected "
                              "one name per row (PANNs: S20 bytes, Y<ytid>.wav)")
    n = audio_name.shape[0]
    if waveform.shape[0] != n:
        raise AudiobenchError(f"{path}: audio_name has {n} rows but waveform {waveform.shape[0]}")
    if target is not None and (not isinstance(target, h5py.Dataset) or target.ndim != 2 or target.shape[0] != n):
        raise AudiobenchError(f"{path}: target has shape {getattr(target, 'shape', None)}; expected [{n}, classes]")
    names = [_name(raw, path, row) for row, raw in enumerate(audio_name[:])]
    return Layout(names, _rate(f.attrs, waveform.shape[1], path), waveform, target)


def _rate(attrs, samples: int, path: Path) -> int:
    """The ``sample_rate`` attribute, checked; PANNs' 32 kHz where it is missing and the rows are its 10 s."""
    if "sample_rate" not in attrs:
        if samples == PANNS_CLIP:
            return PANNS_RATE
        raise AudiobenchError(f"{path}: no sample_rate attribute, and rows of {samples} samples are not PANNs' "
                              "10 s at 32 kHz; add it (h5py: f.attrs['sample_rate'] = RATE) and import again")
    value = attrs["sample_rate"]
    try:
        array = np.asarray(value)
        rate = float(array.reshape(-1)[0]) if array.size == 1 and array.dtype.kind in "iuf" else None
    except (TypeError, ValueError):
        rate = None
    if rate is None or rate != int(rate) or not RATES[0] <= rate <= RATES[1]:
        shown = value.tolist() if hasattr(value, "tolist") else value
        raise AudiobenchError(f"{path}: attribute sample_rate = {shown!r} is not a sample rate in Hz "
                              f"(PANNs writes {PANNS_RATE})")
    return int(rate)


def _name(raw: object, path: Path, row: int) -> str | None:
    """The row's clip name (``Y<ytid>.wav`` -> ``Y<ytid>``; any folders dropped), None for an empty one."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AudiobenchError(f"{path} row {row}: audio_name {bytes(raw)!r} is not UTF-8 text") from None
    text = str(raw).strip().strip("\0")
    if not text:
        return None
    if any(ord(c) < 32 for c in text):
        raise AudiobenchError(f"{path} row {row}: audio_name {text!r} holds control characters")
    return name_of(Path(PurePosixPath(text.replace("\\", "/")).name))


def _is_named(raw: object) -> bool:
    return bool(raw.strip(b"\0 ") if isinstance(raw, bytes) else str(raw).strip())


def _is_index(f) -> bool:
    return "waveform" not in f and all(k in f for k in _INDEX_DATASETS)


def _first_text(dataset) -> str:
    try:
        raw = dataset[0] if dataset.shape and dataset.shape[0] else b""
    except (OSError, ValueError):
        return ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
