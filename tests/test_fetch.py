"""fetch against a real HTTP server on 127.0.0.1 that supports Range requests, with real yt-dlp and ffmpeg."""
from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.data.decode import read_audio
from audiobench.data.sources.youtube import DownloadSettings, require_javascript_runtime
from audiobench.core.errors import AudiobenchError
from audiobench.data.fetch import FetchOptions, download_clips, fetch, parse_shard, select_clips
from audiobench.core.layout import DatasetPaths, clip_id_for
from audiobench.core.records import ClassInfo, Clip
from audiobench.data.ledger import Ledger
from audiobench.data.register import register_dataset
from audiobench.testing.media_server import MediaServer, encode_source, tone_second
from static_server import HostThatGoesAway, closed_port

FORMATS = ("wav", "flac", "m4a", "webm")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    """400 s recordings (the SL-DCASE-17 test list has segments up to 390 s in) in four containers."""
    folder = tmp_path_factory.mktemp("sources")
    return {fmt: encode_source(fmt, 400, folder) for fmt in FORMATS}


def _options(server: MediaServer, ext: str = "flac", **overrides) -> FetchOptions:
    settings = overrides.pop("download", DownloadSettings(socket_timeout=2.0))
    base = dict(source_template=server.template(ext), jobs=4, retries=1, backoff=0.01, split="test",
                download=settings)
    base.update(overrides)
    return FetchOptions(**base)


