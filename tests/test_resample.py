"""resample: real files of many kinds become 16 kHz mono FLAC; bad ones are reported, nothing done is lost."""
from __future__ import annotations

import errno
import hashlib
import json
import sqlite3
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiobench.features.store import feature_file
from audiobench.cli import cli
from audiobench.core.records import ClassInfo, Clip
from audiobench.data.ffmpeg import ffmpeg_exe
from audiobench.core.errors import AudiobenchError
from audiobench.features.vggish import logmel
from audiobench.features.featurize import featurize
from audiobench.core.layout import DatasetPaths, clip_id_for
from audiobench.data.ledger import Ledger
from audiobench.data.resample import resample

CLASSES = [ClassInfo("/m/0k4j", "Car"), ClassInfo("/m/07jdr", "Train")]
GOOD = ("surround", "stereo", "u8", "aac", "opus", "tiny", "cut_short")
BAD = ("truncated", "empty", "text")


def tone(freq: float, seconds: float, rate: int, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.repeat((amp * np.sin(2 * np.pi * freq * t))[:, None], channels, axis=1).astype(np.float32)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """One raw file per case, made once: (file, listed segment seconds)."""
    d = tmp_path_factory.mktemp("sources")
    surround = tone(440, 2.0, 48000, 6, amp=0.6)
    surround[:, 1:] = 0.0  # the tone in one channel of six: the mono mix carries a sixth of it
    sf.write(d / "surround.flac", surround, 48000, subtype="PCM_24")
    sf.write(d / "stereo.wav", tone(440, 2.0, 44100, 2), 44100, subtype="PCM_16")
    sf.write(d / "u8.wav", tone(440, 2.0, 8000), 8000, subtype="PCM_U8")
    ffmpeg("-i", str(d / "stereo.wav"), "-c:a", "aac", "-b:a", "96k", str(d / "aac.m4a"))
    ffmpeg("-i", str(d / "stereo.wav"), "-c:a", "libopus", "-b:a", "64k", str(d / "opus.webm"))
    sf.write(d / "tiny.flac", tone(440, 200 / 16000, 16000), 16000, subtype="PCM_16")  # < 400 samples
    sf.write(d / "cut_short.flac", tone(440, 1.5, 22050, 2), 22050, subtype="PCM_16")  # listed as 2 s
    sf.write(d / "whole.flac", tone(440, 2.0, 16000), 16000, subtype="PCM_16")
    (d / "truncated.flac").write_bytes((d / "whole.flac").read_bytes()[:3000])
    (d / "empty.flac").write_bytes(b"")
    (d / "text.flac").write_text("this is a web page, not audio\n" * 40)
    return {p.stem: p for p in d.iterdir()}


def ytid(name: str) -> str:
    return (name + "_" * 11)[:11]


def cid(name: str) -> str:
    return clip_id_for(ytid(name), 30.0, 32.0)


def make_dataset(root: Path, sources: dict[str, Path], names=GOOD + BAD) -> DatasetPaths:
    """A dataset as fetch leaves it: ledger rows with status ok and their raw files under raw/."""
    paths = DatasetPaths(root, "fetched")
    (paths.raw / "train").mkdir(parents=True)
    with Ledger(paths.ledger) as ledger:
        ledger.set_classes(CLASSES)
        ledger.add_clips([Clip(cid(n), "train", ytid(n), 30.0, 32.0, (0,)) for n in names])
        for n in names:
            rel = f"raw/train/{cid(n)}{sources[n].suffix}"
            shutil.copy(sources[n], paths.dir / rel)
            ledger.mark(cid(n), "ok", path=rel)
    return paths


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    return float(np.fft.rfftfreq(x.size, 1.0 / rate)[np.argmax(np.abs(np.fft.rfft(x * np.hanning(x.size))))])


def test_every_format_becomes_16k_mono_flac_with_its_true_duration(tmp_path, sources):
    paths = make_dataset(tmp_path, sources, GOOD)
    result = resample("fetched", root=tmp_path, quiet=True)
    assert result.counts == {"converted": 7, "done": 0, "failed": 0, "short": 2}
    with Ledger(paths.ledger) as ledger:
        audio = ledger.audio()
    expected = {"surround": 2.0, "stereo": 2.0, "u8": 2.0, "aac": 2.0, "opus": 2.0, "tiny": 200 / 16000,
                "cut_short": 1.5}
    for name, seconds in expected.items():
        record = audio[cid(name)]
        assert record.path == f"audio/train/{cid(name)}.flac"
        x, rate = sf.read(paths.dir / record.path, dtype="float32")
        info = sf.info(paths.dir / record.path)
        assert (rate, info.channels, info.subtype) == (16000, 1, "PCM_16"), name
        assert record.samples == x.size and record.duration == x.size / 16000
        assert record.duration == pytest.approx(seconds, abs=0.06 if name in ("aac", "opus") else 1e-3), name
        assert record.short == (name in ("tiny", "cut_short")), name
        assert record.source_mtime_ns == (paths.dir / "raw" / "train" /
                                          f"{cid(name)}{sources[name].suffix}").stat().st_mtime_ns
        if x.size > 4000:
            assert dominant_frequency(x, 16000) == pytest.approx(440, abs=3), name
    surround, _ = sf.read(paths.dir / audio[cid("surround")].path)
    assert np.abs(surround[2000:-2000]).max() == pytest.approx(0.1, abs=0.005)  # mean of six channels


def test_bad_files_are_reported_by_clip_and_nothing_done_is_lost(tmp_path, sources):
    paths = make_dataset(tmp_path, sources)
    result = resample("fetched", root=tmp_path, quiet=True)
    assert result.counts["converted"] == len(GOOD) and result.counts["failed"] == len(BAD)
    reasons = {r.clip_id: r.reason for r in result.failed}
    assert set(reasons) == {cid(n) for n in BAD}
    assert reasons[cid("empty")] == f"raw/train/{cid('empty')}.flac: empty file (0 bytes)"
    assert "not audio, or corrupt or truncated" in reasons[cid("text")]
    assert "corrupt FLAC: flac decoder lost sync" in reasons[cid("truncated")]
    with Ledger(paths.ledger) as ledger:
        assert {s.clip_id: s.status for s in ledger.statuses()} == {cid(n): "ok" for n in GOOD + BAD}  # kept
        assert set(ledger.audio()) == {cid(n) for n in GOOD}
    assert sorted(p.name for p in (paths.audio / "train").iterdir()) == sorted(f"{cid(n)}.flac" for n in GOOD)
    # Re-fetched (here: replaced by good files), a rerun converts exactly those.
    for n in BAD:
        shutil.copy(sources["whole"], paths.raw / "train" / f"{cid(n)}.flac")
    again = resample("fetched", root=tmp_path, quiet=True)
    assert (again.counts["converted"], again.counts["done"], again.counts["failed"]) == (len(BAD), len(GOOD), 0)


def test_rerun_skips_done_clips_and_redoes_a_changed_source(tmp_path, sources):
    paths = make_dataset(tmp_path, sources, ("stereo", "u8"))
    resample("fetched", root=tmp_path, quiet=True)
    before = (paths.audio / "train" / f"{cid('u8')}.flac").read_bytes()
    assert resample("fetched", root=tmp_path, quiet=True).counts["done"] == 2
    raw = paths.raw / "train" / f"{cid('stereo')}.wav"
    with Ledger(paths.ledger) as ledger:  # the file hashed, by identity: a rerun need not hash it again
        first = ledger.audio()[cid("stereo")]
    assert (first.source_inode, first.source_ctime_ns) == (raw.stat().st_ino, raw.stat().st_ctime_ns)
    os.utime(raw, ns=(raw.stat().st_atime_ns, raw.stat().st_mtime_ns + 10**9))  # touched: same content
    assert resample("fetched", root=tmp_path, quiet=True).counts["done"] == 2
    # Copied over by the same bytes (another inode): hashed again, found the same
    copy = raw.with_suffix(".copy")
    shutil.copy2(raw, copy)
    os.replace(copy, raw)
    assert resample("fetched", root=tmp_path, quiet=True).counts["done"] == 2
    # Replaced by another sound of the same size, its modification time put back (`touch -r`): content decides.
    stamp = raw.stat()
    sf.write(raw, tone(880, 2.0, 44100, 2), 44100, subtype="PCM_16")
    assert raw.stat().st_size == stamp.st_size
    os.utime(raw, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    third = resample("fetched", root=tmp_path, quiet=True)
    assert (third.counts["converted"], third.counts["done"]) == (1, 1)
    assert [r.clip_id for r in third.rows if r.outcome == "converted"] == [cid("stereo")]
    x, _ = sf.read(paths.audio / "train" / f"{cid('stereo')}.flac", dtype="float32")
    assert dominant_frequency(x, 16000) == pytest.approx(880, abs=3)
    assert (paths.audio / "train" / f"{cid('u8')}.flac").read_bytes() == before
    with Ledger(paths.ledger) as ledger:
        record = ledger.audio()[cid("stereo")]
    assert (record.source_bytes, record.source_sha256) == (raw.stat().st_size,
                                                           hashlib.sha256(raw.read_bytes()).hexdigest())


def test_parallel_threads_write_the_same_files(tmp_path, sources):
    one = make_dataset(tmp_path / "one", sources, GOOD)
    two = make_dataset(tmp_path / "two", sources, GOOD)
    resample("fetched", root=tmp_path / "one", quiet=True)
    result = resample("fetched", root=tmp_path / "two", jobs=2, backend="threading", quiet=True)
    assert result.counts["converted"] == len(GOOD)
    for name in GOOD:
        rel = Path("audio") / "train" / f"{cid(name)}.flac"
        assert (one.dir / rel).read_bytes() == (two.dir / rel).read_bytes(), name


def test_missing_raw_file_and_ok_without_path_are_reported(tmp_path, sources):
    paths = make_dataset(tmp_path, sources, ("stereo", "u8"))
    (paths.raw / "train" / f"{cid('u8')}.wav").unlink()
    with Ledger(paths.ledger) as ledger:
        ledger.add_clips([Clip(cid("nopath"), "train", ytid("nopath"), 30.0, 32.0, (1,))])
        ledger.mark(cid("nopath"), "ok")
    result = resample("fetched", root=tmp_path, quiet=True)
    reasons = {r.clip_id: r.reason for r in result.failed}
    assert "unreadable" in reasons[cid("u8")] and "run fetch again" in reasons[cid("u8")]
    assert "no raw file recorded" in reasons[cid("nopath")]
    assert result.counts["converted"] == 1


def test_unwritable_audio_folder_is_one_clear_error_and_a_rerun_finishes(tmp_path, sources):
    paths = make_dataset(tmp_path, sources, ("stereo", "u8"))
    if os.geteuid() == 0:  # root writes through chmod: block the folder with a regular file instead
        paths.audio.write_text("in the way")
        unblock = paths.audio.unlink
    else:
        paths.audio.mkdir()
        paths.audio.chmod(0o500)
        unblock = lambda: paths.audio.chmod(0o700)  # noqa: E731
    with pytest.raises(AudiobenchError, match=r"cannot (create|write to) .*audio"):
        resample("fetched", root=tmp_path, quiet=True)
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path), "-q"])
    assert out.exit_code == 2 and out.output.startswith("error: cannot ") and out.output.count("\n") == 1
    unblock()
    assert resample("fetched", root=tmp_path, quiet=True).counts["converted"] == 2


