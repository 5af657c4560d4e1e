"""The feature extractor seam: the registry, VGGish unchanged (id and bytes), release 0.1 files still read, and
a toy extractor added in one file that featurizes and trains end to end."""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.features.base import Extractor, extractor_of, extractors, get_extractor, register_extractor
from audiobench.features.dataset import LogmelDataset
from audiobench.features.featurize import featurize
from audiobench.features.store import feature_file
from audiobench.features.vggish import VggishLogmel, feature_id, logmel
from audiobench.core.layout import DatasetPaths
from audiobench.models.checkpoint import load_model
from audiobench.pipeline import PipelineError, load_pipeline
from audiobench.training.train import train
from toy_extractor import BandMeans

RELEASE = Path(__file__).parent / "data" / "release-0.1" / "synth"
RELEASE_ID = "vggish-logmel-038f9341"  # the folder release 0.1 wrote: the VGGish recipe's id must never change


def release_copy(root: Path, *, features: bool) -> DatasetPaths:
    """The synthetic dataset release 0.1 wrote (ledger, 16 kHz FLAC, and with ``features`` its split files)."""
    shutil.copytree(RELEASE, root / "synth", ignore=None if features else shutil.ignore_patterns("features"))
    return DatasetPaths(root, "synth")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_builtin_extractors_are_registered_and_an_unknown_name_is_refused():
    assert extractors()[:2] == ("vggish-logmel", "kaldi-fbank-128")
    vggish = get_extractor()
    assert isinstance(vggish, VggishLogmel) and vggish == get_extractor("vggish-logmel")
    assert (vggish.dims, vggish.sample_rate, vggish.frame_length, vggish.frame_shift) == (64, 16_000, 400, 160)
    assert vggish.padding_value == math.log(0.01) and vggish.num_frames(160_000) == 998
    with pytest.raises(AudiobenchError, match=r"no feature extractor 'mfcc' \(known: kaldi-fbank-128, vggish-logmel"):
        get_extractor("mfcc")


def test_vggish_keeps_its_feature_id_and_its_bytes(tmp_path):
    """Featurizing release 0.1's audio with today's code gives release 0.1's folder and logmel (bit for bit on
    the AVX2 machine that wrote them; elsewhere within the float64 FFT's rounding, ~1e-7)."""
    assert feature_id() == get_extractor().feature_id() == RELEASE_ID
    paths = release_copy(tmp_path, features=False)
    result = featurize("synth", root=tmp_path, quiet=True)
    assert result.feature_id == RELEASE_ID and result.failures == []
    for split in ("train", "val", "test"):
        with h5py.File(RELEASE / "features" / RELEASE_ID / f"{split}.h5") as old, \
                h5py.File(feature_file(paths, split)) as new:
            np.testing.assert_allclose(new["logmel"][()], old["logmel"][()], rtol=0, atol=1e-5)
            assert list(new["clip_id"].asstr()[()]) == list(old["clip_id"].asstr()[()])
            assert (new.attrs["extractor"], new.attrs["dims"]) == ("vggish-logmel", 64)


def test_release_0_1_feature_files_read_as_vggish_64_dims(tmp_path):
    paths = release_copy(tmp_path, features=True)
    path = feature_file(paths, "train")
    with h5py.File(path) as f:
        assert "extractor" not in f.attrs and "dims" not in f.attrs  # written before extractors were named
        assert extractor_of(f.attrs) == get_extractor("vggish-logmel")
        stored = f["logmel"][0]
    data = LogmelDataset(path, frames=None)
    assert (data.extractor.name, data.dims, data.frames) == ("vggish-logmel", 64, None)
    assert data.padding_value == np.float32(math.log(0.01)) and data.frame_seconds == 0.01
    assert np.array_equal(data[0]["logmel"].numpy(), stored[:data.lengths[0]])
    assert LogmelDataset(path).frames == 998  # the default: a 10 s clip under the file's extractor
    assert data[0]["strong"].shape == (data.lengths[0], 17) and data[0]["strong"].sum() > 0