def _rows(root: Path) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(root / "sl-dcase17" / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        return {r["clip_id"]: r for r in db.execute("SELECT * FROM clips")}


def test_cli_fetch_end_to_end_writes_validated_clips_and_coverage(tmp_path, media, reference_dir):
    with MediaServer(media) as server:
        result = CliRunner().invoke(cli, [
            "fetch", "sl-dcase17", "--root", str(tmp_path), "--index-mirror", str(reference_dir),
            "--source-template", server.template("flac"), "--split", "test", "--jobs", "4", "--limit", "6",
            "--quiet"])
    assert result.exit_code == 0, result.output
    assert "tried 6: 6 ok, 0 unavailable, 0 failed, 0 left pending" in result.output
    assert "Car" in result.output  # the per-class coverage rows
    ok = [r for r in _rows(tmp_path).values() if r["status"] == "ok"]
    assert len(ok) == 6
    for row in ok:
        file = tmp_path / "sl-dcase17" / row["path"]
        assert hashlib.sha256(file.read_bytes()).hexdigest() == row["sha256"]
        assert row["bytes"] == file.stat().st_size
        assert abs(row["duration"] - (row["end"] - row["start"])) <= 0.1
        assert row["origin"] is not None and '"via": "yt-dlp"' in row["origin"]
    assert not any((tmp_path / "sl-dcase17" / "raw" / ".partial").iterdir())


@pytest.mark.parametrize("fmt", FORMATS)
def test_cut_segment_has_requested_start_and_duration(tmp_path, media, reference_dir, fmt):
    with MediaServer(media) as server:
        options = _options(server, fmt, limit=3)  # the first test clips start at 0, 10 and 380 s
        result = fetch("sl-dcase17", root=tmp_path, index_mirror=str(reference_dir), options=options, quiet=True)
    assert result.summary.counts["ok"] == 3, result.summary.failures
    for row in _rows(tmp_path).values():
        if row["status"] != "ok":
            continue
        audio, rate = read_audio(tmp_path / "sl-dcase17" / row["path"])
        assert abs(audio.shape[1] / rate - 10.0) <= 0.1
        assert tone_second(audio[0], rate) == int(row["start"]) % 60


def test_each_server_answer_ends_in_the_right_status(tmp_path, media, reference_dir):
    paths = DatasetPaths(tmp_path, "sl-dcase17")
    register_dataset("sl-dcase17", root=tmp_path, mirror=str(reference_dir))
    with Ledger(paths.ledger) as ledger:
        ids = [r.source_id for r in ledger.statuses(split="test")[:8]]
    behaviours = dict(zip(ids, ["404", "410", "500", "truncated", "notaudio", "stall", "ok", "429"]))
    with MediaServer(media, behaviours, stall_seconds=6) as server:
        options = _options(server, limit=8, download=DownloadSettings(socket_timeout=1.0))
        result = fetch("sl-dcase17", root=tmp_path, index_mirror=str(reference_dir), options=options, quiet=True)
    by_ytid = {r["source_id"]: r for r in _rows(tmp_path).values()}
    status = {b: by_ytid[y]["status"] for y, b in behaviours.items()}
    assert status == {"404": "unavailable", "410": "unavailable", "500": "failed", "truncated": "failed",
                      "notaudio": "failed", "stall": "failed", "ok": "ok", "429": "pending"}
    errors = {b: by_ytid[y]["last_error"] for y, b in behaviours.items()}
    assert "404" in errors["404"] and "410" in errors["410"] and "500" in errors["500"]
    assert "truncated" in errors["truncated"] or "invalid file" in errors["truncated"]
    assert "not decodable audio" in errors["notaudio"]
    assert "timed out" in errors["stall"].lower()
    assert "429" in errors["429"]
    assert by_ytid[behaviours_key(behaviours, "500")]["attempts"] == 2  # first try + one retry
    assert by_ytid[behaviours_key(behaviours, "404")]["attempts"] == 1  # permanent: no retry
    assert result.summary.counts == {"ok": 1, "unavailable": 2, "failed": 4, "pending": 1}
    assert not list((paths.raw / "test").glob("*")) or len(list((paths.raw / "test").glob("*.flac"))) == 1


def behaviours_key(behaviours: dict[str, str], wanted: str) -> str:
    return next(y for y, b in behaviours.items() if b == wanted)


def test_unavailable_is_kept_on_rerun_unless_asked(tmp_path, media, reference_dir):
    register_dataset("sl-dcase17", root=tmp_path, mirror=str(reference_dir))
    with Ledger(DatasetPaths(tmp_path, "sl-dcase17").ledger) as ledger:
        gone = ledger.statuses(split="test")[0].source_id
    with MediaServer(media, {gone: "410"}) as server:
        fetch("sl-dcase17", root=tmp_path, index_mirror=str(reference_dir), options=_options(server, limit=2),
              quiet=True)
        asked = len([p for p in server.requests if gone in p])
        fetch("sl-dcase17", root=tmp_path, index_mirror=str(reference_dir), options=_options(server, limit=2),
              quiet=True)
        assert len([p for p in server.requests if gone in p]) == asked  # not retried
        server.behaviours.clear()
        fetch("sl-dcase17", root=tmp_path, index_mirror=str(reference_dir),
              options=_options(server, limit=2, retry_unavailable=True), quiet=True)
    assert {r["source_id"]: r["status"] for r in _rows(tmp_path).values()}[gone] == "ok"


def test_refusals_stop_the_run_early_with_advice(tmp_path, media, reference_dir):
    register_dataset("sl-dcase17", root=tmp_path, mirror=str(reference_dir))
    with Ledger(DatasetPaths(tmp_path, "sl-dcase17").ledger) as ledger:
        ids = [r.source_id for r in ledger.statuses(split="test")]
    with MediaServer(media, dict.fromkeys(ids, "429")) as server:
        result = CliRunner().invoke(cli, [
            "fetch", "sl-dcase17", "--root", str(tmp_path), "--index-mirror", str(reference_dir),
            "--source-template", server.template("flac"), "--split", "test", "--jobs", "2", "--limit", "40",
            "--max-refusals", "3", "--quiet"])
        requests = len(server.requests)
    assert result.exit_code == 3
    assert "stopped early" in result.output and "--cookies" in result.output and "--rate-limit" in result.output
    assert requests < 20  # stopped, instead of hammering all 40
    rows = _rows(tmp_path)
    assert {r["status"] for r in rows.values()} == {"pending"}  # nothing marked failed


def test_cookies_file_is_never_written_by_workers(tmp_path, media, reference_dir):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n")
    before = cookies.read_bytes()
    with MediaServer(media) as server:
        settings = DownloadSettings(socket_timeout=2.0, cookies=cookies)
        result = fetch("sl-dcase17", root=tmp_path / "data", index_mirror=str(reference_dir),
                       options=_options(server, limit=4, download=settings), quiet=True)
    assert result.summary.counts["ok"] == 4
    assert cookies.read_bytes() == before


def test_shards_split_the_clips_disjointly(tmp_path, reference_dir):
    register_dataset("sl-dcase17", root=tmp_path, mirror=str(reference_dir))
    with Ledger(DatasetPaths(tmp_path, "sl-dcase17").ledger) as ledger:
        every = {r.clip_id for r in select_clips(ledger, FetchOptions())}
        parts = [{r.clip_id for r in select_clips(ledger, FetchOptions(shard=(i, 3)))} for i in range(3)]
    assert set().union(*parts) == every and sum(map(len, parts)) == len(every) == 1591 + 1638 + 626
    assert min(map(len, parts)) > 1000
    with pytest.raises(AudiobenchError, match="i/n"):
        parse_shard("2")
    with pytest.raises(AudiobenchError, match="0 <= i < n"):
        parse_shard("3/3")


def test_youtube_source_needs_a_javascript_runtime_or_says_so():
    assert require_javascript_runtime("http://127.0.0.1:8000/{ytid}.flac") == {}
    try:
        runtimes = require_javascript_runtime("https://www.youtube.com/watch?v={ytid}")
    except AudiobenchError as exc:
        assert "pip install --upgrade deno" in str(exc)
    else:
        assert Path(runtimes["deno"]["path"]).exists()


def _fetch_cli(root: Path, reference_dir: Path, template: str, *extra: str):
    return CliRunner().invoke(cli, ["fetch", "sl-dcase17", "--root", str(root), "--index-mirror", str(reference_dir),
                                    "--source-template", template, "--split", "test", "--quiet", *extra])


def _first_test_ids(root: Path, reference_dir: Path, n: int) -> list[str]:
    register_dataset("sl-dcase17", root=root, mirror=str(reference_dir))
    with Ledger(DatasetPaths(root, "sl-dcase17").ledger) as ledger:
        return [r.source_id for r in ledger.statuses(split="test")[:n]]


def test_a_media_host_that_does_not_answer_stops_fetch_at_once_with_exit_3(tmp_path, media, reference_dir):
    ids = _first_test_ids(tmp_path, reference_dir, 2)
    with MediaServer(media, {ids[1]: "404"}) as server:  # one clip ok, one unavailable, the rest pending
        assert _fetch_cli(tmp_path, reference_dir, server.template(), "--limit", "2").exit_code == 0
    before = _rows(tmp_path)
    port = closed_port()
    started = time.monotonic()
    result = _fetch_cli(tmp_path, reference_dir, f"http://127.0.0.1:{port}/{{ytid}}.flac", "--retry-unavailable")
    assert time.monotonic() - started < 10
    assert result.exit_code == 3, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"error: cannot reach 127.0.0.1:{port} (connection refused); no clip was tried")
    assert "--source-template" in result.output and "--proxy" in result.output
    assert _rows(tmp_path) == before  # not one row changed: statuses, attempts, errors, timestamps
    assert {r["status"] for r in before.values()} == {"ok", "unavailable", "pending"}