def test_one_unwritable_target_fails_that_clip_only(tmp_path, sources):
    paths = make_dataset(tmp_path, sources, ("stereo", "u8"))
    (paths.audio / "train" / f"{cid('u8')}.flac").mkdir(parents=True)  # a folder where the file should go
    result = resample("fetched", root=tmp_path, quiet=True)
    assert result.counts["converted"] == 1
    assert result.failed[0].clip_id == cid("u8") and "cannot write" in result.failed[0].reason
    assert not list((paths.audio / "train").glob(".*.tmp"))


def test_root_under_a_file_or_unknown_dataset_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(blocker / "x")])
    assert out.exit_code == 2
    assert out.output.startswith("error: no dataset 'fetched'") and out.output.count("\n") == 1


def test_cli_prints_summary_and_failures_and_json(tmp_path, sources):
    make_dataset(tmp_path, sources, ("stereo", "empty"))
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path), "-q"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("resample fetched: converted 1, already done 0, short 0, failed 1")
    assert cid("empty") in lines[2] and "empty file (0 bytes)" in lines[2]
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path), "-q", "--json"])
    summary = json.loads(out.output)
    assert (summary["converted"], summary["done"], summary["failed"]) == (0, 1, 1)
    assert summary["failures"][0]["clip_id"] == cid("empty")


