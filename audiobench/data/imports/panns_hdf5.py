"""PANNs' packed HDF5 files (github.com/qiuqiangkong/audioset_tagging_cnn, ``utils/dataset.py pack_waveforms_to_hdf5``).

Datasets: ``audio_name`` (``Y<ytid>.wav`` as bytes), ``waveform`` int16 ``[N, 320000]`` (10 s at 32 kHz),
``target`` bool ``[N, 527]`` (AudioSet's class order), and the file attribute ``sample_rate``. A row whose
clip was never downloaded has an empty name and zeros: it is no entry. A short clip was zero-padded at the
end to 10 s; :mod:`validate` trims the trailing exact zeros. Rows are read one at a time (h5py reads the
row's chunks only) as the stream reaches it, so a 14 GB file takes the memory of a few rows.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.data.imports.entry import Entry, Pcm

FORMAT = "panns-hdf5"
SUFFIXES = (".h5", ".hdf5")
DEFAULT_RATE = 32000


def count(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return sum(1 for name in f["audio_name"][:] if name)


def entries(copy: Path, path: Path | None = None) -> Iterator[Entry]:
    """Entries of one packed file (``path``; default ``copy`` itself)."""
    import h5py

    path = path or copy
    member_of = path.relative_to(copy).as_posix() if path != copy else path.name
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise AudiobenchError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        if "audio_name" not in f or "waveform" not in f:
            raise AudiobenchError(f"{path}: not a PANNs packed file (needs the datasets audio_name and waveform)")
        rate = int(f.attrs.get("sample_rate", DEFAULT_RATE))
        names = f["audio_name"][:]
        waveform, target = f["waveform"], f.get("target")
        for row, raw in enumerate(names):
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not name:
                continue  # never downloaded
            labels = None
            if target is not None:
                labels = tuple(f"#{i}" for i in target[row].nonzero()[0])  # AudioSet class indices

            pcm = Pcm(waveform[row][None, :], rate)  # read now: the file closes when the stream moves on
            yield Entry(FORMAT, copy, f"{member_of}#{row}", Path(name).stem, ".flac", lambda pcm=pcm: pcm,
                        labels=labels)