def test_list_files_already_verified_need_no_index_host(tmp_path, reference_dir):
    register_dataset("sl-dcase17", root=tmp_path, mirror=str(reference_dir))
    index_port, media_port = closed_port(), closed_port()
    result = CliRunner().invoke(cli, [
        "fetch", "sl-dcase17", "--root", str(tmp_path), "--index-mirror", f"http://127.0.0.1:{index_port}",
        "--source-template", f"http://127.0.0.1:{media_port}/{{ytid}}.flac", "--quiet"])
    assert result.exit_code == 3
    assert f"cannot reach 127.0.0.1:{media_port}" in result.output and str(index_port) not in result.output
    fresh = CliRunner().invoke(cli, [
        "fetch", "sl-dcase17", "--root", str(tmp_path / "fresh"), "--index-mirror",
        f"http://127.0.0.1:{index_port}", "--source-template", f"http://127.0.0.1:{media_port}/{{ytid}}.flac"])
    assert fresh.exit_code == 3 and fresh.output.count("\n") == 1
    assert f"error: cannot reach 127.0.0.1:{index_port} (connection refused); nothing was downloaded" in fresh.output
    assert f"--index-mirror http://127.0.0.1:{index_port}" in fresh.output
    assert not (tmp_path / "fresh" / "sl-dcase17" / "ledger.sqlite").exists()