def test_resample_with_no_clip_fetched_says_run_fetch_first_and_exits_2(tmp_path, sources):
    paths = make_dataset(tmp_path, sources, ("stereo", "u8"))
    with Ledger(paths.ledger) as ledger:  # as after a fetch that got nothing: one gone, one still to try
        ledger.mark(cid("stereo"), "unavailable", error="HTTP Error 404: Not Found")
        ledger.mark(cid("u8"), "failed", error="timed out")
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path), "-q"])
    assert out.exit_code == 2
    assert out.output == ("error: no clips fetched for fetched: run `audiobench fetch fetched` first "
                          "(`audiobench status fetched` shows what was tried)\n")
    assert not paths.audio.exists()


def test_resample_where_every_clip_fails_prints_them_then_exits_2(tmp_path, sources):
    make_dataset(tmp_path, sources, BAD)
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path), "-q"])
    assert out.exit_code == 2
    lines = out.output.splitlines()
    assert lines[0].startswith("resample fetched: converted 0, already done 0, short 0, failed 3")
    assert lines[-1] == "error: no clip of fetched could be converted (all 3 failed); fix or re-fetch them, then rerun"
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path), "-q", "--json"])
    assert out.exit_code == 2 and out.output.splitlines()[-1].startswith("error: no clip of fetched")


