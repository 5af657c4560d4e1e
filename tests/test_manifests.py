"""Manifests (what a dataset is), the split rule, and registering the listed clips in the ledger."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.records import Event
from audiobench.data.coverage import ALL, coverage
from audiobench.core.errors import AudiobenchError
from audiobench.data.index import INDEX_MIRROR_ENV
from audiobench.data.ledger import Ledger
from audiobench.data.lists import parse_audioset_segments, parse_class_labels_indices
from audiobench.data.manifests import MANIFESTS_ENV, Partition, available_manifests, load_manifest
from audiobench.data.register import partition, register_dataset
from audiobench.data.roles import split_roles
from audiobench.core.layout import DatasetPaths

# The SL-DCASE-17 classes (DCASE 2017 task 4), in this order.
SL_DCASE17_MIDS = ["/m/0284vy3", "/m/05x_td", "/m/02mfyn", "/m/02rhddq", "/m/0199g", "/m/06_fw", "/m/012n7d",
                   "/m/012ndj", "/m/0dgbq", "/m/04qvtq", "/m/03qc9zr", "/m/0k4j", "/t/dd00134", "/m/01bjv",
                   "/m/07r04", "/m/04_sv", "/m/07jdr"]
EUSIPCO_COMMIT = "https://raw.githubusercontent.com/bongjun/eusipco19/dc9135f3bb07d8df3e4dc46a5eefeeef1771e4f3/"
AUDIOSET_CSV = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(INDEX_MIRROR_ENV, raising=False)
    monkeypatch.delenv(MANIFESTS_ENV, raising=False)


def _listed(ledger: Ledger) -> dict[str, tuple[int, int]]:
    return {r.split: (r.listed, r.pending) for r in coverage(ledger, per_class=False) if r.label == ALL}


# -- the shipped manifests ---------------------------------------------------------------------------------
def test_shipped_manifests_match_the_reference_files(reference_dir):
    assert {"sl-dcase17", "audioset-balanced"} <= set(available_manifests())
    for name, base in (("sl-dcase17", EUSIPCO_COMMIT), ("audioset-balanced", AUDIOSET_CSV)):
        manifest = load_manifest(name)
        for f in manifest.index:
            assert f.url == base + f.name
            assert hashlib.sha256((reference_dir / f.mirror_dir / f.name).read_bytes()).hexdigest() == f.sha256


def test_sl_dcase17_manifest_declares_the_paper_setup():
    m = load_manifest("sl-dcase17")
    assert [c.mid for c in m.classes.inline] == SL_DCASE17_MIDS
    assert [(s.name, s.file, s.format, s.strong) for s in m.splits] == [
        ("train", "train_strong_labels.csv", "eusipco19-strong", True),
        ("val", "validation_set.csv", "eusipco19-weak", False),
        ("test", "test_set.csv", "eusipco19-weak", False),
    ]


def test_audioset_manifest_splits_the_balanced_list_90_10_with_a_seed():
    m = load_manifest("audioset-balanced")
    assert (m.classes.file, m.classes.format) == ("class_labels_indices.csv", "audioset-class-index")
    assert [(s.name, s.file, s.share) for s in m.splits] == [
        ("train", "balanced_train_segments.csv", 0.9), ("val", "balanced_train_segments.csv", 0.1),
        ("test", "eval_segments.csv", None)]
    assert m.partition == Partition(seed=2019, method="stratified")


# -- manifests a user writes --------------------------------------------------------------------------------
_GOOD = """
name = "{name}"
[classes]
inline = [{{ mid = "/m/0k4j", name = "Car" }}, {{ mid = "/m/07jdr", name = "Train" }}]
[[index]]
file = "tiny.csv"
url = "https://example.org/tiny.csv"
sha256 = "{sha}"
[partition]
seed = {seed}
method = "{method}"
[splits.train]
file = "tiny.csv"
format = "audioset-segments"
strong = false
share = 0.75
[splits.val]
file = "tiny.csv"
format = "audioset-segments"
strong = false
share = 0.25
"""


def _write_manifest(folder: Path, *, name: str = "tiny", sha: str = "0" * 64, seed: int = 1,
                    method: str = "random", edit: tuple[str, str] = ("", "")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(_GOOD.format(name=name, sha=sha, seed=seed, method=method).replace(*edit))
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (("share = 0.25", "share = 0.2"), "each needs a `share`, summing to 1"),
    (('format = "audioset-segments"\nstrong = false\nshare = 0.75', 'format = "nope"\nstrong = false'),
     "unknown list format 'nope'"),
    (("strong = false\nshare = 0.75", "strong = true\nshare = 0.75"), "has weak labels only"),
    (('name = "tiny"', 'name = "other"'), "differs from the file name"),
    (('sha256 = "' + "0" * 64, 'sha256 = "abc'), "is not 64 hex digits"),
    (("[partition]\nseed = 1", "[partition]\nseed = true"), "seed has the wrong type"),
    (('file = "tiny.csv"\nurl', 'file = "../tiny.csv"\nurl'), "must be a plain file name"),
    (("[[index]]", "[[index]"), "not valid TOML"),
    (("[splits.val]", '[splits."../../../victim"]'), "invalid split name '../../../victim'"),
    (("[splits.val]", '[splits."a/b"]'), "invalid split name 'a/b'"),
    (("[classes]", '[source]\nkind = "vimeo"\n[classes]'), "[source] kind: unknown source 'vimeo' (known: youtube, local, synth)"),
    (("[classes]", '[source]\nkind = "youtube"\nfolder = "x"\n[classes]'), "[source] has unknown key(s) folder"),
    (("[classes]", "[source]\n[classes]"), "[source] needs `kind`"),
    (("share = 0.25", 'share = 0.25\nrole = "dev"'), "split 'val' has role 'dev'; a role is one of train, val, test"),
    (("share = 0", 'role = "train"\nshare = 0'), "splits 'train' and 'val' both have role 'train'"),
])
def test_bad_manifest_is_an_error_naming_the_file(tmp_path, edit, message):
    path = _write_manifest(tmp_path, edit=edit)
    with pytest.raises(AudiobenchError, match="tiny.toml") as err:
        load_manifest(path)
    assert message in str(err.value)


def test_a_manifest_without_a_source_table_is_youtube_and_split_names_are_their_roles(tmp_path):
    manifest = load_manifest(_write_manifest(tmp_path))
    assert manifest.source == "youtube"
    assert manifest.roles == {"train": "train", "val": "val"}
    assert all(load_manifest(name).source == "youtube" for name in ("sl-dcase17", "audioset-balanced"))


def test_splits_may_have_any_names_and_say_which_role_they_play(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.csv").write_text("".join(f'rec{i:08d}, 0.000, 10.000, "/m/0k4j"\n' for i in range(40)))
    sha = hashlib.sha256((mirror / "tiny.csv").read_bytes()).hexdigest()
    edit = ("[splits.train]", '[source]\nkind = "youtube"\n[splits.fold1]\nrole = "test"\n[splits.train]')
    path = _write_manifest(tmp_path, sha=sha, edit=edit)
    path.write_text(path.read_text().replace('share = 0.75', 'share = 0.5').replace(
        "[splits.fold1]", '[splits.fold1]\nfile = "tiny.csv"\nformat = "audioset-segments"\nstrong = false\n'
                          "share = 0.25"))
    manifest = load_manifest(path)
    assert [(s.name, s.role) for s in manifest.splits] == [("fold1", "test"), ("train", None), ("val", None)]
    assert manifest.roles == {"train": "train", "val": "val", "test": "fold1"}
    result = register_dataset(path, root=tmp_path / "root", mirror=mirror)
    assert result.listed == {"fold1": 10, "train": 20, "val": 10}
    assert split_roles(DatasetPaths(tmp_path / "root", "tiny")) == {"train": "train", "val": "val", "test": "fold1"}


def test_a_split_name_that_leaves_the_root_is_refused_before_anything_is_written(tmp_path):
    """Joined to raw/ and audio/, the name would aim fetch, resample and featurize at the decoy folder."""
    decoy = tmp_path / "victim"
    decoy.mkdir()
    (decoy / "precious.txt").write_text("keep me")
    manifest = _write_manifest(tmp_path / "mine", edit=("[splits.val]", '[splits."../../../victim"]'))
    root = tmp_path / "root"
    out = CliRunner().invoke(cli, ["fetch", str(manifest), "--root", str(root)])
    assert out.exit_code == 2 and out.output.count("\n") == 1
    assert out.output.startswith(f"error: {manifest}: invalid split name '../../../victim'")
    assert sorted(p.name for p in decoy.iterdir()) == ["precious.txt"] and not root.exists()


def test_own_manifests_are_found_by_name_through_the_environment(tmp_path, monkeypatch):
    _write_manifest(tmp_path / "mine", name="my-cars")
    monkeypatch.setenv(MANIFESTS_ENV, str(tmp_path / "mine"))
    assert "my-cars" in available_manifests()
    assert load_manifest("my-cars").partition == Partition(seed=1, method="random")
    with pytest.raises(AudiobenchError, match="no manifest for dataset 'nope'"):
        load_manifest("nope")


# -- the split rule ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def balanced(reference_dir):
    a = reference_dir / "audioset"
    classes = parse_class_labels_indices(a / "class_labels_indices.csv")
    return classes, parse_audioset_segments(a / "balanced_train_segments.csv", classes=classes, split="train")


def test_stratified_split_is_deterministic_and_keeps_every_class_in_val(balanced):
    classes, clips = balanced
    rule = Partition(seed=2019, method="stratified")
    parts = partition(clips, {"train": 0.9, "val": 0.1}, rule=rule)
    assert (len(parts["train"]), len(parts["val"])) == (19948, 2212)
    assert {c.split for c in parts["val"]} == {"val"}
    assert len({w for c in parts["val"] for w in c.weak}) == len(classes) == 527
    # the same split from the list in another order: it depends on the seed and the clips only
    again = partition(list(reversed(clips)), {"train": 0.9, "val": 0.1}, rule=rule)
    assert {c.clip_id for c in again["val"]} == {c.clip_id for c in parts["val"]}
    other = partition(clips, {"train": 0.9, "val": 0.1}, rule=Partition(seed=7, method="stratified"))
    assert {c.clip_id for c in other["val"]} != {c.clip_id for c in parts["val"]}


def test_random_split_cuts_the_seeded_order_exactly(balanced):
    _, clips = balanced
    parts = partition(clips, {"train": 0.9, "val": 0.1}, rule=Partition(seed=2019, method="random"))
    assert (len(parts["train"]), len(parts["val"])) == (19944, 2216)
    assert not {c.clip_id for c in parts["train"]} & {c.clip_id for c in parts["val"]}


# -- registering the listed clips ---------------------------------------------------------------------------
def test_sl_dcase17_from_the_mirror_lists_every_clip_pending(reference_dir, tmp_path):
    result = register_dataset("sl-dcase17", root=tmp_path, mirror=reference_dir)
    assert result.listed == {"train": 1591, "val": 1638, "test": 626}
    assert result.added == 1591 + 1638 + 626
    with Ledger(result.ledger) as ledger:
        assert _listed(ledger) == {"train": (1591, 1591), "val": (1638, 1638), "test": (626, 626)}
        assert ledger.splits() == {"train": True, "val": False, "test": False}
        assert [c.mid for c in ledger.classes()] == SL_DCASE17_MIDS
        clip = {c.clip_id: c for c in ledger.clips(split="train")}["l6_h_YHuTbY_30000_40000"]
        assert Event(2, 4.888, 6.429) in clip.events
        assert ledger.meta()["listed"] == {"train": 1591, "val": 1638, "test": 626}


def test_registering_again_adds_nothing_and_keeps_statuses(reference_dir, tmp_path):
    first = register_dataset("sl-dcase17", root=tmp_path, mirror=reference_dir)
    with Ledger(first.ledger) as ledger:
        ledger.mark("-9mHz0OsKKw_0_10000", "ok", bytes=10, path="raw/x.flac")
        ledger.mark("---1_cCGK4M_0_10000", "unavailable", error="Video unavailable")
    again = register_dataset("sl-dcase17", root=tmp_path, mirror=reference_dir)
    assert again.added == 0 and again.listed == first.listed
    with Ledger(again.ledger) as ledger:
        assert ledger.counts()["test"]["ok"] == 1
        assert ledger.counts()["val"]["unavailable"] == 1
        assert sum(sum(c.values()) for c in ledger.counts().values()) == 3855


def test_audioset_balanced_from_the_mirror(reference_dir, tmp_path):
    result = register_dataset("audioset-balanced", root=tmp_path, mirror=reference_dir)
    assert result.listed["train"] + result.listed["val"] == 22160
    assert result.listed == {"train": 19948, "val": 2212, "test": 20371}
    with Ledger(result.ledger) as ledger:
        listed = _listed(ledger)
        assert listed["train"][0] + listed["val"][0] == 22160
        assert listed["test"] == (20371, 20371)
        assert len(ledger.classes()) == 527
        assert ledger.meta()["partition"] == {"seed": 2019, "method": "stratified"}


def test_changed_split_rule_on_an_existing_ledger_is_an_error(reference_dir, tmp_path):
    src = (reference_dir / "audioset" / "balanced_train_segments.csv").read_text().splitlines(keepends=True)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    tiny = mirror / "tiny.csv"  # 40 real segments, relabelled Car or Train, without the header comments
    tiny.write_text("".join(line.split('"')[0] + ('"/m/0k4j"\n' if i % 3 else '"/m/07jdr"\n')
                            for i, line in enumerate(src[3:43])))
    manifests = tmp_path / "manifests"
    sha = hashlib.sha256(tiny.read_bytes()).hexdigest()
    first = register_dataset(_write_manifest(manifests, sha=sha, seed=1), root=tmp_path / "root", mirror=mirror)
    assert first.listed == {"train": 30, "val": 10}
    with pytest.raises(AudiobenchError, match="the lists or the split rule changed"):
        register_dataset(_write_manifest(manifests, sha=sha, seed=2), root=tmp_path / "root", mirror=mirror)


def _toy_dataset(tmp_path: Path, ids: list[str], *, source: str = "toy") -> tuple[Path, Path]:
    """A manifest whose recordings come from ``source``, and a mirror holding its one list."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(parents=True, exist_ok=True)
    tiny = mirror / "tiny.csv"
    tiny.write_text("".join(f'{rec}, 0.000, 10.000, "/m/0k4j"\n' for rec in ids))
    edit = ("[classes]", f'[source]\nkind = "{source}"\n[classes]')
    manifest = _write_manifest(tmp_path / "manifests", sha=hashlib.sha256(tiny.read_bytes()).hexdigest(), edit=edit)
    return manifest, mirror


