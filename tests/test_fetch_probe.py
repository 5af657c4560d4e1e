"""fetch against YouTube as it is now: a probe before trusting failures, pacing that survives restarts, the yt-dlp
setup checked and passed through, and what was fetched recorded per clip. Real yt-dlp against the loopback
media server; the pacing runs on a fake clock (no sleeps)."""
from __future__ import annotations

import sqlite3
import sys
import threading
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.data.fetch import FetchOptions, download_clips
from audiobench.data.ledger import Ledger
from audiobench.data.register import register_dataset
from audiobench.data.sources.youtube import DownloadSettings, SegmentRequest, ytdlp_options
from audiobench.data.sources.ytdlp_setup import (
    age_warning,
    check_javascript_runtime,
    parse_extractor_args,
    plugin_names,
)
from audiobench.testing.media_server import MediaServer, encode_source

DATASET = "sl-dcase17"


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    return {"flac": encode_source("flac", 400, tmp_path_factory.mktemp("sources"))}


@pytest.fixture(scope="module")
def low_media(tmp_path_factory) -> dict[str, bytes]:
    return {"flac": encode_source("flac", 400, tmp_path_factory.mktemp("low"), rate=8000)}


def _fetch(root: Path, reference_dir: Path, server: MediaServer, *extra: str):
    return CliRunner().invoke(cli, ["fetch", DATASET, "--root", str(root), "--index-mirror", str(reference_dir),
                                    "--source-template", server.template("flac"), "--split", "test", "--quiet",
                                    "--retries", "0", *extra])


def _table(root: Path, table: str) -> list[tuple]:
    with sqlite3.connect(root / DATASET / "ledger.sqlite") as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def _statuses(root: Path) -> dict[str, str]:
    with sqlite3.connect(root / DATASET / "ledger.sqlite") as db:
        return dict(db.execute("SELECT clip_id, status FROM clips"))


def _test_ids(root: Path, reference_dir: Path) -> list[str]:
    register_dataset(DATASET, root=root, mirror=str(reference_dir))
    with Ledger(DatasetPaths(root, DATASET).ledger) as ledger:
        return [r.source_id for r in ledger.statuses(split="test")]


def test_a_setup_that_gets_no_formats_stops_at_the_probe_and_leaves_every_clip_as_it_was(tmp_path, media,
                                                                                          reference_dir):
    ids = _test_ids(tmp_path, reference_dir)
    with MediaServer(media, {ids[1]: "404"}) as server:  # a first run: one clip ok, one really gone
        assert _fetch(tmp_path, reference_dir, server, "--limit", "2").exit_code == 0
    clips, weak, meta = _table(tmp_path, "clips"), _table(tmp_path, "weak"), dict(_table(tmp_path, "meta"))
    attempts = len(_table(tmp_path, "attempts"))
    assert sorted(_statuses(tmp_path).values()).count("unavailable") == 1
    with MediaServer(media, default="noformats") as server:  # every page answers, none offers a format
        result = _fetch(tmp_path, reference_dir, server, "--limit", "20", "--retry-unavailable")
        asked = list(server.asked)
    assert result.exit_code == 3, result.output
    assert "stopped: the probe clip" in result.output and "No video formats found" in result.output
    assert "deno --version" in result.output and "pip install -U 'yt-dlp[default]'" in result.output
    assert "tried 20: 0 ok, 0 unavailable, 0 failed, 20 left pending" in result.output
    assert _table(tmp_path, "clips") == clips and _table(tmp_path, "weak") == weak  # exactly as before
    after = dict(_table(tmp_path, "meta"))
    assert '"outcome": "ok"' in meta.pop("last_probe") and '"outcome": "broken"' in after.pop("last_probe")
    assert after == meta  # and the last good probe is still the first run's
    assert len(_table(tmp_path, "attempts")) - attempts == len(asked)  # the probe's tries, nothing else
    assert set(asked).isdisjoint(ids[2:22])  # no listed clip was downloaded


