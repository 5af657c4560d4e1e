"""train --out, compare --out, run and import write only into a folder of their own kind, with the same settings."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from test_import_own import make_folder
from toydata import write_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = ["--width", "0.0625", "--frames", "96", "--batch-size", "16", "--epochs", "1"]


def _invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}  # the lock names its last holder


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A root with a dataset's features and ledger, a one-trial study and a finished run in runs/."""
    root = tmp_path_factory.mktemp("out") / "root"
    write_features(root, sizes=(16, 8, 8), ledger=True)
    assert _invoke("compare", "toy", "--root", root, "--variants", "noatt-weak", "--trials", "1",
                   "--out", root / "runs" / "study", "-q", *TINY).exit_code == 0
    assert _invoke("train", "toy", "--root", root, "--variant", "noatt-weak", "--out", root / "runs" / "run",
                   "-q", *TINY).exit_code == 0
    return root


def _stray(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes\n")
    return folder


_KINDS = [("study", "a study"), ("run", "a run"), ("dataset", "a dataset"), ("root", "a storage root"),
          ("stray", "other files (notes.txt)")]
_OWN = {"train": "run", "compare": "study"}  # its own kind is continued when the settings agree: tested below


@pytest.mark.parametrize("command, target, holds", [(command, target, holds) for command in _OWN
                                                    for target, holds in _KINDS if target != _OWN[command]])
def test_out_onto_a_folder_of_another_kind_is_refused_in_one_line_and_left_untouched(root, tmp_path, command,
                                                                                      target, holds):
    folder = {"study": root / "runs" / "study", "run": root / "runs" / "run", "dataset": root / "toy",
              "root": root, "stray": _stray(tmp_path)}[target]
    before = _snapshot(folder)
    options = ["--variant", "att-self"] if command == "train" else ["--variants", "att-self", "--trials", "1"]

    result = _invoke(command, "toy", "--root", root, *options, "--out", folder, "-q", *TINY)

    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and f"holds {holds}, not a {_OWN[command]}" in result.output
    assert _snapshot(folder) == before


def test_a_run_folder_with_a_stray_file_is_refused_naming_it(root, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(root / "runs" / "run", folder)
    (folder / "metrics.json").unlink()  # unfinished
    (folder / "mine.txt").write_text("x")
    result = _invoke("train", "toy", "--root", root, "--variant", "noatt-weak", "--out", folder, "-q", *TINY)
    assert result.exit_code == 2 and "also holds mine.txt" in result.output


def test_an_unfinished_run_continues_only_with_its_own_settings(root, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(root / "runs" / "run", folder)
    (folder / "metrics.json").unlink()  # as a kill leaves it: config.json, no metrics.json

    result = _invoke("train", "toy", "--root", root, "--variant", "noatt-weak", "--out", folder, "-q",
                     *TINY[:-1], "2")
    assert result.exit_code == 2 and "other settings (epochs 1 → 2)" in result.output
    assert not (folder / "metrics.json").exists()

    again = _invoke("train", "toy", "--root", root, "--variant", "noatt-weak", "--out", folder, "-q", *TINY)
    assert again.exit_code == 0, again.output
    assert (folder / "metrics.json").is_file()


def test_a_study_of_other_settings_is_refused_naming_the_setting(root):
    study = root / "runs" / "study"
    before = _snapshot(study)
    result = _invoke("compare", "toy", "--root", root, "--variants", "noatt-weak", "--trials", "1",
                     "--out", study, "-q", *TINY[:-2], "--lr", "0.01", "--epochs", "1")
    assert result.exit_code == 2 and "lr 0.0001 → 0.01" in result.output and "holds another study" in result.output
    assert _snapshot(study) == before


def test_a_pipeline_refuses_to_train_into_a_study_folder(root, tmp_path):
    study = root / "runs" / "study"
    before = _snapshot(study)
    pipeline = tmp_path / "p.toml"
    pipeline.write_text('dataset = "toy"\n[[train]]\nvariant = "att-self"\nout = "runs/study"\nepochs = 1\n'
                        'width = 0.0625\nframes = 96\n')
    result = _invoke("run", pipeline, "--root", root)
    assert result.exit_code == 2 and "holds a study, not a run" in result.output
    assert _snapshot(study) == before


@pytest.mark.parametrize("name, holds", [("runs", "folder of runs"), ("weights", "folder of weights"),
                                         ("mine", "holds other files"), ("study", "holds a study")])
def test_import_refuses_a_destination_that_is_not_a_dataset(tmp_path, name, holds):
    root = tmp_path / "root"
    own = make_folder(tmp_path / "theirs", n=6)
    (root / "runs").mkdir(parents=True)
    (root / "weights").mkdir()
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("x")
    (root / "study" / "trials").mkdir(parents=True)
    (root / "study" / "config.json").write_text('{"study_id": "compare-x-0"}')
    before = _snapshot(root)

    result = _invoke("import", name, own["folder"], "--labels", own["labels"], "--root", root)

    assert result.exit_code == 2 and holds in result.output and result.output.count("\n") == 1, result.output
    assert _snapshot(root) == before


def test_a_pipeline_rerun_with_other_settings_does_not_skip_the_finished_run(root, tmp_path):
    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    pipeline = tmp_path / "p.toml"
    table = 'dataset = "toy"\n[[train]]\nvariant = "noatt-weak"\nout = "runs/run"\nwidth = 0.0625\nframes = 96\n'
    pipeline.write_text(table + "batch_size = 16\nepochs = 1\n")
    same = _invoke("run", pipeline, "--root", copy)
    assert same.exit_code == 0 and "is finished, skipped" in same.output, same.output

    pipeline.write_text(table + "batch_size = 16\nepochs = 3\n")
    other = _invoke("run", pipeline, "--root", copy)
    assert other.exit_code == 2 and "finished run of other settings (epochs 1 → 3)" in other.output, other.output


@pytest.mark.parametrize("how", ["copies", "own data"])
def test_the_import_functions_refuse_a_study_folder_themselves(tmp_path, how):
    """Not only the command line: a script calling the library cannot import into a study either."""
    from audiobench.core.errors import AudiobenchError
    from audiobench.data.imports.copies import import_copies
    from audiobench.data.imports.own_data import import_own_data

    root = tmp_path / "root"
    (root / "study" / "trials").mkdir(parents=True)
    (root / "study" / "config.json").write_text('{"study_id": "compare-x-0"}')
    before = _snapshot(root)
    own = make_folder(tmp_path / "theirs", n=6)
    with pytest.raises(AudiobenchError, match="holds a study"):
        if how == "copies":
            import_copies("study", [Path(own["folder"])], root=root, quiet=True)
        else:
            import_own_data("study", Path(own["folder"]), labels=Path(own["labels"]), folds=3, root=root, quiet=True)
    assert _snapshot(root) == before
