"""import_own_data: a folder of real audio files (written with soundfile here) and CSV tables become a dataset
that status, resample, featurize and compare treat like a published one."""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths
from audiobench.data.imports.own_data import fold_dataset, import_own_data
from audiobench.data.ledger import Ledger
from audiobench.data.manifests import load_manifest
from audiobench.data.roles import split_roles

CLASSES = ("dog", "siren", "rain")
RATE = 16000


def _tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def make_folder(base: Path, n: int = 24) -> dict[str, Path]:
    """``n`` short files (wav and flac, some in sub-folders, one name with a space) of three classes, with a
    labels table (file ``i`` has class ``i % 3``; every fourth also the next class) and a strong table."""
    audio = base / "audio"
    (audio / "street").mkdir(parents=True)
    labels = ["file,labels"]
    strong = ["file,onset,offset,label"]
    for i in range(n):
        cls = CLASSES[i % 3]
        name = f"street/clip {i:02d}.flac" if i % 2 else f"c{i:02d}.wav"
        seconds = 1.0 + 0.25 * (i % 4)
        sf.write(audio / name, _tone(seconds, 300 + 400 * (i % 3) + i), RATE)
        both = [cls, CLASSES[(i + 1) % 3]] if i % 4 == 0 else [cls]
        labels.append(f'{name},"{",".join(both)}"' if len(both) > 1 else f"{name},{cls}")
        strong.append(f"{name},0.1,0.6,{cls}")
    (base / "labels.csv").write_text("\n".join(labels) + "\n")
    (base / "strong.csv").write_text("\n".join(strong) + "\n")
    return {"folder": audio, "labels": base / "labels.csv", "strong": base / "strong.csv"}


@pytest.fixture
def own(tmp_path) -> dict[str, Path]:
    return make_folder(tmp_path / "mine")


def test_folds_make_a_dataset_with_a_manifest_and_one_rotation_per_fold(own, tmp_path):
    root = tmp_path / "root"
    result = import_own_data("pets", own["folder"], labels=own["labels"], strong=own["strong"], folds=3, root=root,
                             quiet=True)
    assert result.classes == CLASSES
    assert result.splits == {"fold1": 8, "fold2": 8, "fold3": 8}  # stratified: the classes split evenly
    assert result.rotations == ["pets-fold1", "pets-fold2", "pets-fold3"]
    manifest = load_manifest("pets", root=root)  # found by name under the root
    assert manifest.path == root / "pets" / "manifest.toml" and manifest.source == "local"
    with Ledger(root / "pets" / "ledger.sqlite") as ledger:
        rows = ledger.statuses()
        origins = ledger.origins()
        clips = {c.clip_id: c for c in ledger.clips()}
    assert len(rows) == 24 and {r.status for r in rows} == {"ok"}
    spaced = next(r for r in rows if r.source_id == "street--clip_01")
    assert origins[spaced.clip_id] == {"via": "import", "format": "folder", "copy": str(own["folder"]),
                                       "member": "street/clip 01.flac", "sha256": spaced.sha256,
                                       "codec": "flac", "sample_rate": 16000, "channels": 1}
    copied = root / "pets" / spaced.path
    assert copied.read_bytes() == (own["folder"] / "street/clip 01.flac").read_bytes()
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == spaced.sha256
    assert spaced.duration == pytest.approx(1.25) and spaced.end == pytest.approx(1.25)
    c00 = next(c for c in clips.values() if c.source_id == "c00")
    assert c00.weak == (0, 1) and [(e.class_index, e.onset, e.offset) for e in c00.events] == [(0, 0.1, 0.6)]
    # Each rotation tests on its fold, validates on the next and trains on the rest.
    folds = {r.source_id: r.split for r in rows}
    for k in (1, 2, 3):
        paths = DatasetPaths(root, fold_dataset("pets", k))
        assert split_roles(paths) == {"train": "train", "val": "val", "test": "test"}
        with Ledger(paths.ledger) as ledger:
            roles = {r.source_id: r.split for r in ledger.statuses()}
        assert {s for s, r in roles.items() if r == "test"} == {s for s, f in folds.items() if f == f"fold{k}"}
        assert {s for s, r in roles.items() if r == "val"} == {s for s, f in folds.items() if f == f"fold{k % 3 + 1}"}


