"""Copies of a dataset as their distributors lay them out, built in the tests with position-coded audio.

Every clip is a tone at ``100 * (code + 1)`` Hz, so :func:`code_of` tells which clip's audio a file holds,
through any codec or resampling.
"""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(code: int, seconds: float, rate: int, channels: int = 1, *, pad_to: float | None = None) -> np.ndarray:
    """``[n, channels]`` float32 of the clip coded ``code``; zeros after ``seconds`` up to ``pad_to``."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    wave = 0.5 * np.sin(2 * np.pi * 100 * (code + 1) * t)
    total = int(round((pad_to or seconds) * rate))
    out = np.zeros((total, channels), dtype=np.float32)
    out[:n] = wave[:, None]
    return out


def code_of(path: Path | bytes) -> int:
    """The code of the tone a file (or encoded bytes) holds: its strongest frequency / 100 - 1."""
    audio, rate = sf.read(io.BytesIO(path) if isinstance(path, bytes) else path, dtype="float32", always_2d=True)
    spectrum = np.abs(np.fft.rfft(audio.mean(axis=1)))
    freq = np.argmax(spectrum) * rate / len(audio)
    return int(round(freq / 100)) - 1


def encode(audio: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def write(path: Path, audio: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype=subtype)
    return path


def dcase_cut(folder: Path, ytid: str, start: float, end: float, code: int, *, seconds: float | None = None,
              suffix: str = ".wav") -> Path:
    """The organisers' script's cut: ``Y<ytid>_<start>_<end>.wav``, 44.1 kHz 16-bit (the times as the CSV)."""
    rate = 44100
    return write(folder / f"Y{ytid}_{start:.3f}_{end:.3f}{suffix}", tone(code, seconds or end - start, rate, 2),
                 rate, "PCM_16")


def panns_wav(folder: Path, ytid: str, code: int, seconds: float = 10.0) -> Path:
    """PANNs' ``Y<ytid>.wav``, 32 kHz mono."""
    return write(folder / f"Y{ytid}.wav", tone(code, seconds, 32000), 32000, "PCM_16")


def audiosetdl(folder: Path, ytid: str, start: float, end: float, code: int) -> Path:
    """audiosetdl's ``<ytid>_<start_ms>_<end_ms>.flac``."""
    return write(folder / f"{ytid}_{round(start * 1000)}_{round(end * 1000)}.flac", tone(code, end - start, 44100, 2),
                 44100)


def audioset_download(folder: Path, labels: list[str], ytid: str, start: float, end: float, code: int) -> list[Path]:
    """audioset-download's ``<label>/<ytid>_<start>-<end>.ogg``, copied into the folder of each label."""
    name = f"{ytid}_{start}-{end}.ogg"
    first = write(folder / labels[0] / name, tone(code, end - start, 44100), 44100, "VORBIS")
    for label in labels[1:]:
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / name).write_bytes(first.read_bytes())
    return [folder / label / name for label in labels]


def audioset_download_vorbis(folder: Path, labels: list[str], ytid: str, start: float, end: float,
                             code: int) -> Path:
    """What audioset-download 1.1's default run (``format='vorbis'``) leaves: its ``Downloader.download_file``
    names ``<first label>/<ytid>_<start_seconds>-<end_seconds>.ogg`` (the seconds as pandas reads them,
    ``30.0``) as yt-dlp's ``--output``; yt-dlp's ExtractAudio then appends its own extension (its
    ``replace_extension(path, 'ogg', <the download's real ext>)``), so the file is ``….ogg.ogg``, and the
    package, not finding ``….ogg``, makes no copies for the other labels."""
    from yt_dlp.utils import replace_extension

    file_path = folder / labels[0] / f"{ytid}_{float(start)}-{float(end)}.ogg"
    final = Path(replace_extension(str(file_path), "ogg", "webm"))
    return write(final, tone(code, end - start, 48000, 2), 48000, "VORBIS")


