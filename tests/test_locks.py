"""One writer per dataset: two real ``audiobench`` processes on one root, as two shells or two cron jobs start
them. The second is refused in one line naming the first (PID, host, started, command line), or with ``--wait``
runs once the first has ended; nothing either leaves behind is half written, and the ledger is what both say."""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import copies
from audiobench.core.layout import DatasetPaths
from audiobench.data.ledger import Ledger
from audiobench.data.register import register_dataset
from audiobench.testing.media_server import MediaServer, encode_source

DATASET = "sl-dcase17"
CLI = [sys.executable, "-m", "audiobench.cli"]
pytestmark = pytest.mark.slow


def _rows(root: Path) -> dict[str, dict]:
    with sqlite3.connect(DatasetPaths(root, DATASET).ledger) as db:
        db.row_factory = sqlite3.Row
        return {r["clip_id"]: dict(r) for r in db.execute("SELECT * FROM clips")}


def _wait_for_ok(root: Path, proc: subprocess.Popen, count: int, seconds: float = 90) -> int:
    """Block until ``count`` clips are ok in the ledger (the first process is then well under way)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the first process ended before the second started"
        try:
            done = sum(r["status"] == "ok" for r in _rows(root).values())
            if done >= count:
                return done
        except sqlite3.OperationalError:  # no schema yet, or the child holds a write lock
            pass
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} clips ok after {seconds} s")


def _assert_names(line: str, proc: subprocess.Popen, command: str) -> None:
    """The one line of a refused or waiting run names the holder: PID, host, when it started, its command."""
    assert f"PID {proc.pid} on {socket.gethostname()}, started 20" in line, line
    assert f"`audiobench {command}" in line, line


def _no_leftovers(root: Path) -> None:
    dataset = DatasetPaths(root, DATASET)
    assert not list(dataset.dir.glob("raw/*/.*.tmp")) and not list(dataset.dir.glob("audio/*/.*.tmp"))
    assert not (dataset.raw / ".partial").is_dir() or not any((dataset.raw / ".partial").iterdir())


def _assert_ledger_matches_files(root: Path) -> None:
    """Every ok clip's raw file is the one its row describes, and raw/ holds no file no row names."""
    dataset = DatasetPaths(root, DATASET)
    ok = {r["path"]: r for r in _rows(root).values() if r["status"] == "ok"}
    for path, row in ok.items():
        data = (dataset.dir / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"] and len(data) == row["bytes"], path
    on_disk = {p.relative_to(dataset.dir).as_posix() for p in dataset.raw.glob("*/*")
               if not p.name.startswith(".") and not p.parent.name.startswith(".")}
    assert on_disk == set(ok)


# -- fetch against the loopback media server -----------------------------------------------------------------
@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    return {"flac": encode_source("flac", 400, tmp_path_factory.mktemp("sources"))}


def _fetch(root: Path, reference_dir: Path, server: MediaServer, *extra: str) -> list[str]:
    return [*CLI, "fetch", DATASET, "--root", str(root), "--index-mirror", str(reference_dir), "--source-template",
            server.template("flac"), "--split", "test", "--jobs", "2", "--backoff", "0.01", "--quiet", *extra]


def _tried(stdout: str) -> dict[str, int]:
    match = re.search(r"tried (\d+): (\d+) ok, (\d+) unavailable, (\d+) failed, (\d+) left pending", stdout)
    assert match, stdout
    return dict(zip(("tried", "ok", "unavailable", "failed", "pending"), map(int, match.groups())))


def test_a_second_fetch_is_refused_in_one_line_naming_the_first_which_finishes_untouched(tmp_path, media,
                                                                                        reference_dir):
    root = tmp_path / "data"
    with MediaServer(media, latency=0.2) as server:
        first = subprocess.Popen(_fetch(root, reference_dir, server, "--limit", "8"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_ok(root, first, 1)
            second = subprocess.run(_fetch(root, reference_dir, server, "--limit", "8", "--jobs", "4"),
                                    capture_output=True, text=True, timeout=120)
            assert first.poll() is None, "the first fetch should still run while the second is refused"
            out, err = first.communicate(timeout=180)
        finally:
            first.kill()
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: dataset '{DATASET}' in {root} is in use: "), lines
    _assert_names(lines[0], first, f"fetch {DATASET} --root {root}")
    assert "--wait" in lines[0]
    assert first.returncode == 0, err
    assert _tried(out) == {"tried": 8, "ok": 8, "unavailable": 0, "failed": 0, "pending": 0}  # no broken download
    assert sum(r["status"] == "ok" for r in _rows(root).values()) == 8
    assert {r["status"] for r in _rows(root).values()} == {"pending", "ok"}  # nothing blamed on the source
    _assert_ledger_matches_files(root)
    _no_leftovers(root)


def test_with_wait_the_second_fetch_runs_after_the_first_and_the_summaries_add_up_to_the_ledger(
        tmp_path, media, reference_dir):
    root = tmp_path / "data"
    with MediaServer(media, latency=0.1) as server:
        first = subprocess.Popen(_fetch(root, reference_dir, server, "--limit", "5"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_ok(root, first, 1)
            second = subprocess.run(_fetch(root, reference_dir, server, "--limit", "5", "--wait"),
                                    capture_output=True, text=True, timeout=180)
            out, err = first.communicate(timeout=180)
        finally:
            first.kill()
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    waiting = [line for line in second.stderr.splitlines() if line.startswith("waiting: ")]
    assert len(waiting) == 1, second.stderr
    _assert_names(waiting[0], first, f"fetch {DATASET}")
    one, two = _tried(out), _tried(second.stdout)
    assert one["ok"] == 5 and two["ok"] == 5  # the second took the next clips, not the first's again
    rows = _rows(root).values()
    assert sum(r["status"] == "ok" for r in rows) == one["ok"] + two["ok"]
    assert sum(r["attempts"] for r in rows) == one["tried"] + two["tried"]  # every download counted once
    _assert_ledger_matches_files(root)
    _no_leftovers(root)


# -- import from copies, and resample beside it --------------------------------------------------------------
@pytest.fixture
def clips(tmp_path, reference_dir):
    """The test split's clips of SL-DCASE-17 with an ID that makes a plain file name."""
    register_dataset(DATASET, root=tmp_path / "lists", mirror=str(reference_dir))
    with Ledger(DatasetPaths(tmp_path / "lists", DATASET).ledger) as ledger:
        return [r for r in ledger.statuses(split="test") if r.source_id[0].isalnum()]


def _copy(folder: Path, clips, shift: int) -> Path:
    """An audiosetdl-style copy (``<ytid>_<start_ms>_<end_ms>.flac``, 8 kHz): clip i holds tone i + shift."""
    for i, row in enumerate(clips):
        copies.write(folder / f"{row.source_id}_{round(row.start * 1000)}_{round(row.end * 1000)}.flac",
                     copies.tone((i + shift) % 30, row.end - row.start, 8000), 8000)
    return folder


def _import(root: Path, reference_dir: Path, copy: Path, *extra: str) -> list[str]:
    return [*CLI, "import", DATASET, str(copy), "--root", str(root), "--index-mirror", str(reference_dir),
            "--quiet", *extra]


def test_two_imports_at_once_one_refused_one_waiting_leave_one_file_per_clip_from_the_first_copy(
        tmp_path, reference_dir, clips):
    a, b = _copy(tmp_path / "a", clips, 0), _copy(tmp_path / "b", clips, 7)
    root = tmp_path / "data"
    first = subprocess.Popen(_import(root, reference_dir, a), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        _wait_for_ok(root, first, 10)
        refused = subprocess.run(_import(root, reference_dir, b), capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first import should still run while the second is refused"
        waited = subprocess.run(_import(root, reference_dir, b, "--wait", "--json"), capture_output=True, text=True,
                                timeout=300)
        first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    _assert_names(refused.stderr, first, f"import {DATASET} {a}")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["already_had"] == len(clips)  # the first had adopted every clip
    rows = _rows(root)
    assert all(rows[c.clip_id]["status"] == "ok" for c in clips)
    assert {json.loads(rows[c.clip_id]["origin"])["copy"] for c in clips} == {str(a.resolve())}
    _assert_ledger_matches_files(root)
    dataset = DatasetPaths(root, DATASET)
    for i, row in enumerate(clips[:: max(1, len(clips) // 8)]):  # the bytes are copy a's, raw and 16 kHz alike
        code = clips.index(row) % 30
        assert copies.code_of(dataset.dir / rows[row.clip_id]["path"]) == code
        assert copies.code_of(dataset.audio / "test" / f"{row.clip_id}.flac") == code
    _no_leftovers(root)


def test_resample_during_an_import_waits_for_it_and_then_finds_every_clip_done(tmp_path, reference_dir, clips):
    copy = _copy(tmp_path / "copy", clips, 0)
    root = tmp_path / "data"
    importing = subprocess.Popen(_import(root, reference_dir, copy), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
    try:
        _wait_for_ok(root, importing, 10)
        refused = subprocess.run([*CLI, "resample", DATASET, "--root", str(root), "--quiet"], capture_output=True,
                                 text=True, timeout=120)
        waited = subprocess.run([*CLI, "resample", DATASET, "--root", str(root), "--quiet", "--wait", "--json"],
                                capture_output=True, text=True, timeout=300)
        importing.communicate(timeout=300)
    finally:
        importing.kill()
    assert importing.returncode == 0
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    _assert_names(refused.stderr, importing, f"import {DATASET}")
    assert waited.returncode == 0, waited.stderr
    assert "waiting: " in waited.stderr
    counts = json.loads(waited.stdout)
    assert (counts["done"], counts["converted"], counts["failed"]) == (len(clips), 0, 0)
    with Ledger(DatasetPaths(root, DATASET).ledger) as ledger:
        audio = ledger.audio(split="test")
    assert set(audio) == {c.clip_id for c in clips}
    assert all((DatasetPaths(root, DATASET).dir / record.path).is_file() for record in audio.values())
    _no_leftovers(root)


def test_a_kill_9_mid_import_leaves_nothing_that_the_next_writer_does_not_remove(tmp_path, reference_dir, clips):
    """Whatever the killed import was writing (its temporary files in raw/ and audio/, a download folder of
    a fetch killed before it) is gone after the next run of any writer: here resample, then the import."""
    copy = _copy(tmp_path / "copy", clips, 0)
    root = tmp_path / "data"
    args = _import(root, reference_dir, copy)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = _wait_for_ok(root, proc, 20)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    dataset = DatasetPaths(root, DATASET)
    # What a kill landing inside a write leaves, named as the killed process names them.
    clip = clips[-1].clip_id
    for tmp in (dataset.raw / "test" / f".{clip}.flac.{proc.pid}.tmp",
                dataset.audio / "test" / f".{clip}.flac.{proc.pid}.tmp",
                (dataset.raw / ".partial") / str(proc.pid) / clip / "segment.flac.part"):
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"half")
    resampled = subprocess.run([*CLI, "resample", DATASET, "--root", str(root), "--quiet", "--json"],
                               capture_output=True, text=True, timeout=300)
    assert resampled.returncode == 0, resampled.stderr
    _no_leftovers(root)
    _assert_ledger_matches_files(root)
    rerun = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["already_had"] >= done
    assert all(r["status"] == "ok" for r in _rows(root).values() if r["split"] == "test"
               and r["source_id"][0].isalnum())
    _assert_ledger_matches_files(root)
    _no_leftovers(root)


# -- every writer, against a process that holds the dataset --------------------------------------------------
_HOLD = """
import fcntl, json, os, socket, sys, time
from pathlib import Path
folder = Path(sys.argv[1]) / sys.argv[2]
folder.mkdir(parents=True, exist_ok=True)
with open(folder / ".lock", "a+") as handle:  # as a writer (or featurize, reading) holds it
    fcntl.flock(handle, fcntl.LOCK_SH if sys.argv[3] == "read" else fcntl.LOCK_EX)
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": "audiobench hold",
                             "started": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\\n")
    handle.flush()
    print("held", flush=True)
    sys.stdin.read()
"""


class _Holder:
    """A process holding ``dataset``'s lock (``mode``: write or read) until the block ends."""

    def __init__(self, root: Path, dataset: str, mode: str = "write") -> None:
        self.args = [sys.executable, "-c", _HOLD, str(root), dataset, mode]

    def __enter__(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"
        return self.proc

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.fixture
def tiny(tmp_path) -> Path:
    from audiobench.data.synth import synthesize

    root = tmp_path / "data"
    synthesize("tiny", root=root, train=2, val=1, test=1, duration=1.0, quiet=True)
    return root


def _writers(tmp_path: Path, root: Path, reference_dir: Path) -> dict[str, tuple[str, list[str]]]:
    """Each writer's command line (the dataset it writes, its arguments) on ``root``."""
    from test_import_own import make_folder

    own = make_folder(tmp_path / "mine", n=6)
    other = tmp_path / "other"
    register_dataset(DATASET, root=other, mirror=str(reference_dir))
    row = clips_of(other)[0]
    copy = _copy(tmp_path / "copy", [row], 0)
    lists = ["--index-mirror", str(reference_dir)]
    return {
        "synth": ("tiny", ["synth", "--name", "tiny", "--train", "2", "--val", "1", "--test", "1", "--duration", "1"]),
        "resample": ("tiny", ["resample", "tiny"]),
        "fetch": (DATASET, ["fetch", DATASET, *lists, "--source-template", str(tmp_path / "none" / "{ytid}.flac")]),
        "import": (DATASET, ["import", DATASET, str(copy), *lists]),
        "merge": (DATASET, ["import", DATASET, str(other), "--format", "audiobench"]),
        "own-data": ("pets", ["import", "pets", str(own["folder"]), "--labels", str(own["labels"]), "--folds", "3"]),
    }


def clips_of(root: Path):
    with Ledger(DatasetPaths(root, DATASET).ledger) as ledger:
        return [r for r in ledger.statuses(split="test") if r.source_id[0].isalnum()]


@pytest.mark.parametrize("writer", ["synth", "resample", "fetch", "import", "merge", "own-data"])
def test_every_writer_is_refused_in_one_line_while_another_process_writes_and_changes_nothing(
        tmp_path, tiny, reference_dir, writer):
    dataset, args = _writers(tmp_path, tiny, reference_dir)[writer]
    folder = DatasetPaths(tiny, dataset).dir
    with _Holder(tiny, dataset) as holder:
        before = _snapshot(folder)
        refused = subprocess.run([*CLI, *args, "--root", str(tiny), "--quiet"], capture_output=True, text=True,
                                 timeout=120)
        assert _snapshot(folder) == before
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: dataset '{dataset}' in {tiny} is in use: PID {holder.pid} on "), line
    assert "started 20" in line and "--wait" in line


def test_featurize_reads_beside_another_reader_but_not_beside_a_writer(tiny):
    featurize = [*CLI, "featurize", "tiny", "--root", str(tiny), "--quiet"]
    with _Holder(tiny, "tiny", "write") as writer:
        refused = subprocess.run(featurize, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: dataset 'tiny' in {tiny} is being written: PID {writer.pid} on "), line
    with _Holder(tiny, "tiny", "read") as reader:  # another featurize (another recipe) reading the dataset
        other = subprocess.run(featurize, capture_output=True, text=True, timeout=300)
        assert other.returncode == 0, other.stderr
        resample = subprocess.run([*CLI, "resample", "tiny", "--root", str(tiny)], capture_output=True, text=True,
                                  timeout=120)
    assert resample.returncode == 2 and f"is in use: PID {reader.pid} on " in resample.stderr, resample.stderr


def test_a_waiting_writer_says_once_for_whom_and_runs_when_the_holder_ends(tiny):
    with _Holder(tiny, "tiny") as holder:
        waiting = subprocess.Popen([*CLI, "resample", "tiny", "--root", str(tiny), "--wait"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        line = waiting.stderr.readline()
        assert waiting.poll() is None  # still waiting
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert line.startswith(f"waiting: dataset 'tiny' in {tiny} is in use: PID {holder.pid} on "), line
    assert "resample tiny: converted 0, already done 4" in out
