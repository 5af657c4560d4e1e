"""``audiobench import``: copies in each format's real layout, built here with position-coded audio, adopted
against the real published SL-DCASE-17 lists (their real YouTube IDs and segments)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.core.records import ClipStatus
from audiobench.data.imports.copies import import_copies
from audiobench.data.imports.match import Catalog
from audiobench.data.ledger import Ledger
from audiobench.data.register import register_dataset
import copies
from copies import code_of

DATASET = "sl-dcase17"


@pytest.fixture
def listed(tmp_path, reference_dir):
    """The test split's clips of SL-DCASE-17 as registered (the first few have plain IDs; ``Y…`` ones too)."""
    register_dataset(DATASET, root=tmp_path / "data", mirror=str(reference_dir))
    with Ledger(DatasetPaths(tmp_path / "data", DATASET).ledger) as ledger:
        rows = ledger.statuses(split="test")
    plain = [r for r in rows if r.source_id[0].isalnum() and not r.source_id.startswith("Y")]
    with_y = [r for r in rows if r.source_id.startswith("Y")]
    return plain, with_y


def _import(tmp_path, reference_dir, *paths, **options):
    return import_copies(DATASET, list(paths), root=tmp_path / "data", index_mirror=str(reference_dir), quiet=True,
                         **options)


def _rows(tmp_path) -> dict[str, dict]:
    with sqlite3.connect(DatasetPaths(tmp_path / "data", DATASET).ledger) as db:
        db.row_factory = sqlite3.Row
        return {r["clip_id"]: dict(r) for r in db.execute("SELECT * FROM clips")}


def _raw(tmp_path, row: dict) -> Path:
    return DatasetPaths(tmp_path / "data", DATASET).dir / row["path"]


# -- matching ------------------------------------------------------------------------------------------------
def _status(ytid: str, start: float, end: float) -> ClipStatus:
    return ClipStatus(f"{ytid}_{round(start * 1000)}_{round(end * 1000)}", "test", ytid, start, end, "pending")


def test_names_resolve_against_the_listed_ids_never_by_length():
    catalog = Catalog([_status("YP5NMmYsHt0", 30, 40), _status("-ab_12345_x", 0, 10), _status("twice000001", 0, 10),
                       _status("twice000001", 20, 30), _status("abc", 5, 15)])
    assert catalog.resolve("YYP5NMmYsHt0").clip.source_id == "YP5NMmYsHt0"  # PANNs' Y + an ID that starts with Y
    assert catalog.resolve("YP5NMmYsHt0").clip.source_id == "YP5NMmYsHt0"
    assert catalog.resolve("YYP5NMmYsHt0_30.000_40.000").kind == "matched"  # DCASE cut
    assert catalog.resolve("-ab_12345_x_0_10000").clip.source_id == "-ab_12345_x"  # '_' and digits inside the ID
    assert catalog.resolve("abc_5.0-15.0").kind == "matched"  # audioset-download, any ID length
    assert catalog.resolve("abc_5000").kind == "matched"  # strong-label sets: the start in ms
    assert catalog.resolve("abc_5000_12000").kind == "matched"  # audiosetdl: the video ended early
    assert catalog.resolve("twice000001").kind == "ambiguous"  # no segment, two listed
    assert catalog.resolve("twice000001_20000_30000").clip.start == 20
    mismatch = catalog.resolve("Yabc_10.000_20.000")
    assert mismatch.kind == "segment-mismatch" and mismatch.clip.source_id == "abc"
    assert "10.000-20.000 s" in mismatch.reason and "5.000-15.000 s" in mismatch.reason
    assert catalog.resolve("abcd").kind == "not-listed" and catalog.resolve("P5NMmYsHt0").kind == "not-listed"


# -- each format -----------------------------------------------------------------------------------------------
def test_dcase2017_cuts_are_adopted_and_the_traps_reported(tmp_path, reference_dir, listed):
    plain, _ = listed
    a, b, c, d, e = plain[:5]
    copy = tmp_path / "dcase" / "audio"
    copies.dcase_cut(copy, a.source_id, a.start, a.end, 1)
    copies.dcase_cut(copy, b.source_id, b.start, b.end, 2, seconds=6.0)  # the video ended early
    copies.write(copy / f"Y{b.source_id}.wav", copies.tone(9, b.end + 5, 44100), 44100)  # the whole video beside
    copies.dcase_cut(copy, c.source_id, c.start + 5, c.end + 5, 3)  # start 5 s off
    copies.dcase_cut(copy, d.source_id, d.start, d.end, 4, seconds=1.0)  # 1 s for a 10 s segment
    copies.dcase_cut(copy, e.source_id, e.start, e.end, 5, suffix=".flac")  # as dcase_util keeps them
    result = _import(tmp_path, reference_dir, copy)
    assert result.formats == {str(copy): "dcase2017"} and "read as dcase2017" in result.summary()
    assert result.adopted == 3 and dict(result.rejected) == {"segment-mismatch": 1, "too-long": 1, "too-short": 1}
    rows = _rows(tmp_path)
    assert [code_of(_raw(tmp_path, rows[x.clip_id])) for x in (a, b, e)] == [1, 2, 5]
    assert rows[b.clip_id]["duration"] == pytest.approx(6.0)
    assert rows[e.clip_id]["path"] == f"raw/test/{e.clip_id}.flac"
    assert rows[c.clip_id]["status"] == "pending" and "differs from the lists" in rows[c.clip_id]["last_error"]
    assert rows[d.clip_id]["status"] == "pending" and "under half" in rows[d.clip_id]["last_error"]
    origin = json.loads(rows[a.clip_id]["origin"])
    assert origin == {"via": "import", "format": "dcase2017", "copy": str(copy.resolve()),
                      "member": f"Y{a.source_id}_{a.start:.3f}_{a.end:.3f}.wav", "sha256": rows[a.clip_id]["sha256"],
                      "codec": "pcm_16", "sample_rate": 44100, "channels": 2}  # DCASE's 44.1 kHz stereo cuts