def panns_hdf5(path: Path, rows: list[tuple[str, int, float, list[int]]], *, classes: int = 527,
               dtype: str = "int16") -> Path:
    """PANNs' packed file: rows of (``Y<ytid>.wav`` or ``""`` for never downloaded, code, seconds, targets).

    Written as ``pack_waveforms_to_hdf5`` writes it (audioset_tagging_cnn ``utils/dataset.py`` and
    ``utils/utilities.py`` at commit d2f4b8c18eab44737fcc0de1248ae21eb43f6aa4): contiguous datasets created
    empty, ``audio_name`` S20, ``waveform`` int16 ``[N, 320000]`` of ``float32_to_int16(pad_or_truncate(audio,
    clip_samples))``, ``target`` bool, the attribute ``sample_rate`` int32; a clip not downloaded leaves its row
    as created. ``dtype`` other than int16 stores the samples as other packers do: int32 full scale, floats as
    they are.
    """
    import h5py

    sample_rate = 32000
    clip_samples = sample_rate * 10  # utils/config.py

    def float32_to_int16(x: np.ndarray) -> np.ndarray:  # utils/utilities.py
        assert np.max(np.abs(x)) <= 1.2
        x = np.clip(x, -1, 1)
        return (x * 32767.).astype(np.int16)

    def pad_or_truncate(x: np.ndarray, audio_length: int) -> np.ndarray:  # utils/utilities.py
        if len(x) <= audio_length:
            return np.concatenate((x, np.zeros(audio_length - len(x))), axis=0)
        return x[0:audio_length]

    store = {"int16": float32_to_int16, "int32": lambda x: (np.clip(x, -1, 1) * (2 ** 31 - 1)).astype(np.int32),
             "float32": lambda x: x.astype(np.float32), "float64": lambda x: x.astype(np.float64)}[dtype]
    with h5py.File(path, "w") as hf:
        hf.create_dataset("audio_name", shape=((len(rows),)), dtype="S20")
        hf.create_dataset("waveform", shape=((len(rows), clip_samples)), dtype=dtype)
        hf.create_dataset("target", shape=((len(rows), classes)), dtype=bool)  # np.bool in the original
        hf.attrs.create("sample_rate", data=sample_rate, dtype=np.int32)
        for n, (name, code, seconds, targets) in enumerate(rows):
            if not name:
                continue  # "File does not exist!"
            audio = pad_or_truncate(tone(code, seconds, sample_rate)[:, 0], clip_samples)
            target = np.zeros(classes, dtype=bool)
            target[targets] = True
            hf["audio_name"][n] = name.encode()
            hf["waveform"][n] = store(audio)
            hf["target"][n] = target
    return path


def panns_indexes(waveforms_hdf5_path: Path, indexes_hdf5_path: Path) -> Path:
    """``create_indexes.py create_indexes``'s index file of a packed file (``hdf5s/indexes/<name>.h5``), as
    ``utils/create_indexes.py`` (same commit) writes it: names, targets, the packed file's path per row, row."""
    import h5py

    indexes_hdf5_path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(waveforms_hdf5_path, "r") as hr, h5py.File(indexes_hdf5_path, "w") as hw:
        audios_num = len(hr["audio_name"])
        hw.create_dataset("audio_name", data=hr["audio_name"][:], dtype="S20")
        hw.create_dataset("target", data=hr["target"][:], dtype=bool)
        hw.create_dataset("hdf5_path", data=[str(waveforms_hdf5_path).encode()] * audios_num, dtype="S200")
        hw.create_dataset("index_in_hdf5", data=np.arange(audios_num), dtype=np.int32)
    return indexes_hdf5_path


def hf_parquet(path: Path, rows: list[tuple[str, int, float, list[str]]], *, rate: int = 48000, channels: int = 2,
               row_group_size: int = 4) -> Path:
    """A Hugging Face AudioSet mirror's parquet file: ``video_id``, ``audio`` {bytes, path} (24-bit FLAC), labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "video_id": [r[0] for r in rows],
        "audio": [{"bytes": encode(tone(code, seconds, rate, channels), rate, "FLAC", "PCM_24"),
                   "path": f"{ytid}.flac"} for ytid, code, seconds, _ in rows],
        "labels": [r[3] for r in rows],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def hf_dataset(path: Path, columns: dict[str, list], *, audio=None) -> Path:
    """A parquet file written by the ``datasets`` library itself: ``Dataset.from_dict(columns)``, the ``audio``
    column cast to ``audio`` (an ``Audio()`` feature) where given, then ``to_parquet``."""
    from datasets import Dataset

    dataset = Dataset.from_dict(columns)
    if audio is not None:
        dataset = dataset.cast_column("audio", audio)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.to_parquet(str(path))
    return path


def pq_row_groups(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_row_groups


def audio_bytes(code: int, seconds: float, fmt: str, rate: int = 44100) -> bytes:
    """Encoded bytes of the clip coded ``code`` in ``fmt`` (WAV, FLAC, OGG (Vorbis), MP3)."""
    return encode(tone(code, seconds, rate), rate, fmt, {"OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}.get(fmt))


def webdataset(path: Path, samples: list[tuple[str, int, float, str]], *, ext: str = "flac") -> Path:
    """A WebDataset shard: ``sample-%09d.<ext>`` + ``.json`` ({"id": ...}) per (id, code, seconds, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for i, (ytid, code, seconds, _) in enumerate(samples):
            key = f"sample-{i:09d}"
            fmt = "FLAC" if ext == "flac" else "WAV"
            for name, data in ((f"{key}.{ext}", encode(tone(code, seconds, 16000), 16000, fmt)),
                               (f"{key}.json", json.dumps({"id": ytid}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path
