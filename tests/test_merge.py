"""merge_roots: roots that each fetched a shard of a dataset (real yt-dlp against the loopback media server)
are merged into one whose ledger equals that of a root that fetched everything."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from audiobench.core.errors import AudiobenchError
from audiobench.data.fetch import FetchOptions, fetch
from audiobench.data.imports.merge import merge_roots
from audiobench.data.ledger import Ledger
from audiobench.data.register import REGISTRATION_META
from audiobench.data.sources.youtube import DownloadSettings
from audiobench.testing.media_server import MediaServer, encode_source

# Eleven-character IDs, some starting with '-' or '_' as real ones do; two get answers that are not audio.
IDS = ["-aaaaaaaaa1", "_bbbbbbbbb2", "ccccccccc_3", "ddddddddd-4", "eeeeeeeeee5", "fffffffff06", "gggggggggg7",
       "hhhhhhhhhh8"]
GONE, BROKEN = IDS[6], IDS[7]
# Every column of a clip's row but its timestamps (created, updated).
COMPARED = ("clip_id", "split", "source", "source_id", "start", "end", "status", "attempts", "last_error", "bytes",
            "sha256", "duration", "path", "origin")


def _manifest(folder: Path) -> tuple[Path, Path]:
    """A two-split dataset of 8 clips (4 each) with its list in an index mirror; returns (manifest, mirror)."""
    mirror = folder / "mirror"
    mirror.mkdir(parents=True)
    lines = ["# YTID, start_seconds, end_seconds, positive_labels"]
    lines += [f'{ytid}, {10 * i:.3f}, {10 * i + 2:.3f}, "{"/m/a" if i % 2 else "/m/b"}"' for i, ytid in enumerate(IDS)]
    (mirror / "tiny.csv").write_text("\n".join(lines) + "\n")
    sha = hashlib.sha256((mirror / "tiny.csv").read_bytes()).hexdigest()
    manifest = folder / "tiny.toml"
    manifest.write_text(f'''name = "tiny"
[classes]
inline = [{{ mid = "/m/a", name = "A" }}, {{ mid = "/m/b", name = "B" }}]
[[index]]
file = "tiny.csv"
url = "https://example.invalid/tiny.csv"
sha256 = "{sha}"
[splits.train]
file = "tiny.csv"
format = "audioset-segments"
strong = false
share = 0.5
[splits.test]
file = "tiny.csv"
format = "audioset-segments"
strong = false
share = 0.5
[partition]
seed = 3
''')
    return manifest, mirror


def _dump(root: Path) -> dict[str, object]:
    """Everything a ledger holds about the dataset except timestamps: clips (COMPARED, an origin without its
    download time), labels, classes, and the meta that registered the lists (a fetch's probe record is one
    machine's, not the dataset's)."""
    origin = COMPARED.index("origin")

    def untimed(row: tuple) -> tuple:
        if row[origin] is None:
            return row
        kept = {k: v for k, v in json.loads(row[origin]).items() if k != "downloaded"}
        return (*row[:origin], kept, *row[origin + 1:])

    with sqlite3.connect(root / "tiny" / "ledger.sqlite") as db:
        cols = ", ".join(f'"{c}"' for c in COMPARED)
        return {
            "clips": [untimed(r) for r in db.execute(f"SELECT {cols} FROM clips ORDER BY clip_id")],
            "splits": db.execute("SELECT name, strong FROM splits ORDER BY rowid").fetchall(),
            "weak": db.execute("SELECT * FROM weak ORDER BY clip_id, class_idx").fetchall(),
            "events": db.execute("SELECT * FROM events ORDER BY clip_id, onset").fetchall(),
            "classes": db.execute("SELECT * FROM classes ORDER BY idx").fetchall(),
            "meta": db.execute(f"SELECT * FROM meta WHERE key IN ({', '.join('?' * len(REGISTRATION_META))}) "
                               "ORDER BY key", REGISTRATION_META).fetchall(),
        }


@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> dict[str, Path]:
    """One root that fetched everything, and two that each fetched one shard of two."""
    base = tmp_path_factory.mktemp("merge")
    manifest, mirror = _manifest(base)
    media = {"flac": encode_source("flac", 100, base / "sources")}
    roots = {name: base / name for name in ("full", "shard0", "shard1")}
    with MediaServer(media, {GONE: "404", BROKEN: "500"}) as server:
        for name, shard in (("full", None), ("shard0", (0, 2)), ("shard1", (1, 2))):
            options = FetchOptions(source_template=server.template("flac"), jobs=4, retries=1, backoff=0.01,
                                   shard=shard, download=DownloadSettings(socket_timeout=2.0))
            fetch(str(manifest), root=roots[name], index_mirror=str(mirror), options=options, quiet=True)
    return roots


def test_two_shards_merged_equal_one_root_that_fetched_everything(fetched, tmp_path):
    full = _dump(fetched["full"])
    statuses = sorted(row[COMPARED.index("status")] for row in full["clips"])
    assert statuses == ["failed"] + ["ok"] * 6 + ["unavailable"]  # the comparison covers every status
    halves = [_dump(fetched[s]) for s in ("shard0", "shard1")]
    assert all(h["clips"] != full["clips"] for h in halves)  # each shard alone lacks clips

    result = merge_roots("tiny", [fetched["shard0"], fetched["shard1"]], root=tmp_path, quiet=True)

    assert result.copied == 6 and result.updated == 2 and not result.problems, result.summary()
    assert _dump(tmp_path) == full
    assert (tmp_path / "tiny" / "index" / "tiny.csv").read_bytes() == (fetched["full"] / "tiny" / "index" /
                                                                      "tiny.csv").read_bytes()
    with Ledger(tmp_path / "tiny" / "ledger.sqlite") as ledger:
        for row in ledger.statuses(status="ok"):
            data = (tmp_path / "tiny" / row.path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == row.sha256 and len(data) == row.bytes
    assert "6 clips copied, 2 statuses updated" in result.summary()
    assert json.loads(json.dumps(result.to_dict()))["copied"] == 6


def test_a_rerun_changes_no_row_and_an_ok_clip_is_never_downgraded(fetched, tmp_path):
    merge_roots("tiny", [fetched["shard0"]], root=tmp_path, quiet=True)
    with sqlite3.connect(tmp_path / "tiny" / "ledger.sqlite") as db:
        before = db.execute("SELECT * FROM clips ORDER BY clip_id").fetchall()
    again = merge_roots("tiny", [fetched["shard0"]], root=tmp_path, quiet=True)
    with sqlite3.connect(tmp_path / "tiny" / "ledger.sqlite") as db:
        assert db.execute("SELECT * FROM clips ORDER BY clip_id").fetchall() == before  # updated stamps too
    assert again.copied == again.updated == 0

    # The full root's ok clips fill the rest; a root where a clip failed does not undo one already ok.
    merge_roots("tiny", [fetched["full"]], root=tmp_path, quiet=True)
    with sqlite3.connect(fetched["shard1"] / "tiny" / "ledger.sqlite") as db:
        clip = db.execute("SELECT clip_id FROM clips WHERE status = 'ok' LIMIT 1").fetchone()[0]
    worse = tmp_path / "worse"
    merge_roots("tiny", [fetched["full"]], root=worse, quiet=True)
    with Ledger(worse / "tiny" / "ledger.sqlite") as ledger:
        ledger.mark(clip, "failed", error="HTTP 500", attempts=5)
    result = merge_roots("tiny", [worse], root=tmp_path, quiet=True)
    with Ledger(tmp_path / "tiny" / "ledger.sqlite") as ledger:
        row = next(r for r in ledger.statuses() if r.clip_id == clip)
    assert row.status == "ok" and result.copied == 0
    assert _dump(tmp_path)["clips"] == _dump(fetched["full"])["clips"]


def test_a_file_that_differs_from_its_ledger_record_is_not_copied(fetched, tmp_path):
    source = tmp_path / "source"
    merge_roots("tiny", [fetched["full"]], root=source, quiet=True)
    with Ledger(source / "tiny" / "ledger.sqlite") as ledger:
        bad = ledger.statuses(status="ok")[0]
    file = source / "tiny" / bad.path
    file.write_bytes(file.read_bytes()[:-10])
    result = merge_roots("tiny", [source], root=tmp_path / "target", quiet=True)
    assert result.copied == 5 and len(result.problems) == 1
    assert bad.clip_id in result.problems[0] and "does not match its ledger record" in result.problems[0]
    assert not (tmp_path / "target" / "tiny" / bad.path).exists()
    assert not list((tmp_path / "target" / "tiny" / "raw").rglob(".*.tmp"))


@pytest.mark.parametrize("hostile", ["../../../outside.flac", "/etc/passwd", "raw/../ledger.sqlite", "link"])
def test_a_hostile_source_ledger_cannot_make_us_read_outside_its_raw_folder(fetched, tmp_path, hostile):
    source = tmp_path / "source"
    merge_roots("tiny", [fetched["full"]], root=source, quiet=True)
    outside = tmp_path / "outside.flac"
    outside.write_bytes(b"secret")
    if hostile == "link":
        (source / "tiny" / "raw" / "link.flac").symlink_to(outside)
        hostile = "raw/link.flac"
    with Ledger(source / "tiny" / "ledger.sqlite") as ledger:
        bad = ledger.statuses(status="ok")[0]
        ledger.mark(bad.clip_id, "ok", attempts=0, path=hostile, bytes=6,
                    sha256=hashlib.sha256(b"secret").hexdigest())
    result = merge_roots("tiny", [source], root=tmp_path / "target", quiet=True)
    assert len(result.problems) == 1 and "not read" in result.problems[0] and bad.clip_id in result.problems[0]
    with Ledger(tmp_path / "target" / "tiny" / "ledger.sqlite") as ledger:
        assert next(r for r in ledger.statuses() if r.clip_id == bad.clip_id).status == "pending"
    assert not any(p.read_bytes() == b"secret" for p in (tmp_path / "target").rglob("*") if p.is_file())


@pytest.mark.parametrize(("column", "value", "message"), [
    ("clip_id", "../../x", "does not match its recording"),
    ("split", "../../x", "invalid split name '../../x'"),
])
def test_a_clip_id_or_split_that_could_be_a_path_is_refused_before_anything_is_merged(fetched, tmp_path, column,
                                                                                      value, message):
    source = tmp_path / "source"
    merge_roots("tiny", [fetched["full"]], root=source, quiet=True)
    with sqlite3.connect(source / "tiny" / "ledger.sqlite") as db:
        db.execute(f"UPDATE clips SET {column} = ? WHERE rowid = 1", (value,))
    with pytest.raises(AudiobenchError, match=message):
        merge_roots("tiny", [source], root=tmp_path / "target", quiet=True)
    assert not (tmp_path / "target" / "tiny" / "raw").exists()


def test_roots_with_other_lists_are_refused(fetched, tmp_path):
    source = tmp_path / "source"
    merge_roots("tiny", [fetched["full"]], root=source, quiet=True)
    with Ledger(source / "tiny" / "ledger.sqlite") as ledger:
        ledger.set_meta(partition={"seed": 4, "method": "stratified"})
    merge_roots("tiny", [fetched["shard0"]], root=tmp_path / "target", quiet=True)
    with pytest.raises(AudiobenchError, match=r"its lists differ .*\(partition\); nothing was merged"):
        merge_roots("tiny", [source], root=tmp_path / "target", quiet=True)
    with pytest.raises(AudiobenchError, match="no dataset 'tiny' under"):
        merge_roots("tiny", [tmp_path / "nothing"], root=tmp_path / "target", quiet=True)


def test_what_a_killed_merge_leaves_is_finished_by_the_rerun(fetched, tmp_path):
    """A kill -9 can leave a temporary copy, or a copied file whose row was not yet written: neither counts."""
    merge_roots("tiny", [fetched["shard0"]], root=tmp_path, quiet=True)
    with sqlite3.connect(fetched["shard1"] / "tiny" / "ledger.sqlite") as db:
        split, clip, path = db.execute("SELECT split, clip_id, path FROM clips WHERE status = 'ok' LIMIT 1").fetchone()
    raw = tmp_path / "tiny" / "raw" / split
    (raw / f".{clip}.flac.4242.tmp").write_bytes(b"half a file")
    (tmp_path / "tiny" / path).write_bytes((fetched["shard1"] / "tiny" / path).read_bytes())  # copied, not marked
    merge_roots("tiny", [fetched["shard1"]], root=tmp_path, quiet=True)
    assert _dump(tmp_path) == _dump(fetched["full"])
    assert not list((tmp_path / "tiny" / "raw").rglob("*.tmp"))


def test_a_target_registered_from_the_same_lists_first_takes_the_merge(fetched, tmp_path):
    """`audiobench import DATASET ROOT... --format audiobench` registers the lists as fetch does, then merges."""
    from audiobench.data.register import register_dataset

    manifest, mirror = _manifest(tmp_path / "lists")
    register_dataset(manifest, root=tmp_path / "target", mirror=mirror)
    result = merge_roots("tiny", [fetched["shard1"], fetched["shard0"]], root=tmp_path / "target", quiet=True)
    assert result.copied == 6 and not result.problems
    assert _dump(tmp_path / "target")["clips"] == _dump(fetched["full"])["clips"]


@pytest.mark.slow
def test_a_merge_killed_mid_run_leaves_nothing_half_merged(tmp_path):
    """kill -9 while files are being copied; the rerun gives the ledger a merge without a kill gives."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from audiobench.data.register import register_dataset

    lists = tmp_path / "lists"
    lists.mkdir()
    ids = [f"id{i:09d}" for i in range(120)]
    (lists / "tiny.csv").write_text("".join(f'{y}, 0.000, 2.000, "/m/a"\n' for y in ids))
    manifest = lists / "tiny.toml"
    manifest.write_text(_manifest(tmp_path / "m")[0].read_text().replace(
        hashlib.sha256((tmp_path / "m" / "mirror" / "tiny.csv").read_bytes()).hexdigest(),
        hashlib.sha256((lists / "tiny.csv").read_bytes()).hexdigest()))
    source = tmp_path / "source"
    register_dataset(manifest, root=source, mirror=lists)
    rng = np.random.default_rng(0)
    with Ledger(source / "tiny" / "ledger.sqlite") as ledger:
        for row in ledger.statuses():
            data = rng.bytes(400_000)
            relative = f"raw/{row.split}/{row.clip_id}.flac"
            (source / "tiny" / relative).parent.mkdir(parents=True, exist_ok=True)
            (source / "tiny" / relative).write_bytes(data)
            ledger.mark(row.clip_id, "ok", path=relative, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                        duration=2.0, origin={"via": "yt-dlp"})
    target = tmp_path / "target"
    code = (f"from pathlib import Path; from audiobench.data.imports.merge import merge_roots; "
            f"merge_roots('tiny', [Path({str(source)!r})], root=Path({str(target)!r}), quiet=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((target / "tiny" / "raw").rglob("*.flac"))) < 10:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Ledger(target / "tiny" / "ledger.sqlite") as ledger:
        done = len(ledger.statuses(status="ok"))
        for row in ledger.statuses(status="ok"):  # whatever counts as merged is whole
            assert hashlib.sha256((target / "tiny" / row.path).read_bytes()).hexdigest() == row.sha256
    assert done < 120, "the kill should land mid-run"
    result = merge_roots("tiny", [source], root=target, quiet=True)
    assert result.copied == 120 - done and result.already == done
    cols = ", ".join(f'"{c}"' for c in COMPARED)
    rows = []
    for root in (source, target):
        with sqlite3.connect(root / "tiny" / "ledger.sqlite") as db:
            rows.append(db.execute(f"SELECT {cols} FROM clips ORDER BY clip_id").fetchall())
    assert rows[0] == rows[1]
    assert not list((target / "tiny" / "raw").rglob("*.tmp"))


def test_a_dataset_imported_from_a_folder_merges_with_its_manifest_and_the_source_is_not_written(tmp_path):
    from test_import_own import make_folder

    from audiobench.data.imports.own_data import import_own_data
    from audiobench.data.manifests import load_manifest

    own = make_folder(tmp_path / "mine")
    import_own_data("pets", own["folder"], labels=own["labels"], folds=3, root=tmp_path / "a", quiet=True)
    before = sorted((p.name, p.read_bytes()) for p in (tmp_path / "a" / "pets").iterdir() if p.is_file())
    result = merge_roots("pets", [tmp_path / "a"], root=tmp_path / "b", quiet=True)
    assert result.copied == 24
    assert sorted((p.name, p.read_bytes()) for p in (tmp_path / "a" / "pets").iterdir() if p.is_file()) == before
    assert load_manifest("pets", root=tmp_path / "b").source == "local"
    assert (tmp_path / "b" / "pets" / "index" / "clips.csv").is_file()


def test_the_import_command_merges_roots_and_a_rerun_is_no_failure(fetched, tmp_path):
    from click.testing import CliRunner

    from audiobench.cli import cli

    merged = CliRunner().invoke(cli, ["import", "tiny", str(fetched["shard0"]), str(fetched["shard1"]),
                                      "--format", "audiobench", "--root", str(tmp_path / "merged"), "--json"])
    assert merged.exit_code == 0, merged.output
    assert json.loads(merged.stdout)["copied"] == 6
    assert _dump(tmp_path / "merged") == _dump(fetched["full"])
    again = CliRunner().invoke(cli, ["import", "tiny", str(fetched["shard0"]), "--format", "audiobench",
                                     "--root", str(tmp_path / "merged")])
    assert again.exit_code == 0 and "0 clips copied" in again.output  # already there: not a failure