def test_a_host_gone_mid_run_leaves_every_clip_as_it_was_and_stops(tmp_path, media, reference_dir):
    ids = _first_test_ids(tmp_path, reference_dir, 3)
    with MediaServer(media, {ids[1]: "500", ids[2]: "404"}) as server:
        first = _fetch_cli(tmp_path, reference_dir, server.template(), "--limit", "3", "--retries", "0")
    assert first.exit_code == 0, first.output
    before = _rows(tmp_path)
    assert sorted(r["status"] for r in before.values() if r["status"] != "pending") == ["failed", "ok", "unavailable"]
    with HostThatGoesAway(connections=1) as host:  # the check connects, then the network is gone
        result = _fetch_cli(tmp_path, reference_dir, host.url + "/{ytid}.flac", "--limit", "40", "--jobs", "2",
                            "--max-network-errors", "4")
    assert result.exit_code == 3, result.output
    assert f"stopped early: 4 downloads in a row could not connect to 127.0.0.1:{host.port}" in result.output
    assert "Connection refused" in result.output and "then rerun" in result.output
    assert "tried 40: 0 ok, 0 unavailable, 0 failed, 40 left pending" in result.output
    assert _rows(tmp_path) == before  # the failed clip is still failed with its one attempt; nothing marked


@pytest.mark.parametrize("template", ["ftp://127.0.0.1/{ytid}.flac", "http://[::1/{ytid}", "watch?v=1",
                                      "http://{ytid}.example/a.flac"])
def test_a_source_template_that_names_no_recording_is_one_line_and_marks_nothing(tmp_path, reference_dir, template):
    _first_test_ids(tmp_path, reference_dir, 0)
    before = _rows(tmp_path)
    result = _fetch_cli(tmp_path, reference_dir, template, "--limit", "3")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.output.startswith(f"error: --source-template {template!r}") and result.output.count("\n") == 1
    assert _rows(tmp_path) == before


