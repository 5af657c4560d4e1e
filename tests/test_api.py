"""The flat public API: every name importable from `audiobench`, lazily; `train` on open datasets."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import audiobench
from audiobench.core.errors import AudiobenchError
from toydata import FRAMES, write_features

PUBLIC = ["open_split", "LogmelDataset", "logmel", "TrainConfig", "train", "compare", "render_report", "predict"]
HEAVY = ("torch", "librosa", "matplotlib", "h5py", "pandas")


def _heavy_modules_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "Usage: audiobench" in out.stdout or "--help" not in code  # the help was printed
    heavy = out.stdout.rsplit("heavy:", 1)[1].strip()
    return [m for m in heavy.split(",") if m]


def test_importing_audiobench_or_asking_for_help_imports_no_heavy_library():
    assert _heavy_modules_after("import audiobench; dir(audiobench); audiobench.AudiobenchError") == []
    help_ = ("import runpy\nsys.argv = ['audiobench', '--help']\ntry:\n"
             "    runpy.run_module('audiobench.cli', run_name='__main__')\nexcept SystemExit:\n    pass")
    assert _heavy_modules_after(help_) == []
    assert "torch" in _heavy_modules_after("from audiobench import train")  # a name imports what it needs


def test_every_public_name_is_listed_and_resolves():
    assert set(PUBLIC) <= set(audiobench.__all__) <= set(dir(audiobench))
    for name in audiobench.__all__:
        assert getattr(audiobench, name) is not None, name
    from audiobench.training.predict import predict
    from audiobench.training.train import train
    assert audiobench.train is train and audiobench.predict is predict
    # type checkers see the same names: the TYPE_CHECKING imports name every lazy one
    tree = ast.parse(Path(audiobench.__file__).read_text())
    typed = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module != "__future__"
             and node.col_offset > 0 for alias in node.names}
    assert typed == set(audiobench._LAZY)
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        audiobench.trian  # noqa: B018
    with pytest.raises(ImportError):
        exec("from audiobench import trian")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    write_features(root, sizes=(24, 12, 12))
    return root


TINY = dict(variant="att-strong", epochs=1, width=0.0625, batch_size=8, lr=3e-3, quiet=True)


def test_train_on_open_datasets_gives_the_numbers_of_training_by_name(toy_root, tmp_path):
    by_name = audiobench.train("toy", root=toy_root, out=tmp_path / "by-name", **TINY)
    opened = {split: audiobench.open_split("toy", split, root=toy_root) for split in ("train", "val", "test")}
    assert isinstance(opened["train"], audiobench.LogmelDataset) and opened["train"].frames is None

    result = audiobench.train(opened, out=tmp_path / "opened", **TINY)

    assert result.config.dataset == "toy" and result.config.frames == by_name.config.frames == FRAMES
    assert (result.val_map, result.test_map, result.best_epoch) == (by_name.val_map, by_name.test_map,
                                                                     by_name.best_epoch)
    assert (tmp_path / "opened" / "model.pt").read_bytes() == (tmp_path / "by-name" / "model.pt").read_bytes()
    meta = json.loads((tmp_path / "opened" / "model.json").read_text())
    assert meta["features"]["dtype"] == "float32" and meta["extractor"]["name"] == "vggish-logmel"
    assert meta["extractor"]["params"]["num_mel_bins"] == 64


def test_train_on_open_datasets_refuses_what_it_cannot_train_on(toy_root, tmp_path):
    splits = ("train", "val", "test")
    fixed = {split: audiobench.open_split("toy", split, root=toy_root, frames=FRAMES) for split in splits}
    with pytest.raises(AudiobenchError, match="val split is evaluated on true lengths; open it with frames=None"):
        audiobench.train(fixed, out=tmp_path / "a", **TINY)
    opened = {split: audiobench.open_split("toy", split, root=toy_root) for split in splits}
    with pytest.raises(AudiobenchError, match="expected the datasets of splits train, val, test"):
        audiobench.train({"train": opened["train"], "val": opened["val"]}, out=tmp_path / "b", **TINY)
    with pytest.raises(AudiobenchError, match="a dataset name or the open datasets .* got a LogmelDataset"):
        audiobench.train(opened["train"], out=tmp_path / "b", **TINY)
    with pytest.raises(AudiobenchError, match="frames=32, but the training split was opened with frames=96"):
        audiobench.train({**opened, "train": fixed["train"]}, frames=32, out=tmp_path / "c", **TINY)
    assert not (tmp_path / "a").exists()
    with pytest.raises(AudiobenchError, match=r"no dataset 'nothing' under .* \(known: toy\)"):
        audiobench.open_split("nothing", "train", root=toy_root)