def test_probe_names_the_recording_to_try_and_a_gone_one_stops_the_run(tmp_path, media, reference_dir):
    _test_ids(tmp_path, reference_dir)
    before = _table(tmp_path, "clips")
    with MediaServer(media, {"dQw4w9WgXcQ": "410"}) as server:
        result = _fetch(tmp_path, reference_dir, server, "--limit", "5", "--probe", "dQw4w9WgXcQ")
        asked = list(server.asked)
    assert result.exit_code == 3, result.output
    assert "stopped: the probe clip dQw4w9WgXcQ could not be fetched either (" in result.output
    assert "HTTP Error 410" in result.output
    assert asked == ["dQw4w9WgXcQ"] and _table(tmp_path, "clips") == before
    assert [c for _, c in _table(tmp_path, "attempts")] == ["probe_dQw4w9WgXcQ"]
    bad = _fetch(tmp_path, reference_dir, server, "--probe", "../etc/passwd")
    assert bad.exit_code == 2 and bad.output == ("error: --probe: invalid YouTube ID '../etc/passwd' "
                                                 "(expected 11 characters of A-Z a-z 0-9 _ -)\n")


def test_no_formats_is_unavailable_only_after_a_probe_of_the_same_run_succeeded(tmp_path, media, reference_dir):
    ids = _test_ids(tmp_path, reference_dir)
    with MediaServer(media, {ids[0]: "noformats"}) as server:
        result = _fetch(tmp_path, reference_dir, server, "--limit", "3")
    assert result.exit_code == 0, result.output
    by_id = {r.source_id: r for r in Ledger(DatasetPaths(tmp_path, DATASET).ledger).statuses(split="test")}
    assert by_id[ids[0]].status == "unavailable" and "No video formats found" in by_id[ids[0]].last_error
    assert by_id[ids[1]].status == by_id[ids[2]].status == "ok"


def test_a_source_that_breaks_halfway_is_probed_again_and_its_unavailable_clips_go_back_to_pending(
        tmp_path, media, reference_dir):
    _test_ids(tmp_path, reference_dir)
    with MediaServer(media, break_after=8) as server:  # the probe and 7 clips, then nothing offers a format
        result = _fetch(tmp_path, reference_dir, server, "--limit", "60", "--jobs", "2")
        probes = [path for path in server.requests if server.asked[0] in path]
    assert result.exit_code == 3, result.output
    assert "stopped: the probe clip" in result.output and "are pending again" in result.output
    ledger = Ledger(DatasetPaths(tmp_path, DATASET).ledger)
    rows = ledger.statuses(split="test")
    statuses = [r.status for r in rows]
    assert "unavailable" not in statuses and 6 <= statuses.count("ok") <= 7
    put_back = [r for r in rows if (r.last_error or "").startswith("put back: the probe failed too")]
    assert len(put_back) >= 10 and {r.status for r in put_back} == {"pending"}
    assert all(r.attempts == 1 for r in put_back)  # their try is counted, their status is as before the run
    last_probe = ledger.meta()["last_probe"]
    assert last_probe["outcome"] == "broken" and last_probe["source_id"] != server.asked[0]  # ok clips first
    assert len(probes) >= 1 and "No video formats found" in last_probe["error"]
    ledger.close()