@pytest.mark.parametrize("scheme", ["file://", ""])
def test_a_local_source_template_is_read_by_the_importer_with_the_segment_in_the_name(tmp_path, reference_dir,
                                                                                       scheme):
    register_dataset("sl-dcase17", root=tmp_path, mirror=str(reference_dir))
    with Ledger(DatasetPaths(tmp_path, "sl-dcase17").ledger) as ledger:
        rows = ledger.statuses(split="test")[:3]
    copy = tmp_path / "copy"
    copy.mkdir()
    for i, row in enumerate(rows[:2]):  # the third has no file: it stays pending
        seconds = row.end - row.start if i == 0 else 0.5  # the second is too short to count
        sf.write(copy / f"{row.source_id}_{row.start:.3f}_{row.end:.3f}.flac",
                 0.3 * np.sin(np.linspace(0, 2000, int(seconds * 16000))), 16000)
    template = f"{scheme}{copy}/{{ytid}}_{{start}}_{{end}}.flac"
    result = _fetch_cli(tmp_path, reference_dir, template, "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "tried 3: 1 ok, 0 unavailable, 0 failed, 2 left pending" in result.output
    after = _rows(tmp_path)
    assert after[rows[0].clip_id]["status"] == "ok" and after[rows[0].clip_id]["attempts"] == 0
    assert '"via": "import"' in after[rows[0].clip_id]["origin"]
    assert after[rows[1].clip_id]["status"] == "pending" and "under half" in after[rows[1].clip_id]["last_error"]
    assert after[rows[2].clip_id]["last_error"] is None


def test_fetch_refuses_a_dataset_of_another_source_in_one_line(tmp_path, toy_source):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.csv").write_text('rec0001, 0.000, 10.000, "/m/0k4j"\n')
    sha = hashlib.sha256((mirror / "tiny.csv").read_bytes()).hexdigest()
    manifest = tmp_path / "tiny.toml"
    manifest.write_text(f"""name = "tiny"
[source]
kind = "toy"
[classes]
inline = [{{ mid = "/m/0k4j", name = "Car" }}]
[[index]]
file = "tiny.csv"
url = "https://example.org/tiny.csv"
sha256 = "{sha}"
[splits.test]
file = "tiny.csv"
format = "audioset-segments"
strong = false
""")
    result = CliRunner().invoke(cli, ["fetch", str(manifest), "--root", str(tmp_path / "root"),
                                      "--index-mirror", str(mirror)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output == (f"error: dataset 'tiny' ({manifest}) comes from source 'toy': `audiobench fetch` "
                             "downloads only 'youtube' recordings and cannot download it\n")
    assert not (tmp_path / "root").exists()


def test_fetch_refuses_clips_of_another_source_before_contacting_any_host(tmp_path, toy_source):
    paths = DatasetPaths(tmp_path, "mixed")
    paths.dir.mkdir()
    with Ledger(paths.ledger) as ledger:
        ledger.set_classes([ClassInfo("/m/0k4j", "Car")])
        ledger.add_clips([Clip(clip_id_for("rec0001", 0, 10), "test", "rec0001", 0.0, 10.0, (0,), source="toy")])
        options = FetchOptions(source_template=f"http://127.0.0.1:{closed_port()}/{{ytid}}.flac")
        with pytest.raises(AudiobenchError, match=f"clip rec0001_0_10000 of {paths.ledger} comes from source 'toy': "
                                                  "`audiobench fetch` downloads only 'youtube' recordings"):
            download_clips(ledger, paths, options, quiet=True)
        assert [r.status for r in ledger.statuses()] == ["pending"]


def test_fetch_with_no_clip_ok_exits_non_zero_and_a_split_with_clips_is_a_success(tmp_path, media, reference_dir):
    ids = _first_test_ids(tmp_path, reference_dir, 5)
    with MediaServer(media, dict.fromkeys(ids[:3], "404")) as server:
        empty = _fetch_cli(tmp_path, reference_dir, server.template(), "--limit", "3")
        assert empty.exit_code == 2, empty.output
        assert empty.output.splitlines()[-1] == (
            "no clip of split test of sl-dcase17 is fetched (3 unavailable, 0 failed, 623 pending); "
            "`audiobench status sl-dcase17` lists the reasons, and a rerun tries the failed and pending clips again")
        assert _fetch_cli(tmp_path, reference_dir, server.template(), "--limit", "2").exit_code == 0
        server.behaviours.update(dict.fromkeys(ids, "404"))
        again = _fetch_cli(tmp_path, reference_dir, server.template(), "--limit", "2", "--retry-unavailable")
        assert again.exit_code == 0, again.output  # nothing new, but the split holds 2 fetched clips
        assert _fetch_cli(tmp_path, reference_dir, server.template(), "--limit", "0").exit_code == 0


@pytest.mark.slow
def test_kill_9_mid_fetch_then_rerun_ends_all_ok(tmp_path, media, reference_dir):
    root = tmp_path / "data"
    with MediaServer(media, latency=0.15) as server:
        args = [sys.executable, "-m", "audiobench.cli", "fetch", "sl-dcase17", "--root", str(root),
                "--index-mirror", str(reference_dir), "--source-template", server.template("flac"),
                "--split", "test", "--jobs", "2", "--limit", "16", "--quiet"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ledger_file = root / "sl-dcase17" / "ledger.sqlite"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if ledger_file.exists() and sum(r["status"] == "ok" for r in _rows(root).values()) >= 3:
                    break
            except sqlite3.OperationalError:  # the child is still creating the schema, or holds a write lock
                pass
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done = sum(r["status"] == "ok" for r in _rows(root).values())
        assert 3 <= done < 16, "the kill should land mid-run"
        rest = [*args[:-2], str(16 - done), "--quiet"]  # --limit counts this run's clips: the 16 minus those done
        rerun = subprocess.run(rest, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    rows = [r for r in _rows(root).values() if r["status"] != "pending"]
    assert len(rows) == 16 and {r["status"] for r in rows} == {"ok"}
    for row in rows:
        file = root / "sl-dcase17" / row["path"]
        assert hashlib.sha256(file.read_bytes()).hexdigest() == row["sha256"]
    flacs = list((root / "sl-dcase17" / "raw" / "test").glob("*.flac"))
    assert len(flacs) == 16
    assert not any((root / "sl-dcase17" / "raw" / ".partial").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["sl-dcase17", "audioset-balanced"])
def test_fetch_resample_featurize_end_to_end_on_the_command_line(tmp_path, reference_dir, dataset):
    """A few real IDs of every split, served as 48 kHz AAC: fetch, resample to 16 kHz, featurize into HDF5."""
    source = {"m4a": encode_source("m4a", 700, tmp_path / "src", rate=48000)}
    runner, root = CliRunner(), str(tmp_path / "root")
    with MediaServer(source) as server:
        for split in ("train", "val", "test"):
            result = runner.invoke(cli, [
                "fetch", dataset, "--root", root, "--index-mirror", str(reference_dir), "--source-template",
                server.template("m4a"), "--split", split, "--limit", "3", "--jobs", "3", "--quiet"])
            assert result.exit_code == 0, result.output
    for command in (["resample", dataset, "--jobs", "2"], ["featurize", dataset, "--jobs", "2"]):
        result = runner.invoke(cli, [*command, "--root", root, "--quiet"])
        assert result.exit_code == 0, result.output
    paths = DatasetPaths(tmp_path / "root", dataset)
    with Ledger(paths.ledger) as ledger:
        classes = ledger.classes()
        for split in ("train", "val", "test"):
            ok = {c.clip_id: c for c in ledger.clips(split=split, status="ok")}
            assert ok, f"{split}: no clip fetched"
            audio = ledger.audio(split=split)
            assert set(audio) == set(ok)
            assert all(record.duration > 0 for record in audio.values())
            (feature_file,) = paths.dir.glob(f"features/*/{split}.h5")
            with h5py.File(feature_file, "r") as f:
                ids = list(f["clip_id"].asstr()[()])
                assert sorted(ids) == sorted(ok)  # the file records exactly the clips that were had
                assert f["weak"].shape == (len(ids), len(classes))
                for row, cid in enumerate(ids):
                    expected = np.zeros(len(classes), np.uint8)
                    expected[list(ok[cid].weak)] = 1
                    assert np.array_equal(f["weak"][row], expected)
                    assert f["length"][row] == 1 + (audio[cid].samples - 400) // 160
                assert ("strong" in f) == (dataset == "sl-dcase17" and split == "train")
        for record in ledger.audio().values():
            info = sf.info(paths.dir / record.path)
            assert (info.samplerate, info.channels) == (16000, 1)


def test_a_source_template_names_the_segment_too():
    from audiobench.data.sources.youtube import source_url

    assert source_url("http://h/{ytid}_{start}_{end}.flac", "abc", 30, 40) == "http://h/abc_30.000_40.000.flac"
    assert source_url("http://h/{ytid}/{start_ms}-{end_ms}.wav", "abc", 2.5, 12.5) == "http://h/abc/2500-12500.wav"