def test_a_toy_extractor_in_one_file_featurizes_and_trains(tmp_path):
    """The measure of the seam: tests/toy_extractor.py is the whole extractor; registering it is the only step."""
    assert register_extractor(BandMeans) is BandMeans and "toy-band-means" in extractors()
    paths = release_copy(tmp_path, features=False)
    result = featurize("synth", root=tmp_path, features="toy-band-means", quiet=True)
    assert result.feature_id == BandMeans().feature_id() and result.feature_id.startswith("toy-band-means-")
    assert result.failures == [] and [s.clips for s in result.splits] == [4, 2, 2]
    path = feature_file(paths, "train", result.feature_id)
    data = LogmelDataset(path, frames=None)
    assert (data.extractor, data.dims, data.padding_value) == (BandMeans(), 16, 0.0)
    audio, rate = sf.read(paths.dir / "audio" / "train" / f"{data.clip_ids[0]}.flac", dtype="float32")
    np.testing.assert_array_equal(data[0]["logmel"].numpy(), BandMeans()(audio, rate))
    with h5py.File(path) as f:
        assert (f.attrs["extractor"], f.attrs["dims"], f.attrs["bands"], f["logmel"].shape[2]) == (
            "toy-band-means", 16, 16, 16)

    run = train("synth", variant="att-self", root=tmp_path, epochs=1, width=0.0625, batch_size=4,
                feature_id=result.feature_id, device="cpu", quiet=True)
    assert 0.0 <= run.test_map <= 1.0 and run.best_epoch == 1
    meta = json.loads((run.run_dir / "model.json").read_text())
    assert meta["bands"] == 16 and meta["extractor"] == {"name": "toy-band-means", "params": {
        "sample_rate": 16_000, "frame_length": 400, "frame_shift": 160, "bands": 16}}
    net, _ = load_model(run.run_dir)
    assert net.spec.bands == 16 and net(torch.as_tensor(data[0]["logmel"])[None]).clip.shape == (1, 17)


@dataclass(frozen=True)
class _Params:
    sample_rate: int = 16_000
    frame_length: int = 400
    frame_shift: int = 160


@pytest.mark.parametrize("name, params, message", [
    ("Bad_Name", _Params, "extractor name 'Bad_Name' must be"),
    ("vggish-logmel", _Params, "'vggish-logmel' is already registered (audiobench.features.vggish.VggishLogmel)"),
    ("ok-name", dataclass(type("P", (), {"__annotations__": {"dims": int}, "dims": 3}), frozen=True),
     "parameter 'dims' would overwrite the split-file attribute"),
    ("ok-name", dataclass(type("P", (), {"__annotations__": {"sizes": tuple}, "sizes": (1, 2)}), frozen=True),
     "parameter 'sizes' is a tuple"),
    ("ok-name", dataclass(type("P", (), {"__annotations__": {"n": int}, "n": 1})), "Params must be a frozen"),
])
def test_a_mistake_in_an_extractor_shows_when_it_is_registered(name, params, message):
    cls = type("Bad", (Extractor,), {"name": name, "Params": params, "dims": 3, "padding_value": 0.0,
                                     "extract": lambda self, x: x})
    with pytest.raises(AudiobenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        register_extractor(cls)


def test_a_file_of_an_unregistered_extractor_names_it(tmp_path):
    with pytest.raises(AudiobenchError, match=r"x.h5: written by feature extractor 'gone', which is not registered"):
        extractor_of({"extractor": "gone"}, where="x.h5")


def test_featurize_names_the_extractors_and_refuses_an_unknown_one(tmp_path):
    release_copy(tmp_path, features=False)
    out = CliRunner().invoke(cli, ["featurize", "--help"])
    assert "--features NAME" in out.output
    assert "one of: vggish-logmel, kaldi-fbank-128" in " ".join(out.output.split())
    out = CliRunner().invoke(cli, ["featurize", "synth", "--root", str(tmp_path), "--features", "mfcc"])
    assert out.exit_code == 2 and out.output.startswith("error: no feature extractor 'mfcc'")
    assert not (tmp_path / "synth" / "features").exists()


def test_a_pipeline_takes_the_extractor_as_a_featurize_key(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('dataset = "synth"\n[featurize]\nfeatures = "kaldi-fbank-128"\n')
    assert load_pipeline(good).steps[0].options == {"features": "kaldi-fbank-128"}
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "synth"\n[featurize]\nfeatures = "mfcc"\n')
    with pytest.raises(PipelineError, match=r"\[featurize\] features: no feature extractor 'mfcc'"):
        load_pipeline(bad)


def test_the_base_frame_rule_is_vggish_s(tmp_path):
    """One frame rule: the base class's, which VGGish uses (event_frames in vggish.py only delegates)."""
    toy = BandMeans()
    onsets, offsets = [1.0, 0.0, 0.5, 9.99, 2.0], [2.5, 0.001, 0.5, 30.0, 1.0]
    first, stop = toy.event_frames(onsets, offsets, 998)
    assert list(zip(first, stop)) == [(98, 250), (0, 1), (0, 0), (997, 998), (0, 0)]
    x = np.random.default_rng(0).uniform(-1, 1, 4_000).astype(np.float32)
    assert toy(x).shape == (toy.num_frames(4_000), 16) == logmel(x).shape[:1] + (16,)