def test_downloader_folders_with_every_trap(tmp_path, reference_dir, listed):
    plain, with_y = listed
    a, b, c, d, e, f, g = plain[:7]
    y = with_y[0]
    copy = tmp_path / "audioset"
    copies.panns_wav(copy, a.source_id, 1)
    copies.write(copy / f"_Y{g.source_id}.wav", copies.tone(7, 10, 32000), 32000)  # a killed PANNs run's leftover
    copies.audiosetdl(copy, b.source_id, b.start, b.end, 2)
    copies.audioset_download(copy, ["Car", "Train"], c.source_id, c.start, c.end, 3)  # copied into each label's folder
    copies.panns_wav(copy, y.source_id, 8)  # Y + an ID that itself starts with Y
    copies.panns_wav(copy, d.source_id, 4)
    copies.audiosetdl(copy / "zz", d.source_id, d.start, d.end, 6)  # a duplicate with other audio, sorted after
    (copy / f"Y{e.source_id}.wav").write_text("not audio at all\n")  # a text file with an audio extension
    (copy / f"{f.source_id}_{round(f.start * 1000)}.flac").write_bytes(b"")  # an empty file
    full = copies.encode(copies.tone(5, 10, 44100), 44100, "FLAC")
    (copy / f"{g.source_id}.flac").write_bytes(full[: len(full) // 2])  # truncated
    copies.panns_wav(copy, "notlisted01", 9)  # an ID not listed
    (copy / "notes.csv").write_text("a,b\n")  # not audio by its name: not an entry
    result = _import(tmp_path, reference_dir, copy, jobs=2)
    assert result.formats == {str(copy): "audioset-wav"}
    assert result.adopted == 5 and result.not_listed == 1
    assert result.identical == 1 and result.duplicates == 1
    assert dict(result.rejected) == {"partial": 1, "undecodable": 2, "empty": 1}
    rows = _rows(tmp_path)
    assert {x.source_id: code_of(_raw(tmp_path, rows[x.clip_id])) for x in (a, b, c, d, y)} == {
        a.source_id: 1, b.source_id: 2, c.source_id: 3, d.source_id: 4, y.source_id: 8}
    by_member = {r.member: r.reason for r in result.rejected_entries}
    assert "empty file" in by_member[f"{f.source_id}_{round(f.start * 1000)}.flac"]
    assert "corrupt" in by_member[f"{g.source_id}.flac"] or "truncated" in by_member[f"{g.source_id}.flac"]
    for clip in (e, f, g):
        assert rows[clip.clip_id]["status"] == "pending" and rows[clip.clip_id]["last_error"].startswith("import: ")


def test_audioset_download_default_vorbis_files_are_read(tmp_path, reference_dir, listed):
    """audioset-download's default run leaves ``<label>/<ytid>_<start>-<end>.ogg.ogg`` (yt-dlp's extension added)."""
    a, b = listed[0][:2]
    copy = tmp_path / "audioset"
    first = copies.audioset_download_vorbis(copy, ["Car", "Train"], a.source_id, a.start, a.end, 1)
    copies.audioset_download_vorbis(copy, ["Train"], b.source_id, b.start, b.end, 2)
    assert first.name == f"{a.source_id}_{float(a.start)}-{float(a.end)}.ogg.ogg"
    result = _import(tmp_path, reference_dir, copy)
    assert result.formats == {str(copy): "audioset-wav"}
    assert (result.adopted, result.not_listed, dict(result.rejected)) == (2, 0, {}), result.summary()
    rows = _rows(tmp_path)
    assert [code_of(_raw(tmp_path, rows[x.clip_id])) for x in (a, b)] == [1, 2]
    assert rows[a.clip_id]["path"] == f"raw/test/{a.clip_id}.ogg"
    assert json.loads(rows[a.clip_id]["origin"])["member"] == f"Car/{first.name}"


def test_panns_hdf5_rows_trimmed_of_their_padding(tmp_path, reference_dir, listed):
    plain, with_y = listed
    a, b, c = plain[:3]
    y = with_y[0]
    path = copies.panns_hdf5(tmp_path / "balanced_train.h5", [
        (f"Y{a.source_id}.wav", 1, 10.0, [300]), ("", 0, 0, []),  # a row never downloaded
        (f"Y{b.source_id}.wav", 2, 6.0, []),  # zero-padded from 6 s
        (f"Y{c.source_id}.wav", 3, 1.0, []), (f"Y{y.source_id}.wav", 4, 10.0, [])])
    result = _import(tmp_path, reference_dir, path)
    assert result.formats == {str(path): "panns-hdf5"} and result.adopted == 3
    assert dict(result.rejected) == {"too-short": 1}
    rows = _rows(tmp_path)
    assert rows[b.clip_id]["duration"] == pytest.approx(6.0)
    assert copies.sf.info(_raw(tmp_path, rows[b.clip_id])).duration == pytest.approx(6.0)
    assert [code_of(_raw(tmp_path, rows[x.clip_id])) for x in (a, b, y)] == [1, 2, 4]
    assert json.loads(rows[y.clip_id]["origin"])["member"] == "balanced_train.h5#4"


@pytest.mark.parametrize("dtype", ["int16", "int32", "float32", "float64"])
def test_panns_waveforms_of_every_sample_type_keep_their_level(tmp_path, reference_dir, listed, dtype):
    """int16 / 32768, int32 / 2^31, floats as they are: a 0.5-amplitude tone stays at 0.5, not near silence."""
    a = listed[0][0]
    path = copies.panns_hdf5(tmp_path / "eval.h5", [(f"Y{a.source_id}.wav", 3, 10.0, [])], dtype=dtype)
    result = _import(tmp_path, reference_dir, path)
    assert result.adopted == 1, result.summary()
    row = _rows(tmp_path)[a.clip_id]
    assert code_of(_raw(tmp_path, row)) == 3
    for audio in (_raw(tmp_path, row), DatasetPaths(tmp_path / "data", DATASET).dir / f"audio/test/{a.clip_id}.flac"):
        samples, _ = copies.sf.read(audio, dtype="float32")
        assert np.abs(samples).max() == pytest.approx(0.5, abs=0.01)


def _rewrite(path: Path, **datasets) -> None:
    """Replace datasets (or, for ``sample_rate``, the attribute) of a packed file."""
    import h5py

    with h5py.File(path, "r+") as f:
        for name, value in datasets.items():
            if name == "sample_rate":
                f.attrs[name] = value
            else:
                data = value(f) if callable(value) else value
                del f[name]
                f.create_dataset(name, data=data)


_TONE = (0.5 * np.sin(np.arange(320000) / 10) * 32767).astype(np.int16)
_ODD_PANNS = {  # what is wrong -> (what the file gets, what the one line says)
    "1-D waveform": (dict(waveform=np.concatenate([_TONE, _TONE])), "waveform has shape (640000,)"),
    "3-D waveform": (dict(waveform=np.stack([_TONE[None], _TONE[None]])), "waveform has shape (2, 1, 320000)"),
    "zero-length rows": (dict(waveform=np.zeros((2, 0), np.int16)), "waveform has shape (2, 0)"),
    "fewer waveform rows": (dict(waveform=_TONE[None]), "audio_name has 2 rows but waveform 1"),
    "uint8 samples": (dict(waveform=np.zeros((2, 10), np.uint8)), "waveform is uint8"),
    "rate 0": (dict(sample_rate=0), "sample_rate = 0 is not a sample rate"),
    "rate as text": (dict(sample_rate="32k"), "sample_rate = '32k' is not a sample rate"),
    "two rates": (dict(sample_rate=[32000, 16000]), "sample_rate = [32000, 16000] is not a sample rate"),
    "names not UTF-8": (dict(audio_name=lambda f: np.array([b"\xff\xfe.wav", f["audio_name"][1]], "S20")),
                        "row 0: audio_name b'\\xff\\xfe.wav' is not UTF-8 text"),
    "names as numbers": (dict(audio_name=np.arange(2)), "audio_name is int64"),
    "names in 2-D": (dict(audio_name=lambda f: f["audio_name"][:][None]), "audio_name is |S20 of shape (1, 2)"),
}


@pytest.mark.parametrize("case", sorted(_ODD_PANNS))
def test_odd_panns_files_are_one_line_errors_naming_the_file(tmp_path, reference_dir, listed, case):
    a, b = listed[0][:2]
    path = copies.panns_hdf5(tmp_path / "eval.h5", [(f"Y{a.source_id}.wav", 1, 10.0, []),
                                                     (f"Y{b.source_id}.wav", 2, 10.0, [])])
    change, said = _ODD_PANNS[case]
    _rewrite(path, **change)
    out = CliRunner().invoke(cli, ["import", DATASET, str(path), "--root", str(tmp_path / "data"),
                                   "--index-mirror", str(reference_dir), "--quiet"])
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit), out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and said in lines[0], out.output


def test_panns_index_files_are_skipped_with_a_notice(tmp_path, reference_dir, listed):
    """A PANNs workspace's hdf5s/ folder: waveforms/*.h5 are read, create_indexes.py's indexes/*.h5 passed over."""
    a, b = listed[0][:2]
    hdf5s = tmp_path / "workspaces" / "audioset_tagging" / "hdf5s"
    (hdf5s / "waveforms").mkdir(parents=True)
    packed = copies.panns_hdf5(hdf5s / "waveforms" / "eval.h5", [(f"Y{a.source_id}.wav", 1, 10.0, []),
                                                                 (f"Y{b.source_id}.wav", 2, 10.0, [])])
    copies.panns_indexes(packed, hdf5s / "indexes" / "eval.h5")
    out = CliRunner().invoke(cli, ["import", DATASET, str(hdf5s), "--root", str(tmp_path / "data"),
                                   "--index-mirror", str(reference_dir), "--quiet", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["adopted"] == 2 and data["rejected"] == {}
    assert data["notices"] == [f"indexes/eval.h5: a PANNs index file (create_indexes.py: names and targets, no "
                               f"waveforms; they are packed in {packed})"]
    alone = CliRunner().invoke(cli, ["import", DATASET, str(hdf5s / "indexes"), "--root", str(tmp_path / "other"),
                                     "--index-mirror", str(reference_dir), "--quiet"])
    assert alone.exit_code == 2 and "Skipped eval.h5: a PANNs index file" in alone.output


def test_hf_parquet_rows_in_row_groups_with_label_checks(tmp_path, reference_dir, listed):
    plain, _ = listed
    with Ledger(DatasetPaths(tmp_path / "data", DATASET).ledger) as ledger:
        mids = [c.mid for c in ledger.classes()]
        weak = {c.clip_id: c.weak for c in ledger.clips(split="test")}
    a, b, c = plain[:3]
    copies.hf_parquet(tmp_path / "hf" / "data" / "eval" / "00000.parquet", [
        ("notlisted01", 9, 10.0, ["/m/09x0r"]),
        (a.source_id, 1, 10.0, [mids[i] for i in weak[a.clip_id]] + ["/m/09x0r"]),  # agrees (Speech is no class here)
        (b.source_id, 2, 10.0, [mids[(weak[b.clip_id][0] + 1) % len(mids)]]),  # disagrees
        (c.source_id, 3, 10.0, [])], row_group_size=2)
    result = _import(tmp_path, reference_dir, tmp_path / "hf")
    assert result.formats == {str(tmp_path / "hf"): "hf-parquet"}
    assert (result.adopted, result.not_listed, result.label_disagreements) == (3, 1, 1)
    rows = _rows(tmp_path)
    raw = _raw(tmp_path, rows[c.clip_id])
    assert code_of(raw) == 3 and copies.sf.info(raw).samplerate == 48000 and copies.sf.info(raw).channels == 2
    assert json.loads(rows[c.clip_id]["origin"])["member"] == "data/eval/00000.parquet#3"


def test_hf_rows_without_paths_are_named_by_their_container(tmp_path, reference_dir, listed):
    """``Dataset.from_dict`` + ``cast_column(Audio())`` rows: bytes and no path; each kept under its own suffix."""
    from datasets import Audio

    clips = listed[0][:5]
    formats = ["WAV", "FLAC", "OGG", "MP3", "WAV"]
    path = copies.hf_dataset(tmp_path / "hf" / "train.parquet", {
        "video_id": [c.source_id for c in clips],
        "audio": [{"bytes": copies.audio_bytes(i, 10.0, fmt), "path": None} for i, fmt in enumerate(formats[:4])]
        + [{"bytes": copies.audio_bytes(4, 10.0, "WAV"), "path": "named-wrong.flac"}],  # the bytes win
    }, audio=Audio())
    result = _import(tmp_path, reference_dir, path)
    assert result.adopted == 5, result.summary()
    rows = _rows(tmp_path)
    assert [rows[c.clip_id]["path"].rsplit(".", 1)[1] for c in clips] == ["wav", "flac", "ogg", "mp3", "wav"]
    assert [code_of(_raw(tmp_path, rows[c.clip_id])) for c in clips] == [0, 1, 2, 3, 4]


def test_hf_audio_given_as_paths_or_decoded_samples_is_read(tmp_path, reference_dir, listed, monkeypatch):
    """``Audio(decode=False)`` of local files (``to_parquet`` keeps the paths), a column of path strings, and a
    decoded {array, sampling_rate} struct; a path to no file is refused in one line."""
    from datasets import Audio

    a, b, c, d, e = listed[0][:5]
    folder = tmp_path / "hf"
    copies.write(folder / "clips" / "a.flac", copies.tone(1, 10.0, 44100), 44100)
    absolute = copies.write(tmp_path / "elsewhere" / "b.wav", copies.tone(2, 10.0, 32000), 32000)
    gone = copies.write(folder / "clips" / "gone.flac", copies.tone(3, 10.0, 44100), 44100)
    monkeypatch.chdir(folder)  # datasets sizes the files it names: relative paths from the parquet's folder
    copies.hf_dataset(folder / "paths.parquet", {"video_id": [a.source_id, b.source_id, c.source_id],
                                                 "audio": ["clips/a.flac", str(absolute), "clips/gone.flac"]},
                      audio=Audio(decode=False))
    gone.unlink()  # moved since
    copies.write(folder / "clips" / "d.wav", copies.tone(4, 10.0, 22050), 22050)
    copies.hf_dataset(folder / "strings.parquet", {"video_id": [d.source_id], "audio": ["clips/d.wav"]})
    copies.hf_dataset(folder / "decoded.parquet", {"video_id": [e.source_id], "audio": [
        {"array": copies.tone(5, 10.0, 16000)[:, 0].astype(np.float64), "sampling_rate": 16000}]})
    result = _import(tmp_path, reference_dir, folder)
    assert result.adopted == 4, result.summary()
    assert dict(result.rejected) == {"missing-file": 1}
    assert "audio path clips/gone.flac: no such file" in result.rejected_entries[0].reason
    rows = _rows(tmp_path)
    assert [code_of(_raw(tmp_path, rows[x.clip_id])) for x in (a, b, d, e)] == [1, 2, 4, 5]
    assert rows[c.clip_id]["last_error"].startswith("import: paths.parquet#2: audio path clips/gone.flac")
    samples, _ = copies.sf.read(_raw(tmp_path, rows[e.clip_id]), dtype="float32")
    assert np.abs(samples).max() == pytest.approx(0.5, abs=0.01)  # decoded floats kept at their level
    odd = copies.hf_dataset(tmp_path / "odd.parquet", {"video_id": [a.source_id], "audio": [3]})
    out = CliRunner().invoke(cli, ["import", DATASET, str(odd), "--root", str(tmp_path / "data"),
                                   "--index-mirror", str(reference_dir), "--quiet"])
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit)
    assert out.output.strip().splitlines() == [f"error: {odd}: the audio column holds int64; expected encoded "
                                               "audio ({bytes, path}, as the datasets Audio feature stores it), a "
                                               "file path, or decoded mono samples ({array: list<float>, "
                                               "sampling_rate: int})"]


@pytest.mark.slow
def test_a_big_row_group_and_an_hour_long_row_import_in_bounded_memory(tmp_path, reference_dir, listed):
    """One row group (as datasets writes a small file) of 24 clips of 48 kHz stereo FLAC and a row holding an
    hour: rows are read a few at a time, and the hour is refused by its header, not decoded (600 MB before)."""
    from datasets import Audio

    clips = listed[0][:25]
    hour = np.zeros((3600 * 16000, 1), np.float32)
    hour[:16000, 0] = 0.5 * np.sin(np.arange(16000) / 5)
    rng = np.random.default_rng(0)
    audio = [{"bytes": copies.encode(hour, 16000, "FLAC"), "path": None}]
    del hour
    for i in range(24):
        x = copies.tone(i, 10.0, 48000, 2) + 0.05 * rng.standard_normal((480000, 2)).astype(np.float32)
        audio.append({"bytes": copies.encode(x, 48000, "FLAC", "PCM_24"), "path": None})
    path = copies.hf_dataset(tmp_path / "big.parquet", {"video_id": [c.source_id for c in clips], "audio": audio},
                             audio=Audio())
    del audio
    assert copies.pq_row_groups(path) == 1
    code = ("import json, sys; from pathlib import Path; from audiobench.data.imports.copies import import_copies; "
            "from audiobench.testing.memory import peak_rss_mb; "
            f"r = import_copies({DATASET!r}, [Path({str(path)!r})], root=Path({str(tmp_path / 'data')!r}), "
            f"index_mirror={str(reference_dir)!r}, jobs=2, quiet=True); "
            "print(json.dumps([r.to_dict(), peak_rss_mb()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result, peak = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["adopted"] >= 20
    refused = [e for e in result["rejected_entries"] if e["member"] == "big.parquet#0"]
    assert "3600.00 s of audio by its header" in refused[0]["reason"] and "not decoded" in refused[0]["reason"]
    assert peak < 400, f"peak RSS {peak:.0f} MB"


def test_webdataset_shards_read_as_a_stream(tmp_path, reference_dir, listed):
    plain, with_y = listed
    a, b = plain[:2]
    y = with_y[0]
    shard = copies.webdataset(tmp_path / "shards" / "shard-000000.tar", [
        (f"Y{a.source_id}", 1, 10.0, ""), (b.source_id, 2, 10.0, ""), (f"Y{y.source_id}", 3, 10.0, ""),
        ("", 4, 10.0, "")])
    result = _import(tmp_path, reference_dir, shard)
    assert result.formats == {str(shard): "webdataset"} and result.adopted == 3
    assert dict(result.rejected) == {"partial": 1}  # the sample whose JSON has no id
    rows = _rows(tmp_path)
    assert [code_of(_raw(tmp_path, rows[x.clip_id])) for x in (a, b, y)] == [1, 2, 3]
    assert json.loads(rows[b.clip_id]["origin"])["member"] == "shard-000000.tar:sample-000000001.flac"


def _wds_shard(path: Path, samples: list[dict], *, compress: bool = False) -> Path:
    """A shard written by webdataset's own TarWriter: one ``sample%06d`` per dict of extension -> value."""
    wds = pytest.importorskip("webdataset")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wds.TarWriter(str(path), compress=compress) as sink:
        for i, sample in enumerate(samples):
            sink.write({"__key__": f"sample{i:06d}", **sample})
    return path


def _clip_sample(clip, code: int) -> dict:
    return {"flac": copies.encode(copies.tone(code, clip.end - clip.start, 16000), 16000, "FLAC"),
            "json": {"id": clip.source_id, "labels": []}}


def _cli_import(tmp_path, reference_dir, *paths: Path):
    """``audiobench import`` as a user runs it: its exit code, its summary line and its ``--json``."""
    base = ["import", DATASET, *map(str, paths), "--root", str(tmp_path / "data"), "--index-mirror",
            str(reference_dir), "--quiet"]
    plain = CliRunner().invoke(cli, base)
    as_json = CliRunner().invoke(cli, [*base, "--json"])  # a rerun: nothing more adopted, the same rejections
    return plain, json.loads(as_json.stdout)


def test_webdataset_s_own_shards_are_read(tmp_path, reference_dir, listed):
    plain, _ = listed
    shards = [_wds_shard(tmp_path / "shards" / "a-000000.tar", [_clip_sample(c, i) for i, c in enumerate(plain[:2])]),
              _wds_shard(tmp_path / "shards" / "b-000000.tar.gz", [_clip_sample(plain[2], 2)], compress=True)]
    result = _import(tmp_path, reference_dir, tmp_path / "shards")
    assert result.formats == {str(tmp_path / "shards"): "webdataset"} and result.adopted == 3 and not result.rejected
    rows = _rows(tmp_path)
    assert [code_of(_raw(tmp_path, rows[c.clip_id])) for c in plain[:3]] == [0, 1, 2]
    assert json.loads(rows[plain[2].clip_id]["origin"])["member"] == f"{shards[1].name}:sample000000.flac"


def test_a_cut_shard_adopts_every_whole_sample_before_the_cut_and_names_it(tmp_path, reference_dir, listed):
    plain, _ = listed
    shard = _wds_shard(tmp_path / "shard.tar", [_clip_sample(c, i) for i, c in enumerate(plain[:4])])
    import tarfile

    with tarfile.open(shard) as tar:
        cut = tar.getmember("sample000002.flac").offset_data + 1000  # inside the third sample's audio
    shard.write_bytes(shard.read_bytes()[:cut])
    summary, data = _cli_import(tmp_path, reference_dir, shard)
    assert summary.exit_code == 0, summary.output
    assert f"damaged: shard.tar: the shard ends (cut short) at byte {cut}, inside member sample000002.flac; " \
           "the 2 whole samples before it taken" in summary.stdout
    assert data["already_had"] == 2 and data["rejected"] == {"damaged": 1}
    rows = _rows(tmp_path)
    assert [rows[c.clip_id]["status"] for c in plain[:4]] == ["ok", "ok", "pending", "pending"]


def _flip_header(path: Path, member: str, *, zero: bool = False) -> None:
    import tarfile

    with tarfile.open(path) as tar:
        at = tar.getmember(member).offset
    data = bytearray(path.read_bytes())
    data[at:at + 512] = bytes(512) if zero else bytes(b ^ 0x5A for b in data[at:at + 512])
    path.write_bytes(bytes(data))


def _cut_gzip(path: Path, fraction: float) -> int:
    """Cut a compressed shard at ``fraction`` of its bytes; returns how many samples are whole before the cut."""
    import gzip
    import tarfile
    import zlib

    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    left = len(zlib.decompressobj(wbits=31).decompress(data[:int(len(data) * fraction)]))
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        ends = [m.offset_data + m.size for m in tar.getmembers() if m.name.endswith(".json")]
    return sum(end <= left for end in ends)


def _flip_gzip_crc(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 of the gzip trailer
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("kind", "adopted", "says"), [
    ("corrupt header in the middle", 2, "a damaged tar header at byte"),
    ("zeroed header in the middle", 2, "data after the end-of-archive blocks"),
    ("gzip CRC error", 0, "the gzip stream is damaged (CRC check failed"),
    ("gzip cut short", None, "the compressed stream ends early"),
    ("garbage", 0, "before its first member; the 0 whole samples"),
])
def test_a_damaged_shard_is_a_notice_with_counts_never_a_silent_short_import(tmp_path, reference_dir, listed, kind,
                                                                             adopted, says):
    plain, _ = listed
    compress = kind.startswith("gzip")
    shard = _wds_shard(tmp_path / ("shard.tar.gz" if compress else "shard.tar"),
                       [_clip_sample(c, i) for i, c in enumerate(plain[:4])], compress=compress)
    if kind == "corrupt header in the middle":
        _flip_header(shard, "sample000002.flac")
    elif kind == "zeroed header in the middle":
        _flip_header(shard, "sample000002.flac", zero=True)
    elif kind == "gzip CRC error":
        _flip_gzip_crc(shard)
    elif kind == "gzip cut short":
        adopted = _cut_gzip(shard, 0.6)
    else:
        shard.write_bytes(os.urandom(20000))
    summary, data = _cli_import(tmp_path, reference_dir, shard)
    assert summary.exit_code == (0 if adopted else 2), summary.output
    assert f"damaged: {shard.name}: " in summary.stdout and says in summary.stdout, summary.stdout
    assert data["adopted"] + data["already_had"] == adopted and data["rejected"]["damaged"] == 1
    assert sum(r["status"] == "ok" for r in _rows(tmp_path).values()) == adopted


def test_a_deep_or_huge_sidecar_is_refused_in_one_line_naming_its_member(tmp_path, reference_dir, listed):
    plain, _ = listed
    a, b, c, d = plain[:4]
    deep = _clip_sample(b, 2) | {"json": b"[" * 200_000 + b"]" * 200_000}
    huge = _clip_sample(c, 3) | {"json": json.dumps({"id": c.source_id, "pad": "x" * (2 * 2**20)}).encode()}
    cls = _clip_sample(d, 4) | {"json": {"id": d.source_id}, "cls": b"\xff\xfe not a class"}
    shard = _wds_shard(tmp_path / "shard.tar", [_clip_sample(a, 1), deep, huge, cls])
    result = _import(tmp_path, reference_dir, shard)
    assert result.adopted == 1 and dict(result.rejected) == {"metadata": 3}
    reasons = {e.member: e.reason for e in result.rejected_entries}
    assert reasons["shard.tar:sample000001.flac"] == "sample000001.json is nested too deeply to read"
    assert reasons["shard.tar:sample000002.flac"].startswith("sample000002.json is 2097")
    assert reasons["shard.tar:sample000003.flac"].startswith("sample000003.cls is not class numbers")
    assert all("\n" not in r for r in reasons.values())


def test_unneeded_tar_members_are_skipped_unread(tmp_path, reference_dir, listed):
    """A 300 MB member that is not audio and a 40 MB audio member of an unlisted clip: neither is read into
    memory (peak RSS of the importing process, from the resource module)."""
    import tarfile

    plain, _ = listed
    shard = tmp_path / "big.tar"

    class Zeros(io.RawIOBase):
        def readinto(self, b):  # tarfile copies a member from this in chunks: the test holds none of it
            b[:] = bytes(len(b))
            return len(b)

    with tarfile.open(shard, "w") as tar:
        def add(name: str, data: bytes | None, size: int = 0) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data) if data is not None else size
            tar.addfile(info, io.BytesIO(data) if data is not None else Zeros())
        sample = _clip_sample(plain[0], 1)
        add("sample0.flac", sample["flac"])
        add("sample0.json", json.dumps(sample["json"]).encode())
        add("sample1.npy", None, 300 * 2**20)
        add("sample1.json", json.dumps({"id": plain[1].source_id}).encode())
        add("sample2.wav", None, 40 * 2**20)
        add("sample2.json", b'{"id": "notlisted01"}')
    script = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from audiobench.data.imports.copies import import_copies\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "r = import_copies(sys.argv[1], [Path(sys.argv[2])], root=Path(sys.argv[3]), index_mirror=sys.argv[4],"
        " quiet=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'adopted': r.adopted, 'not_listed': r.not_listed, 'grew_mb': (peak - before) / 1024}))\n")
    out = subprocess.run([sys.executable, "-c", script, DATASET, str(shard), str(tmp_path / "data"),
                          str(reference_dir)], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert (seen["adopted"], seen["not_listed"]) == (1, 1)
    assert seen["grew_mb"] < 200, seen  # the old reader held every member whole: 340 MB and more


# -- incremental, mixed, command line ------------------------------------------------------------------------
def test_a_rerun_changes_no_row_and_a_second_copy_fills_only_the_gaps(tmp_path, reference_dir, listed):
    plain, _ = listed
    a, b, c = plain[:3]
    first = tmp_path / "first"
    copies.panns_wav(first, a.source_id, 1)
    copies.panns_wav(first, c.source_id, 3, seconds=1.0)  # rejected: its reason is c's last error
    _import(tmp_path, reference_dir, first)
    before = _rows(tmp_path)
    again = _import(tmp_path, reference_dir, first)
    assert (again.adopted, again.already_had) == (0, 1)
    assert _rows(tmp_path) == before  # not one row changed: statuses, errors, timestamps
    second = tmp_path / "second"
    copies.audiosetdl(second, a.source_id, a.start, a.end, 7)
    copies.audiosetdl(second, b.source_id, b.start, b.end, 2)
    more = _import(tmp_path, reference_dir, second, split="test")
    assert (more.adopted, more.already_had) == (1, 1)
    rows = _rows(tmp_path)
    assert code_of(_raw(tmp_path, rows[a.clip_id])) == 1 and code_of(_raw(tmp_path, rows[b.clip_id])) == 2


def test_a_folder_of_mixed_copies(tmp_path, reference_dir, listed):
    plain, _ = listed
    a, b, c = plain[:3]
    mixed = tmp_path / "mixed"
    copies.panns_wav(mixed, a.source_id, 1)
    copies.panns_hdf5(mixed / "packed.h5", [(f"Y{b.source_id}.wav", 2, 10.0, [])])
    copies.webdataset(mixed / "shard.tar", [(c.source_id, 3, 10.0, "")])
    result = _import(tmp_path, reference_dir, mixed)
    assert result.formats == {str(mixed): "folder"} and result.adopted == 3
    formats = {json.loads(r["origin"])["format"] for r in _rows(tmp_path).values() if r["origin"]}
    assert formats == {"folder", "panns-hdf5", "webdataset"}


def test_cli_import_json_status_by_source_and_exit_codes(tmp_path, reference_dir, listed):
    plain, _ = listed
    copy = tmp_path / "copy"
    for i, clip in enumerate(plain[:2]):
        copies.panns_wav(copy, clip.source_id, i)
    base = ["--root", str(tmp_path / "data"), "--index-mirror", str(reference_dir), "--quiet"]
    out = CliRunner().invoke(cli, ["import", DATASET, str(copy), "--json", *base])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["adopted"], data["formats"]) == (2, {str(copy): "audioset-wav"})
    status = CliRunner().invoke(cli, ["status", DATASET, "--root", str(tmp_path / "data"), "--no-per-class"])
    assert status.exit_code == 0 and "import audioset-wav" in status.output
    assert "2" in status.output.split("import audioset-wav")[1].splitlines()[0]
    junk = tmp_path / "junk"
    copies.panns_wav(junk, "notlisted01", 1)
    nothing = CliRunner().invoke(cli, ["import", DATASET, str(junk), *base])
    assert nothing.exit_code == 2 and "1 entries name no listed clip" in nothing.output
    assert "error: nothing of sl-dcase17 could be adopted" in nothing.output
    bad = CliRunner().invoke(cli, ["import", DATASET, str(tmp_path / "absent"), *base])
    assert bad.exit_code == 2 and "no such file or folder" in bad.output


def test_status_per_source_names_the_codec_and_rate_of_imported_clips(tmp_path, reference_dir, listed):
    """Two copies of different codecs: the per-source table says which clips came in which, never "?"."""
    plain, _ = listed
    a, b, c = plain[:3]
    copies.audioset_download_vorbis(tmp_path / "vorbis", ["Car"], a.source_id, a.start, a.end, 1)
    copies.panns_wav(tmp_path / "wavs", b.source_id, 2)
    h5 = copies.panns_hdf5(tmp_path / "balanced_train.h5", [(f"Y{c.source_id}.wav", 3, 10.0, [])], dtype="float32")
    assert _import(tmp_path, reference_dir, tmp_path / "vorbis", tmp_path / "wavs", h5).adopted == 3
    out = CliRunner().invoke(cli, ["status", DATASET, "--root", str(tmp_path / "data"), "--per-source", "--json"])
    assert out.exit_code == 0, out.output
    streams = {(r["via"], r["codec"], r["sample_rate"], r["clips"]) for r in json.loads(out.output)["streams"]}
    rate = str(copies.sf.info(next((tmp_path / "vorbis").rglob("*.ogg"))).samplerate)
    assert streams == {("import audioset-wav", "vorbis", rate, 1), ("import audioset-wav", "pcm_16", "32000", 1),
                       ("import panns-hdf5", "pcm_float32", "32000", 1)}


def test_a_split_that_does_not_exist_is_a_usage_error(tmp_path, reference_dir, listed):
    copy = copies.panns_wav(tmp_path / "c", listed[0][0].source_id, 1).parent
    with pytest.raises(AudiobenchError, match="--split 'dev'"):
        _import(tmp_path, reference_dir, copy, split="dev")


@pytest.mark.slow
def test_an_imported_dataset_resamples_featurizes_and_compares(tmp_path, reference_dir, one_torch_thread):
    from audiobench.data.resample import resample
    from audiobench.features.featurize import featurize
    from audiobench.study.compare import CompareConfig, compare
    from audiobench.training.options import TrainOptions

    register_dataset(DATASET, root=tmp_path / "data", mirror=str(reference_dir))
    with Ledger(DatasetPaths(tmp_path / "data", DATASET).ledger) as ledger:
        chosen = [r for split in ("train", "val", "test") for r in ledger.statuses(split=split)[:6]]
    copy = tmp_path / "copy"
    for i, row in enumerate(chosen):
        copies.audiosetdl(copy, row.source_id, row.start, row.end, i % 20)
    assert _import(tmp_path, reference_dir, copy, jobs=2).adopted == len(chosen)
    resampled = resample(DATASET, root=tmp_path / "data", quiet=True, backend="threading")
    assert resampled.counts["done"] == len(chosen)  # import wrote the 16 kHz files from what it decoded
    result = featurize(DATASET, root=tmp_path / "data", quiet=True, backend="threading")
    assert sum(s.clips for s in result.splits) == len(chosen) and not result.failures
    options = TrainOptions(epochs=1, width=0.0625, batch_size=8)
    study = compare(CompareConfig(DATASET, ("noatt-weak", "att-strong"), trials=2, train=options),
                    root=tmp_path / "data", quiet=True)
    results = json.loads((study.run_dir / "results.json").read_text())
    assert {v["variant"]: v["test_map"]["n"] for v in results["variants"]} == {"noatt-weak": 2, "att-strong": 2}
    assert (study.run_dir / "report.md").is_file()


@pytest.mark.slow
def test_kill_9_mid_import_leaves_nothing_half_adopted_and_a_rerun_completes(tmp_path, reference_dir, listed):
    clips = listed[0] + listed[1]
    copy = tmp_path / "copy"
    for i, row in enumerate(clips):
        copies.write(copy / f"{row.source_id}_{round(row.start * 1000)}_{round(row.end * 1000)}.flac",
                     copies.tone(i % 30, row.end - row.start, 8000), 8000)
    root = tmp_path / "data"
    args = [sys.executable, "-m", "audiobench.cli", "import", DATASET, str(copy), "--root", str(root),
            "--index-mirror", str(reference_dir), "--quiet"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if sum(r["status"] == "ok" for r in _rows(tmp_path).values()) >= 20:
                break
        except sqlite3.OperationalError:  # the child holds a write lock
            pass
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [r for r in _rows(tmp_path).values() if r["status"] == "ok"]
    assert 20 <= len(done) < len(clips), "the kill should land mid-run"
    for row in done:  # every ok row has its whole file
        assert hashlib.sha256(_raw(tmp_path, row).read_bytes()).hexdigest() == row["sha256"]
    rerun = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["already_had"] == len(done)
    rows = _rows(tmp_path)
    assert all(rows[c.clip_id]["status"] == "ok" for c in clips)
    assert not list((root / DATASET / "raw").glob("*/.*.tmp"))  # the killed run's temporary file is gone


def test_panns_targets_are_compared_with_audioset_labels(tmp_path, reference_dir):
    """A PANNs eval file imported into balanced AudioSet: its ``target`` rows are AudioSet class indices."""
    root = tmp_path / "data"
    register_dataset("audioset-balanced", root=root, mirror=str(reference_dir))
    with Ledger(DatasetPaths(root, "audioset-balanced").ledger) as ledger:
        a, b = ledger.clips(split="test")[:2]
    path = copies.panns_hdf5(tmp_path / "eval.h5", [(f"Y{a.source_id}.wav", 1, 10.0, list(a.weak)),
                                                     (f"Y{b.source_id}.wav", 2, 10.0, [0])])
    result = import_copies("audioset-balanced", [path], root=root, index_mirror=str(reference_dir), quiet=True)
    assert (result.adopted, result.label_disagreements) == (2, 1) and 0 not in b.weak
    assert "1 adopted clips whose labels in the copy differ from the lists (the lists win)" in result.summary()