# -- faults: a corrupt FLAC, a whole recording listed as a segment, a missing ffmpeg, a full disk ----------------
def test_a_flipped_byte_in_a_raw_flac_is_reported_and_not_converted(tmp_path, sources):
    paths = make_dataset(tmp_path, sources, ("surround", "whole"))
    raw = paths.raw / "train" / f"{cid('surround')}.flac"
    data = bytearray(raw.read_bytes())
    data[len(data) // 2] ^= 0x01
    raw.write_bytes(bytes(data))
    result = resample("fetched", root=tmp_path, quiet=True)
    assert result.counts["converted"] == 1 and [r.clip_id for r in result.failed] == [cid("surround")]
    assert result.failed[0].reason.startswith(f"raw/train/{cid('surround')}.flac: corrupt FLAC: ")
    assert not (paths.audio / "train" / f"{cid('surround')}.flac").exists()


def test_a_whole_recording_listed_as_a_segment_is_cut_to_it_with_a_notice(tmp_path):
    """60 s of raw audio for the 2 s segment 30-32 s: the clip is 30-32 s of it (a 1 kHz tone there only)."""
    rate = 22050
    whole = tone(300, 60.0, rate)
    whole[30 * rate:32 * rate] = tone(1000, 2.0, rate)
    sources = {"long": tmp_path / "long.flac", "early": tmp_path / "early.flac"}
    sf.write(sources["long"], whole, rate, subtype="PCM_16")
    sf.write(sources["early"], whole[:10 * rate], rate, subtype="PCM_16")  # longer than 2 s, ends before 32 s
    paths = make_dataset(tmp_path / "root", sources, ("long", "early"))
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path / "root"), "-q"])
    assert out.exit_code == 0, out.output
    assert f"note {cid('long')}  cut to 30-32 s of a 60.00 s file (taken as the whole recording" in out.output
    assert (f"{cid('early')}  raw/train/{cid('early')}.flac: 10.00 s long for a 2.00 s segment (30-32 s): "
            "neither the segment nor the whole recording; re-fetch it") in out.output
    x, _ = sf.read(paths.audio / "train" / f"{cid('long')}.flac", dtype="float32")
    assert x.size == 32000 and dominant_frequency(x, 16000) == pytest.approx(1000, abs=3)
    with Ledger(paths.ledger) as ledger:
        assert ledger.audio()[cid("long")].duration == 2.0 and cid("early") not in ledger.audio()
    featurize("fetched", root=tmp_path / "root", quiet=True)
    with h5py.File(feature_file(paths, "train"), "r") as f:
        assert f["logmel"].shape == (1, 198, 64)  # 2 s, not 60 s of padding for the split