def test_a_rerun_changes_nothing_and_other_tables_under_the_same_name_are_refused(own, tmp_path):
    root = tmp_path / "root"
    import_own_data("pets", own["folder"], labels=own["labels"], folds=3, root=root, quiet=True)
    with Ledger(root / "pets" / "ledger.sqlite") as ledger:
        before = ledger.statuses()
    again = import_own_data("pets", own["folder"], labels=own["labels"], folds=3, root=root, quiet=True)
    assert again.copied == 0 and again.already == 24
    with Ledger(root / "pets" / "ledger.sqlite") as ledger:
        assert ledger.statuses() == before  # the updated stamps too
    with pytest.raises(AudiobenchError, match="was imported from other files or tables"):
        import_own_data("pets", own["folder"], labels=own["labels"], folds=4, root=root, quiet=True)


def test_a_split_table_gives_the_splits_it_names(own, tmp_path):
    rows = own["labels"].read_text().splitlines()[1:]
    names = [r.split(",")[0] for r in rows]
    table = tmp_path / "splits.csv"
    table.write_text("file,split\n" + "".join(f"{n},{['train', 'val', 'test'][i % 3]}\n" for i, n in enumerate(names)))
    classes = tmp_path / "classes.txt"
    classes.write_text("rain\nsiren\ndog\nunused\n")
    result = import_own_data("mine", own["folder"], labels=own["labels"], splits=table, classes=classes,
                             root=tmp_path / "root", quiet=True)
    assert result.splits == {"train": 8, "val": 8, "test": 8} and result.rotations == []
    assert result.classes == ("rain", "siren", "dog", "unused")
    assert json.loads(json.dumps(result.to_dict()))["splits"] == result.splits
    assert "24 clips (train 8, val 8, test 8), 4 classes; 24 files copied" in result.summary()


def _edit(path: Path, line: int, text: str | None) -> None:
    lines = path.read_text().splitlines()
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("table", "line", "text", "message"), [
    ("labels", 3, "nothere.wav,dog", "labels.csv line 3: no file 'nothere.wav' in"),
    ("labels", 3, "../labels.csv,dog", "labels.csv line 3: file '../labels.csv' must be a path inside"),
    ("labels", 3, "/etc/passwd,dog", "labels.csv line 3: file '/etc/passwd' must be a path inside"),
    ("labels", 3, "c00.wav,dog", "labels.csv line 3: file 'c00.wav' already on line 2"),
    ("labels", 2, 'c00.wav,"dog,,siren"', "labels.csv line 2: c00.wav: empty label"),
    ("labels", 1, "name,labels", "labels.csv line 1: expected the header file,labels"),
    ("strong", 2, "c00.wav,-1,0.6,dog", "strong.csv line 2: onset '-1' is not a time in seconds"),
    ("strong", 2, "c00.wav,0.7,0.6,dog", "strong.csv line 2: c00.wav: onset 0.7 after offset 0.6"),
    ("strong", 2, "c00.wav,zero,0.6,dog", "strong.csv line 2: onset 'zero' is not a number"),
    ("strong", 2, "c00.wav,0.1,9.5,dog", "strong.csv line 2: c00.wav: event 'dog' 0.1-9.5 s ends after the file"),
    ("strong", 2, "c00.wav,0.1,0.6,rain", "strong.csv line 2: c00.wav: label 'rain' is not among its labels"),
    ("strong", 2, "other.wav,0.1,0.6,dog", "strong.csv line 2: file 'other.wav' is not in the labels table"),
    ("strong", 2, "c00.wav,0.1,dog", "strong.csv line 2: expected 4 ','-separated fields, found 3"),
])
def test_a_bad_table_is_one_line_naming_file_and_line_and_nothing_is_written(own, tmp_path, table, line, text,
                                                                           message):
    _edit(own[table], line, text)
    root = tmp_path / "root"
    with pytest.raises(AudiobenchError) as err:
        import_own_data("pets", own["folder"], labels=own["labels"], strong=own["strong"], folds=3, root=root,
                        quiet=True)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not root.exists()