def test_a_source_added_in_one_place_is_used_by_manifests_lists_and_the_ledger(tmp_path, toy_source):
    manifest, mirror = _toy_dataset(tmp_path, [f"rec{i:04d}" for i in range(8)])
    assert load_manifest(manifest).source == toy_source
    result = register_dataset(manifest, root=tmp_path / "root", mirror=mirror)
    assert result.listed == {"train": 6, "val": 2}
    with Ledger(result.ledger) as ledger:
        clips = ledger.clips()
        assert {(c.source, c.clip_id) for c in clips} == {("toy", f"rec{i:04d}_0_10000") for i in range(8)}
        assert ledger.meta()["roles"] == {"train": "train", "val": "val"}
    # IDs are checked by the manifest's source: a YouTube ID is not a toy recording
    manifest, mirror = _toy_dataset(tmp_path / "bad", ["rec0001", "-9mHz0OsKKw"])
    with pytest.raises(AudiobenchError, match="tiny.csv line 2: invalid toy recording ID '-9mHz0OsKKw'"):
        register_dataset(manifest, root=tmp_path / "bad-root", mirror=mirror)


def test_a_manifest_whose_source_changed_is_refused_on_an_existing_ledger(tmp_path, toy_source):
    ids = [f"rec{i:08d}" for i in range(8)]  # valid IDs of both sources
    manifest, mirror = _toy_dataset(tmp_path, ids, source="youtube")
    register_dataset(manifest, root=tmp_path / "root", mirror=mirror)
    manifest, mirror = _toy_dataset(tmp_path, ids, source="toy")
    with pytest.raises(AudiobenchError, match="comes from source 'youtube' there but 'toy' in the manifest"):
        register_dataset(manifest, root=tmp_path / "root", mirror=mirror)