def test_a_replaced_raw_file_reaches_the_features(tmp_path, sources):
    paths = make_dataset(tmp_path, sources, ("stereo", "u8"))
    resample("fetched", root=tmp_path, quiet=True)
    featurize("fetched", root=tmp_path, quiet=True)
    raw = paths.raw / "train" / f"{cid('stereo')}.wav"
    sf.write(raw, tone(880, 2.0, 44100, 2), 44100, subtype="PCM_16")
    assert resample("fetched", root=tmp_path, quiet=True).counts["converted"] == 1
    split = featurize("fetched", root=tmp_path, quiet=True).splits[0]
    assert (split.added, split.updated, split.present) == (0, 1, 1)
    x, rate = sf.read(paths.audio / "train" / f"{cid('stereo')}.flac", dtype="float32")
    with h5py.File(feature_file(paths, "train"), "r") as f:
        row = list(f["clip_id"].asstr()[()]).index(cid("stereo"))
        assert np.array_equal(f["logmel"][row, :f["length"][row]], logmel(x, rate))


def test_a_missing_ffmpeg_is_named_once(tmp_path, sources, monkeypatch):
    make_dataset(tmp_path, sources, ("aac", "stereo"))
    monkeypatch.setenv("AUDIOBENCH_FFMPEG", "/nonexistent/ffmpeg")
    ffmpeg_exe.cache_clear()
    try:
        out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path), "-q"])
    finally:
        monkeypatch.undo()
        ffmpeg_exe.cache_clear()
    assert out.exit_code == 2 and out.output == "error: AUDIOBENCH_FFMPEG=/nonexistent/ffmpeg: no such executable " \
        "(unset it to use the bundled ffmpeg)\n"


def _disk_full_at_the_third_write(monkeypatch):
    import audiobench.data.resample as module

    real, calls = module.write_atomic, []

    def write_atomic(path, data):
        calls.append(path)
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(module, "write_atomic", write_atomic)


def _ledger_full_after_two_records(monkeypatch):
    """SQLite answers "database or disk is full" to every audio record after the second."""
    class Full:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, sql: str, *args):
            if sql.startswith("INSERT OR REPLACE INTO audio"):
                raise sqlite3.OperationalError("database or disk is full")
            return self.db.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self.db, name)

    real = Ledger.record_audio

    def record_audio(self, record):
        real(self, record)
        if len(self.audio()) == 2:
            self._db = Full(self._db)

    monkeypatch.setattr(Ledger, "record_audio", record_audio)


@pytest.mark.parametrize("full", ["audio", "ledger"])
def test_a_full_disk_is_one_line_and_a_rerun_finishes(tmp_path, sources, monkeypatch, full):
    paths = make_dataset(tmp_path, sources, GOOD)
    (_disk_full_at_the_third_write if full == "audio" else _ledger_full_after_two_records)(monkeypatch)
    out = CliRunner().invoke(cli, ["resample", "fetched", "--root", str(tmp_path), "-q"])
    assert out.exit_code == 2 and out.output.count("\n") == 1 and "Traceback" not in out.output, out.output
    folder = paths.audio if full == "audio" else paths.dir
    assert out.output.startswith(f"error: no space left on the disk of {folder} (")
    assert "free some space and rerun (finished work is kept)" in out.output
    with Ledger(paths.ledger) as ledger:
        assert len(ledger.audio()) == 2  # what finished is recorded
    monkeypatch.undo()
    again = resample("fetched", root=tmp_path, quiet=True)
    assert (again.counts["done"], again.counts["converted"], again.counts["failed"]) == (2, len(GOOD) - 2, 0)