def test_each_ok_clip_records_its_source_stream_and_status_summarises_them(tmp_path, media, low_media,
                                                                          reference_dir):
    ids = _test_ids(tmp_path, reference_dir)
    behaviours = {ids[0]: "lowrate", ids[2]: "lowrate"}
    with MediaServer(media, behaviours, lowrate_media=low_media) as server:
        assert _fetch(tmp_path, reference_dir, server, "--limit", "4").exit_code == 0
    with Ledger(DatasetPaths(tmp_path, DATASET).ledger) as ledger:
        source_of = {r.clip_id: r.source_id for r in ledger.statuses(split="test")}
        origins = ledger.origins()
    assert len(origins) == 4
    import yt_dlp.version

    for clip_id, origin in origins.items():
        assert set(origin) == {"via", "format_id", "container", "codec", "bitrate", "sample_rate", "channels",
                               "upload_date", "ytdlp_version", "downloaded"}
        assert origin["via"] == "yt-dlp" and origin["container"] == "flac" and origin["channels"] == 1
        assert origin["ytdlp_version"] == yt_dlp.version.__version__ and origin["downloaded"].endswith("+00:00")
        assert origin["sample_rate"] == (8000 if source_of[clip_id] in behaviours else 16000)
    result = CliRunner().invoke(cli, ["status", DATASET, "--root", str(tmp_path), "--per-source", "--no-per-class"])
    assert result.exit_code == 0, result.output
    table = result.output.split("sources of the ok clips:")[1].split("\n\n")[0].splitlines()
    assert [line.split() for line in table[2:]] == [["yt-dlp", "flac", "16000", "2"], ["yt-dlp", "flac", "8000", "2"]]
    as_json = CliRunner().invoke(cli, ["status", DATASET, "--root", str(tmp_path), "--per-source", "--json"])
    assert '"sample_rate": "8000"' in as_json.output