def test_unknown_labels_missing_splits_and_bad_audio_are_refused(own, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\nsiren\n")
    unknown = r"labels.csv line 4: c02.wav: unknown label 'rain' \(not in .*classes.txt\)"
    with pytest.raises(AudiobenchError, match=unknown):
        import_own_data("pets", own["folder"], labels=own["labels"], classes=classes, folds=3, root=tmp_path,
                        quiet=True)
    table = tmp_path / "splits.csv"
    table.write_text("file,split\nc00.wav,train\n")
    with pytest.raises(AudiobenchError, match=r"splits.csv: no split for 'street/clip 01.flac' \(labels table line 3\) "
                                              "and 22 more"):
        import_own_data("pets", own["folder"], labels=own["labels"], splits=table, root=tmp_path, quiet=True)
    (own["folder"] / "c00.wav").write_bytes(b"this is text, not audio" * 10)
    with pytest.raises(AudiobenchError, match=r"c00.wav.*nothing was imported"):
        import_own_data("pets", own["folder"], labels=own["labels"], folds=3, root=tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()
    with pytest.raises(AudiobenchError, match="either a split table"):
        import_own_data("pets", own["folder"], labels=own["labels"], root=tmp_path, quiet=True)


def test_a_link_that_leads_out_of_the_folder_is_refused(own, tmp_path):
    secret = tmp_path / "secret.wav"
    sf.write(secret, _tone(1.0, 440), RATE)
    (own["folder"] / "link.wav").symlink_to(secret)
    with own["labels"].open("a") as f:
        f.write("link.wav,dog\n")
    with pytest.raises(AudiobenchError, match="labels.csv line 26: file 'link.wav' leads outside"):
        import_own_data("pets", own["folder"], labels=own["labels"], folds=3, root=tmp_path / "root", quiet=True)


@pytest.mark.slow  # about 15 s: resample, featurize and four tiny trainings
def compare_fold(own: dict[str, Path], tmp_path: Path, fold: int, variants: tuple[str, ...], *, trials: int,
                 epochs: int):
    """Import ``own`` in 3 folds, then resample, featurize and compare ``variants`` on fold ``fold``'s rotation."""
    from audiobench.data.resample import resample
    from audiobench.features.featurize import featurize
    from audiobench.study.compare import CompareConfig, compare
    from audiobench.training.options import TrainOptions

    root = tmp_path / "root"
    import_own_data("pets", own["folder"], labels=own["labels"], strong=own["strong"], folds=3, root=root,
                    quiet=True)
    dataset = fold_dataset("pets", fold)
    assert resample(dataset, root=root, quiet=True).counts["failed"] == 0
    featurize(dataset, root=root, quiet=True)
    config = CompareConfig(dataset, variants, trials=trials,
                           train=TrainOptions(width=0.0625, batch_size=8, lr=3e-3, epochs=epochs))
    return compare(config, root=root, out=tmp_path / "study", quiet=True)


def test_an_imported_fold_rotation_resamples_featurizes_and_compares(own, tmp_path, one_torch_thread):
    result = compare_fold(own, tmp_path, 2, ("noatt-weak", "att-self"), trials=2, epochs=2)
    assert result.failures == [] and result.finished == 4
    assert "att-self" in (result.run_dir / "report.md").read_text()


def test_rotations_hard_link_the_raw_files_of_the_folds(own, tmp_path):
    root = tmp_path / "root"
    import_own_data("pets", own["folder"], labels=own["labels"], folds=3, root=root, quiet=True)
    with Ledger(root / "pets" / "ledger.sqlite") as base, Ledger(root / "pets-fold1" / "ledger.sqlite") as rotation:
        first = {r.source_id: root / "pets" / r.path for r in base.statuses()}
        for row in rotation.statuses():
            assert (root / "pets-fold1" / row.path).stat().st_ino == first[row.source_id].stat().st_ino
            assert row.sha256 == hashlib.sha256(first[row.source_id].read_bytes()).hexdigest()


def test_a_killed_import_is_finished_by_the_rerun_and_the_manifest_registers_by_name(own, tmp_path):
    from audiobench.data.register import register_dataset

    root = tmp_path / "root"
    import_own_data("pets", own["folder"], labels=own["labels"], folds=3, root=root, quiet=True)
    with Ledger(root / "pets" / "ledger.sqlite") as ledger:
        row = ledger.statuses()[0]
    with sqlite3.connect(root / "pets" / "ledger.sqlite") as db:  # as a kill before the mark leaves it
        db.execute("UPDATE clips SET status = 'pending', path = NULL, origin = NULL WHERE clip_id = ?", (row.clip_id,))
    (root / "pets" / row.path).unlink()
    (root / "pets" / "raw" / row.split / f".{row.clip_id}.wav.999.tmp").write_bytes(b"half")
    again = import_own_data("pets", own["folder"], labels=own["labels"], folds=3, root=root, quiet=True)
    assert again.copied == 1 and again.already == 23
    with Ledger(root / "pets" / "ledger.sqlite") as ledger:
        assert {r.status for r in ledger.statuses()} == {"ok"} and row.clip_id in ledger.origins()
    assert not list((root / "pets" / "raw").rglob("*.tmp"))
    assert register_dataset("pets", root=root).added == 0  # the manifest under the root, found by name
    (root / "pets" / "index" / "clips.csv").write_text("id,start,end,labels,events\n")
    with pytest.raises(AudiobenchError, match=r"clips.csv: missing, or its sha256 is no longer .* `audiobench import"):
        register_dataset("pets", root=root)


@pytest.mark.parametrize("bad", ["../a", "a/b", ".a", "", "a..b", "a b", "x" * 129])
def test_a_local_recording_id_that_could_leave_its_folder_is_refused(bad):
    from audiobench.data.sources import validate_source_id

    with pytest.raises(AudiobenchError, match="invalid local recording ID"):
        validate_source_id("local", bad, where="list line 2")


def test_local_ids_are_made_safe_from_any_path():
    from audiobench.data.sources.local import local_id_for

    assert local_id_for("dogs/bark 01.wav") == "dogs--bark_01"
    assert local_id_for("..hidden/x.wav") == "x_.hidden--x"
    assert local_id_for("Ünïcode/ß.flac") == "x_n_code--_"


def test_the_import_command_makes_your_own_dataset_and_status_shows_it(own, tmp_path):
    from click.testing import CliRunner

    from audiobench.cli import cli

    root = tmp_path / "root"
    args = ["import", "pets", str(own["folder"]), "--labels", str(own["labels"]), "--folds", "3", "--root", str(root)]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["splits"] == {"fold1": 8, "fold2": 8, "fold3": 8}
    status = CliRunner().invoke(cli, ["status", "pets", "--root", str(root), "--no-per-class", "--json"])
    assert status.exit_code == 0, status.output
    assert {(r["split"], r["source"], r["clips"]) for r in json.loads(status.stdout)["sources"]} == {
        (f"fold{k}", "import folder", 8) for k in (1, 2, 3)}
    lonely = CliRunner().invoke(cli, ["import", "pets", str(own["folder"]), "--folds", "3", "--root", str(root)])
    assert lonely.exit_code == 2 and "give --labels too" in lonely.output


# -- refused imports through the command line: one line, nothing written, then the corrected command works ----
def _append_labels(own: dict[str, Path], text: str) -> None:
    with own["labels"].open("a") as f:
        f.write(text + "\n")


def _same_bytes(own: dict[str, Path]) -> None:
    (own["folder"] / "dup.wav").write_bytes((own["folder"] / "c00.wav").read_bytes())
    _append_labels(own, "dup.wav,dog")


def _classes_file(own: dict[str, Path], text: str) -> list[str]:
    (own["labels"].parent / "classes.txt").write_text(text)
    return ["--classes", str(own["labels"].parent / "classes.txt")]


def _splits_file(own: dict[str, Path], last: str | None = None) -> list[str]:
    names = [row.split(",")[0] for row in own["labels"].read_text().splitlines()[1:]]
    rows = [f"{n},{['train', 'val', 'test'][i % 3]}" for i, n in enumerate(names)]
    if last is not None:
        rows[-1] = last
    (own["labels"].parent / "splits.csv").write_text("file,split\n" + "\n".join(rows) + "\n")
    return ["--splits", str(own["labels"].parent / "splits.csv")]


def _unlabelled_in_splits(own: dict[str, Path]) -> list[str]:
    sf.write(own["folder"] / "other.wav", _tone(1.0, 500), RATE)
    return _splits_file(own, last="other.wav,test")


def _other_dataset_named(own: dict[str, Path], root: Path, name: str) -> None:
    """Another import already made dataset ``name`` (here: the rotation name a later ``--folds`` import needs)."""
    import_own_data(name, own["folder"], labels=own["labels"], splits=Path(_splits_file(own)[1]), root=root,
                    quiet=True)


def _folds3(own: dict[str, Path]) -> list[str]:
    return ["--folds", "3"]


def _broken_line(line: int, text: str):
    return lambda own: _edit(own["labels"], line, text) or _folds3(own)


def _added_line(text: str):
    return lambda own: _append_labels(own, text) or _folds3(own)


def _with_classes(text: str):
    return lambda own: _classes_file(own, text) + _folds3(own)


def _late_event(own: dict[str, Path]) -> list[str]:
    _edit(own["strong"], 3, "street/clip 01.flac,0.1,9.5,siren")
    return ["--strong", str(own["strong"]), *_folds3(own)]


# id: how the input is broken (returns the options to give), what the one line says, the corrected options
# (the labels table is restored before the corrected command runs)
REFUSALS = {
    "control character in a label": (_broken_line(4, "c02.wav,ra\x07in"),
                                     r"labels.csv line 4: control character '\\x07' at column 11", _folds3),
    "NUL in a file name": (_broken_line(4, "c02.wav\x00,rain"), r"labels.csv line 4: control character '\\x00'",
                           _folds3),
    "bidirectional override in a label": (_broken_line(4, "c02.wav,ra\u202ein"),
                                          r"labels.csv line 4: control character '\\u202e'", _folds3),
    "unterminated quote": (_broken_line(4, 'c02.wav,"rain'),
                           r"labels.csv line 4: malformed CSV \(unexpected end of data\)", _folds3),
    "a file listed twice": (_added_line("./c02.wav,rain"), r"labels.csv line 8: file 'c02.wav' already on line 4",
                            _folds3),
    "two files with the same bytes": (lambda own: _same_bytes(own) or _folds3(own),
                                      r"labels.csv line 8: dup.wav holds the same bytes as c00.wav \(line 2\)",
                                      _folds3),
    "a file listed but missing": (_added_line("gone.wav,dog"), r"labels.csv line 8: no file 'gone.wav' in", _folds3),
    "control character in a class name": (_with_classes("dog\nsiren\nrain\nfog\x1b[31m\n"),
                                          r"classes.txt line 4: control character '\\x1b'", _folds3),
    "a class name with a comma": (_with_classes("dog\nsiren\nrain\nfog,mist\n"),
                                  r"classes.txt line 4: class 'fog,mist' contains", _folds3),
    "more folds than files": (lambda own: ["--folds", "7"],
                              r"--folds 7: .*labels.csv names 6 files, too few for 7 folds .* --folds 3 to 6", _folds3),
    "fewer folds than three": (lambda own: ["--folds", "2"], r"--folds 2: need 3 to 99 folds", _folds3),
    "a split table naming an unlabelled file": (_unlabelled_in_splits,
                                                r"splits.csv line 7: file 'other.wav' is not in the labels table",
                                                lambda own: _splits_file(own)),
    "a split name that is not a name": (lambda own: _splits_file(own, last="street/clip 05.flac,te st"),
                                        r"splits.csv line 7: invalid split name 'te st'",
                                        lambda own: _splits_file(own)),
    "an event after the end of its file": (_late_event, r"strong.csv line 3: street/clip 01.flac: event 'siren' "
                                                        r"0.1-9.5 s ends after the file", _folds3),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_a_refused_import_writes_nothing_and_the_corrected_command_then_works(tmp_path, case):
    from click.testing import CliRunner

    from audiobench.cli import cli

    own = make_folder(tmp_path / "mine", n=6)
    clean = own["labels"].read_text()
    root = tmp_path / "root"
    breaks, message, corrected = REFUSALS[case]
    options = breaks(own)
    refused = CliRunner().invoke(cli, ["import", "pets", str(own["folder"]), "--labels", str(own["labels"]),
                                       *options, "--root", str(root), "--quiet"])
    assert refused.exit_code == 2 and refused.stdout == "", refused.output
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1, refused.stderr
    assert re.search(message, refused.stderr), refused.stderr
    assert not root.exists() or not list(root.iterdir())  # no manifest, no index, no dataset folder
    own["labels"].write_text(clean)
    again = CliRunner().invoke(cli, ["import", "pets", str(own["folder"]), "--labels", str(own["labels"]),
                                     *corrected(own), "--root", str(root), "--quiet", "--json"])
    assert again.exit_code == 0, again.output
    assert sum(json.loads(again.stdout)["splits"].values()) == 6


def test_a_name_one_rotation_would_take_is_refused_before_any_dataset_is_written(tmp_path):
    from click.testing import CliRunner

    from audiobench.cli import cli

    own = make_folder(tmp_path / "mine", n=6)
    root = tmp_path / "root"
    _other_dataset_named(own, root, "pets-fold2")
    before = sorted(p.name for p in root.iterdir())
    args = ["import", "pets", str(own["folder"]), "--labels", str(own["labels"]), "--folds", "3", "--quiet"]
    refused = CliRunner().invoke(cli, [*args, "--root", str(root)])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.output
    assert "dataset 'pets-fold2' was imported from other files or tables" in refused.stderr
    assert sorted(p.name for p in root.iterdir()) == before == ["pets-fold2"]  # neither pets nor pets-fold1
    args[1] = "cats"
    assert CliRunner().invoke(cli, [*args, "--root", str(root)]).exit_code == 0


def test_the_folds_limits_in_help_are_the_ones_the_import_checks(own, tmp_path):
    from click.testing import CliRunner

    from audiobench.cli import cli, import_copies
    from audiobench.data.imports import own_data

    assert (import_copies.FOLDS_MIN, import_copies.FOLDS_MAX) == (own_data.FOLDS_MIN, own_data.FOLDS_MAX)
    shown = CliRunner().invoke(cli, ["import", "--help"], terminal_width=200).output
    assert f"K seeded stratified folds, {own_data.FOLDS_MIN} to {own_data.FOLDS_MAX}" in shown
    args = ["import", "pets", str(own["folder"]), "--labels", str(own["labels"]), "--quiet"]
    low = CliRunner().invoke(cli, [*args, "--folds", str(own_data.FOLDS_MIN - 1), "--root", str(tmp_path / "a")])
    high = CliRunner().invoke(cli, [*args, "--folds", str(own_data.FOLDS_MAX + 1), "--root", str(tmp_path / "a")])
    assert low.exit_code == high.exit_code == 2 and "need 3 to 99 folds" in low.stderr + high.stderr
    assert CliRunner().invoke(cli, [*args, "--folds", str(own_data.FOLDS_MIN), "--root", str(tmp_path / "b")]
                              ).exit_code == 0


def test_class_names_that_read_as_formulas_are_written_neutralised_and_reported_as_they_are(tmp_path,
                                                                                          one_torch_thread):
    """Own data names its classes: a name starting with =, + or @ is a formula to a spreadsheet opening the
    study's CSVs (per_class.csv, class_durations.csv, table.csv), so those cells get a ' first; the report
    reads them back as the names they are."""
    own = make_folder(tmp_path / "mine")
    formulas = {"dog": "=HYPERLINK(1)", "siren": "+siren", "rain": "@rain"}
    for key in ("labels", "strong"):
        text = own[key].read_text()
        for plain_name, formula in formulas.items():
            text = text.replace(plain_name, formula.replace('"', '""'))
        own[key].write_text(text)
    study = compare_fold(own, tmp_path, 1, ("noatt-weak", "att-strong"), trials=1, epochs=1).run_dir

    for name in ("per_class.csv", "class_durations.csv"):
        cells = set(pd.read_csv(study / name)["name"])
        assert cells <= {"'" + f for f in formulas.values()} and cells, (name, cells)
    report = (study / "report.md").read_text()
    assert "=HYPERLINK(1)" in report and "'=HYPERLINK(1)" not in report


@pytest.mark.slow
def test_ctrl_c_mid_import_exits_130_in_one_line_and_the_same_command_then_finishes(tmp_path):
    """Ctrl-C reaches the whole foreground process group, as a terminal sends it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    own = make_folder(tmp_path / "many", n=400)
    root = tmp_path / "root"
    command = [sys.executable, "-m", "audiobench.cli", "import", "pets", str(own["folder"]), "--labels",
               str(own["labels"]), "--folds", "3", "--root", str(root), "--jobs", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (root / "pets" / "raw").exists() and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert err.strip() == "interrupted (SIGINT): finished work is kept; rerun the same command to go on", err
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "imported pets" in again.stdout and "400 clips" in again.stdout and not again.stderr
    for k in (1, 2, 3):
        with Ledger(DatasetPaths(root, fold_dataset("pets", k)).ledger) as ledger:
            assert len(ledger.clips(status="ok")) == 400


def _on_a_terminal(command: list[str]) -> str:
    """What ``command`` writes to a 100-column terminal (a pseudo-terminal as its stdout and stderr)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0, out
    return out.decode(errors="replace")


def test_an_import_into_folds_draws_one_bar_per_phase_on_a_terminal_and_none_into_a_pipe(own, tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "audiobench.cli", "import", "pets", str(own["folder"]), "--labels",
               str(own["labels"]), "--folds", "3", "--root", str(tmp_path / "root")]
    shown = _on_a_terminal(command)
    bars = [line.split(":")[0].strip() for line in shown.split("\r") if "|" in line]
    assert set(bars) == {"read", "import", "folds"}, shown  # not one "import" bar per rotation
    assert "imported pets" in shown
    piped = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr  # no frozen bars in a log
