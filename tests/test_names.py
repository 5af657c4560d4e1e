"""What a newcomer types wrong or leaves out, through the command line: a misspelt dataset, run, study,
variant or feature name gets the closest existing one; a dataset's only feature set is used, whichever
extractor made it; a dataset of folds names its rotations."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiobench.cli import cli

TINY = ["--epochs", "1", "--width", "0.0625", "--batch-size", "4", "--quiet"]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def kaldi_root(tmp_path_factory) -> Path:
    """A tiny synth dataset featurized with kaldi-fbank-128 only."""
    root = tmp_path_factory.mktemp("root")
    assert _run("synth", "--root", str(root), "--train", "6", "--val", "4", "--test", "4", "--duration", "1",
                "-q")[0] == 0
    code, out = _run("featurize", "synth", "--root", str(root), "--features", "kaldi-fbank-128", "-q")
    assert code == 0, out
    return root


def test_a_dataset_featurized_only_with_kaldi_trains_on_its_features(kaldi_root, tmp_path):
    code, out = _run("train", "synth", "--root", str(kaldi_root), "--variant", "att-self", *TINY,
                     "--out", str(tmp_path / "run"))
    assert code == 0, out
    assert '"bands": 128' in (tmp_path / "run" / "model.json").read_text()


def test_with_two_feature_sets_train_and_compare_ask_which_and_list_them(kaldi_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(kaldi_root, root)
    assert _run("featurize", "synth", "--root", str(root), "-q")[0] == 0  # VGGish too
    kaldi, vggish = sorted(p.name for p in (root / "synth" / "features").iterdir())
    for command in (["train", "synth", "--variant", "att-self"], ["compare", "synth", "--variants",
                                                                   "noatt-weak,att-self", "--trials", "1"]):
        code, out = _run(*command, "--root", str(root), *TINY)
        assert code == 2 and out.count("\n") == 1
        assert f"has 2 feature sets ({kaldi}, {vggish}); choose one with --feature-id" in out
    code, out = _run("train", "synth", "--root", str(root), "--variant", "att-self", *TINY, "--feature-id", "kaldi")
    assert code == 2 and f"no feature set 'kaldi' under {root / 'synth' / 'features'}; did you mean {kaldi!r}?" in out
    code, out = _run("train", "synth", "--root", str(root), "--variant", "att-self", *TINY, "--feature-id", kaldi,
                     "--out", str(tmp_path / "run"))
    assert code == 0, out


def test_a_misspelt_dataset_gets_the_closest_name_from_every_command(kaldi_root):
    for command in ("train", "compare", "featurize", "resample", "status"):
        extra = {"train": ["--variant", "att-self"], "compare": ["--variants", "noatt-weak,att-self"]}.get(command, [])
        code, out = _run(command, "synt", "--root", str(kaldi_root), *extra)
        assert code == 2 and out.count("\n") == 1, (command, out)
        assert out.startswith(f"error: no dataset 'synt' under {kaldi_root}; did you mean 'synth'?"), (command, out)
        assert "featurize synt" not in out and "synth --name synt" not in out  # not "make the misspelt one"


def test_a_misspelt_variant_run_or_study_gets_the_closest_name(kaldi_root, tmp_path):
    code, out = _run("train", "synth", "--root", str(kaldi_root), "--variant", "att-sel", *TINY)
    assert code == 2 and "no variant 'att-sel'; did you mean 'att-self'? (others: att-strong," in out
    code, out = _run("compare", "synth", "--root", str(kaldi_root), "--variants", "noatt-weak,att-sel", *TINY)
    assert code == 2 and "no variant 'att-sel'; did you mean 'att-self'?" in out
    root = tmp_path / "root"
    shutil.copytree(kaldi_root, root)
    for name in ("study-a", "train-b"):
        (root / "runs" / name).mkdir(parents=True)
    clips = tmp_path / "clips.csv"
    clips.write_text("clip_id\n")
    for command in (["report", "studya"], ["evaluate", "studya", "--eval-on", str(clips)],
                    ["predict", "studya", str(clips)]):
        code, out = _run(*command, "--root", str(root))
        assert code == 2 and out.count("\n") == 1, (command, out)
        assert f"no run or study 'studya' under {root / 'runs'}; did you mean 'study-a'? (others: train-b)" in out


def _folder_of_recordings(base: Path) -> tuple[Path, Path]:
    (base / "rec").mkdir(parents=True)
    rows = ["file,labels"]
    for i, label in enumerate(["dog", "siren", "rain"] * 3):
        t = np.arange(8000) / 16000
        sf.write(base / "rec" / f"take{i}.wav", 0.3 * np.sin(2 * np.pi * (300 + 50 * i) * t), 16000)
        rows.append(f"take{i}.wav,{label}")
    (base / "labels.csv").write_text("\n".join(rows) + "\n")
    return base / "rec", base / "labels.csv"


def test_training_on_a_dataset_of_folds_names_its_rotations_not_fetch(tmp_path):
    folder, labels = _folder_of_recordings(tmp_path)
    root = str(tmp_path / "root")
    assert _run("import", "pets", str(folder), "--labels", str(labels), "--folds", "3", "--root", root, "-q")[0] == 0
    for command in (["train", "pets", "--variant", "att-self"], ["compare", "pets", "--variants", "noatt-weak,att-self"]):
        code, out = _run(*command, "--root", root, *TINY)
        assert code == 2 and out.count("\n") == 1, out
        assert "holds folds" in out and "pets-fold1, pets-fold2, pets-fold3" in out and "fetch" not in out