class FakeClock:
    """Wall time that moves only when someone waits."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        with self._lock:
            self.now += seconds
            self.slept += seconds
        return stop.is_set()


def test_max_per_hour_counts_starts_across_workers_and_restarts(tmp_path, media, reference_dir):
    _test_ids(tmp_path, reference_dir)
    paths = DatasetPaths(tmp_path, DATASET)
    clock = FakeClock(1_800_000_000.0)
    with MediaServer(media) as server, Ledger(paths.ledger) as ledger:
        options = FetchOptions(source_template=server.template("flac"), jobs=3, retries=0, split="test", limit=20,
                               max_per_hour=10, download=DownloadSettings(socket_timeout=2.0))
        first = download_clips(ledger, paths, options, quiet=True, clock=clock)
        started = ledger.starts()
        assert len(started) == 10  # the probe and 9 clips: every download counts
        assert first.exit_code == 3 and first.counts == {"ok": 9, "unavailable": 0, "failed": 0, "pending": 11}
        assert "10 downloads started in the past hour (--max-per-hour 10" in first.message
        next_start = datetime.fromtimestamp(started[0][0] + 3600, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        assert f"the next may start at {next_start}. 11 clips stay pending" in first.message
        assert 0 < clock.slept < 3600 and started[-1][0] - started[0][0] < 3600  # jittered pauses, within the hour
        gaps = [b[0] - a[0] for a, b in zip(started, started[1:])]
        assert len(set(round(g, 3) for g in gaps)) > 5  # not a fixed interval

        clock.now += 60  # a restart within the hour starts nothing, not even the probe
        requests = len(server.requests)
        again = download_clips(ledger, paths, options, quiet=True, clock=clock)
        assert again.exit_code == 3 and again.counts == {"ok": 0, "unavailable": 0, "failed": 0, "pending": 20}
        assert len(ledger.starts()) == 10 and len(server.requests) == requests

        clock.now = started[-1][0] + 3600.5  # every earlier start has left the rolling hour
        later = download_clips(ledger, paths, options, quiet=True, clock=clock)
        assert later.counts["ok"] == 9 and len(ledger.starts(since=started[-1][0])) == 10


def test_attempts_table_is_added_to_an_older_ledger(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path):
        pass
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE attempts")
    with Ledger(path) as ledger:
        assert ledger.reserve_start("a", 100.0, cap=1) is None
        assert ledger.reserve_start("b", 200.0, cap=1) == 3700.0
        assert ledger.starts() == [(100.0, "a")]


def test_extractor_args_are_parsed_by_yt_dlp_and_reach_its_extractors(tmp_path):
    args = parse_extractor_args(["youtube:player_client=default,web_safari", "generic:variant_query=a=1"])
    assert args == {"youtube": {"player_client": ["default", "web_safari"]}, "generic": {"variant_query": ["a=1"]}}
    from yt_dlp import YoutubeDL

    request = SegmentRequest("x", "abcdefghijk", 0.0, 10.0, "http://127.0.0.1:1/abcdefghijk.flac")
    with YoutubeDL(ytdlp_options(request, tmp_path, DownloadSettings(extractor_args=args), {})) as ydl:
        youtube = ydl.get_info_extractor("Youtube")
        assert youtube._configuration_arg("player_client") == ["default", "web_safari"]
    with pytest.raises(AudiobenchError, match=r'^--extractor-args: wrong --extractor-args formatting; it should be '
                                              r'IE_KEY:ARGS, not "player_client=web"$'):
        parse_extractor_args(["player_client=web"])


def test_bad_extractor_args_on_the_command_line_are_one_line_before_anything_is_done(tmp_path):
    result = CliRunner().invoke(cli, ["fetch", DATASET, "--root", str(tmp_path), "--extractor-args", "nocolon"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "IE_KEY:ARGS" in result.output
    assert not (tmp_path / DATASET).exists()


def test_an_old_yt_dlp_is_warned_about_with_the_upgrade_command():
    assert age_warning("2026.01.10", today=date(2026, 3, 1)) is None
    warning = age_warning("2026.01.10", today=date(2026, 6, 1))
    assert warning == ("warning: yt-dlp 2026.01.10 is 142 days old; YouTube changes often and an old yt-dlp fails "
                       "every download alike: pip install -U 'yt-dlp[default]'")
    assert age_warning("2026.01.10.235959", today=date(2026, 6, 1)).startswith("warning: yt-dlp 2026.01.10.235959")


def test_the_javascript_runtime_must_run(tmp_path):
    from deno import find_deno_bin

    assert check_javascript_runtime(find_deno_bin()).startswith("deno ")
    broken = tmp_path / "deno"
    broken.write_text("#!/bin/sh\necho 'cannot execute binary file' >&2\nexit 126\n")
    broken.chmod(0o755)
    with pytest.raises(AudiobenchError) as err:
        check_javascript_runtime(str(broken))
    assert str(err.value) == (f"the JavaScript runtime {broken} failed `--version` (exit status 126: cannot "
                              "execute binary file); reinstall it: pip install --force-reinstall deno")
    with pytest.raises(AudiobenchError, match="does not run"):
        check_javascript_runtime(str(tmp_path / "missing"))


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A yt-dlp plugin package on sys.path (as an installed plugin is), unloaded again afterwards."""
    from yt_dlp.globals import plugin_pps, postprocessors

    package = tmp_path / "plugins" / "yt_dlp_plugins" / "postprocessor"
    package.mkdir(parents=True)
    (package / "audiobench_note.py").write_text(
        "from yt_dlp.postprocessor.common import PostProcessor\n\n\n"
        "class AudiobenchNotePP(PostProcessor):\n    def run(self, info):\n        return [], info\n")
    before = (dict(plugin_pps.value), dict(postprocessors.value))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    yield
    plugin_pps.value, postprocessors.value = before
    for name in [m for m in sys.modules if m.startswith("yt_dlp_plugins")]:
        del sys.modules[name]


def test_plugins_yt_dlp_loads_are_named(plugin_dir):
    from yt_dlp.globals import plugin_specs
    from yt_dlp.plugins import load_plugins

    assert "AudiobenchNotePP" not in plugin_names()
    load_plugins(plugin_specs.value["postprocessor"])  # what yt-dlp does at start-up, where the plugin is installed
    assert "AudiobenchNotePP" in plugin_names()


def test_a_pipeline_fetch_table_takes_the_new_options_in_the_command_line_syntax(tmp_path):
    from audiobench.pipeline import load_pipeline

    path = tmp_path / "p.toml"
    path.write_text('dataset = "sl-dcase17"\n[fetch]\nmax_per_hour = 250\nprobe = "CU2MyVM_B48"\n'
                    'extractor_args = ["youtube:player_client=default,web_safari"]\n')
    (step,) = load_pipeline(path).steps
    assert step.options["extractor_args"] == ["youtube:player_client=default,web_safari"]
    path.write_text('dataset = "sl-dcase17"\n[fetch]\nextractor_args = "youtube:player_client=web"\n')
    with pytest.raises(AudiobenchError, match="extractor_args"):
        load_pipeline(path)
