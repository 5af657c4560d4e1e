"""Index download: official URL or mirror (a folder, or a real HTTP server on 127.0.0.1), checked by sha256."""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from audiobench.data import index
from audiobench.core.errors import AudiobenchError, SourceUnreachable
from audiobench.data.index import INDEX_MIRROR_ENV, fetch_index, fetch_index_file
from audiobench.core.layout import DatasetPaths
from audiobench.data.manifests import load_manifest
from static_server import HostThatGoesAway, StaticServer, closed_port

SL = load_manifest("sl-dcase17")
AUDIOSET = load_manifest("audioset-balanced")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def served(reference_dir, tmp_path) -> Iterator[StaticServer]:
    """A tmp copy of the reference lists (per-source sub-folders, as in tests/data/reference) over HTTP."""
    folder = tmp_path / "served"
    for sub in ("eusipco19", "audioset"):
        shutil.copytree(reference_dir / sub, folder / sub)
    with StaticServer(folder) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch):
    monkeypatch.setattr(index, "_BACKOFF_S", 0.0)
    monkeypatch.delenv(INDEX_MIRROR_ENV, raising=False)


def test_folder_mirror_gives_verified_lists_under_index(reference_dir, tmp_path):
    paths = DatasetPaths(tmp_path / "root", "sl-dcase17")
    got = fetch_index(SL, paths, mirror=reference_dir)
    assert [p.name for p in got] == ["train_strong_labels.csv", "validation_set.csv", "test_set.csv"]
    assert all(p.parent == paths.index for p in got)
    assert [_sha(p) for p in got] == [f.sha256 for f in SL.index]
    assert sorted(p.name for p in paths.index.iterdir()) == sorted(p.name for p in got)  # no temporary files left


def test_flat_folder_mirror_and_env_variable(reference_dir, tmp_path, monkeypatch):
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in AUDIOSET.index:
        shutil.copy(reference_dir / "audioset" / f.name, flat / f.name)
    monkeypatch.setenv(INDEX_MIRROR_ENV, str(flat))
    got = fetch_index(AUDIOSET, DatasetPaths(tmp_path / "root", "audioset-balanced"))
    assert [_sha(p) for p in got] == [f.sha256 for f in AUDIOSET.index]


def test_url_mirror_falls_back_to_the_source_folder(served, tmp_path):
    got = fetch_index(SL, DatasetPaths(tmp_path / "root", "sl-dcase17"), mirror=served.url + "/")
    assert [_sha(p) for p in got] == [f.sha256 for f in SL.index]
    assert served.requests[:2] == ["/train_strong_labels.csv", "/eusipco19/train_strong_labels.csv"]


def test_verified_files_are_not_downloaded_again(served, tmp_path):
    paths = DatasetPaths(tmp_path / "root", "sl-dcase17")
    fetch_index(SL, paths, mirror=served.url)
    before = len(served.requests)
    stamps = [p.stat().st_mtime_ns for p in sorted(paths.index.iterdir())]
    fetch_index(SL, paths, mirror=served.url)
    assert len(served.requests) == before
    assert [p.stat().st_mtime_ns for p in sorted(paths.index.iterdir())] == stamps


def test_official_url_is_used_without_a_mirror(served, tmp_path):
    spec = replace(SL.index_file("test_set.csv"), url=f"{served.url}/eusipco19/test_set.csv")
    path = fetch_index_file(spec, tmp_path, mirror=None)
    assert _sha(path) == spec.sha256
    assert served.requests == ["/eusipco19/test_set.csv"]


def test_transient_server_errors_are_retried(served, tmp_path):
    served.fail["/eusipco19/test_set.csv"] = [503, 500]
    spec = replace(SL.index_file("test_set.csv"), url=f"{served.url}/eusipco19/test_set.csv")
    assert _sha(fetch_index_file(spec, tmp_path)) == spec.sha256
    assert served.requests == ["/eusipco19/test_set.csv"] * 3


def test_checksum_mismatch_names_file_and_both_hashes_and_keeps_nothing(reference_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(reference_dir / "eusipco19", bad / "eusipco19")
    corrupted = bad / "eusipco19" / "validation_set.csv"
    corrupted.write_bytes(corrupted.read_bytes().replace(b"/m/0k4j", b"/m/07jdr", 1))
    paths = DatasetPaths(tmp_path / "root", "sl-dcase17")
    with pytest.raises(AudiobenchError) as err:
        fetch_index(SL, paths, mirror=bad)
    message = str(err.value)
    assert "validation_set.csv: sha256 mismatch" in message
    assert f"expected {SL.index_file('validation_set.csv').sha256}, got {_sha(corrupted)}" in message
    assert sorted(p.name for p in paths.index.iterdir()) == ["train_strong_labels.csv"]  # no bad file, no .part


def test_checksum_mismatch_over_http(served, tmp_path):
    target = served.folder / "audioset" / "eval_segments.csv"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(AudiobenchError, match=r"eval_segments.csv: sha256 mismatch for http://127\.0\.0\.1:\d+/"
                                              r"audioset/eval_segments.csv: expected f7055f53"):
        fetch_index(AUDIOSET, DatasetPaths(tmp_path / "root", "audioset-balanced"), mirror=served.url)
    assert not (tmp_path / "root" / "audioset-balanced" / "index" / "eval_segments.csv").exists()


def test_a_bad_file_already_in_index_is_replaced(reference_dir, tmp_path):
    paths = DatasetPaths(tmp_path / "root", "sl-dcase17")
    paths.index.mkdir(parents=True)
    (paths.index / "test_set.csv").write_text("truncated")
    fetch_index(SL, paths, mirror=reference_dir)
    assert _sha(paths.index / "test_set.csv") == SL.index_file("test_set.csv").sha256


def test_missing_file_says_where_it_looked(served, tmp_path):
    with pytest.raises(AudiobenchError, match=r"cannot get train_strong_labels.csv: tried .*/train_strong_labels"
                                              r"\.csv \(HTTP 404\), .*/eusipco19/train_strong_labels\.csv"):
        fetch_index(SL, DatasetPaths(tmp_path / "root", "sl-dcase17"), mirror=served.url + "/nothing-here")
    with pytest.raises(AudiobenchError, match="neither a folder nor an http"):
        fetch_index(SL, DatasetPaths(tmp_path / "root", "sl-dcase17"), mirror=str(tmp_path / "no-such-dir"))


def test_an_official_host_that_does_not_answer_is_unreachable_with_a_hint_naming_index_mirror(tmp_path):
    port = closed_port()
    spec = replace(SL.index_file("test_set.csv"), url=f"http://127.0.0.1:{port}/eusipco19/test_set.csv")
    with pytest.raises(SourceUnreachable) as err:
        fetch_index_file(spec, tmp_path)
    assert str(err.value) == (f"cannot reach 127.0.0.1:{port} (connection refused); nothing was downloaded; check "
                              "the network, or give --index-mirror DIR|URL: a folder or server holding test_set.csv")
    assert err.value.exit_code == 3 and list(tmp_path.iterdir()) == []


def test_a_host_gone_after_the_check_is_unreachable_too_not_bad_input(tmp_path):
    with HostThatGoesAway(connections=1) as host:
        spec = replace(SL.index_file("test_set.csv"), url=f"{host.url}/test_set.csv")
        with pytest.raises(SourceUnreachable, match=r"cannot get test_set.csv: tried http://127\.0\.0\.1:\d+/"
                                                    r"test_set.csv \(\[Errno 111\] Connection refused\); check"):
            fetch_index_file(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []
