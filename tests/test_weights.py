"""Pretrained weights: fetched from a real HTTP server on 127.0.0.1 into <root>/weights/, checked by sha256."""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from audiobench.core.errors import AudiobenchError
from audiobench.cli import cli
from audiobench.models.net import Net
from audiobench.pipeline import load_pipeline, run_pipeline
from audiobench.models.transfer import apply_init, vggish_shapes
from audiobench.models.weights import KNOWN, WEIGHTS_MIRROR_ENV, fetch_weights, weights_path
from static_server import StaticServer, closed_port
from toydata import write_features

NAME = KNOWN["vggish"].name


def _torchvggish_file(folder: Path) -> tuple[Path, OrderedDict]:
    """A state dict with torchvggish's key names and shapes (random values), saved under the release name."""
    g = torch.Generator().manual_seed(1)
    state = OrderedDict((k, torch.randn(shape, generator=g)) for k, shape in vggish_shapes().items())
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / NAME)
    return folder / NAME, state


@pytest.fixture(autouse=True)
def _no_env_mirror(monkeypatch):
    monkeypatch.delenv(WEIGHTS_MIRROR_ENV, raising=False)


@pytest.fixture
def served_weights(tmp_path, monkeypatch):
    """The server holds a torchvggish-layout file; the known VGGish entry is pointed at it with its hash."""
    path, state = _torchvggish_file(tmp_path / "served")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with StaticServer(tmp_path / "served") as server:
        monkeypatch.setitem(KNOWN, "vggish", replace(KNOWN["vggish"], sha256=sha, url=f"{server.url}/{NAME}"))
        yield server, state


def test_the_official_entry_is_torchvggish_v0_1_and_its_hash_matches_the_file_name():
    spec = KNOWN["vggish"]
    assert spec.url == "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
    assert spec.sha256.startswith("10086976") and len(spec.sha256) == 64  # torch.hub's name-hash convention


def test_weights_are_fetched_once_into_the_root_and_load_into_l1_to_l6(served_weights, tmp_path):
    server, state = served_weights
    root = tmp_path / "root"
    result = CliRunner().invoke(cli, ["weights", "vggish", "--root", str(root), "--quiet"])
    assert result.exit_code == 0, result.output
    path = root / "weights" / NAME
    assert path == weights_path("vggish", root) and f"--init vggish:{path}" in result.output
    assert server.requests == [f"/{NAME}"]
    assert [p.name for p in path.parent.iterdir()] == [NAME]  # no temporary file left beside it
    net = Net(3, width=1.0, attention=False)
    apply_init(net, f"vggish:{path}")
    assert torch.equal(net.convs[0].weight, state["features.0.weight"])
    assert torch.equal(net.convs[5].bias, state["features.13.bias"])
    assert fetch_weights("vggish", root=root, quiet=True) == path  # verified copy: not fetched again
    assert server.requests == [f"/{NAME}"]


def test_a_file_with_another_hash_is_refused_and_not_kept(tmp_path):
    """The real entry against a server holding a file that is not torchvggish's release."""
    folder = tmp_path / "served"
    _torchvggish_file(folder)
    root = tmp_path / "root"
    with StaticServer(folder) as server:
        result = CliRunner().invoke(cli, ["weights", "--root", str(root), "--mirror", server.url, "-q"])
    assert result.exit_code == 2
    assert f"{NAME}: sha256 mismatch" in result.output and KNOWN["vggish"].sha256 in result.output
    assert list((root / "weights").iterdir()) == []


def test_a_mirror_folder_from_the_environment_and_a_missing_file(served_weights, tmp_path, monkeypatch):
    _, state = served_weights
    mirror = tmp_path / "mirror"
    _torchvggish_file(mirror)
    monkeypatch.setenv(WEIGHTS_MIRROR_ENV, str(mirror))
    assert fetch_weights(root=tmp_path / "a", quiet=True).read_bytes() == (mirror / NAME).read_bytes()
    (mirror / NAME).unlink()
    with pytest.raises(AudiobenchError, match=f"cannot get {NAME}: tried .*no such file"):
        fetch_weights(root=tmp_path / "b", quiet=True)


def test_weights_without_network_exit_3_and_every_hint_names_mirror(tmp_path, monkeypatch):
    port = closed_port()
    monkeypatch.setitem(KNOWN, "vggish", replace(KNOWN["vggish"], url=f"http://127.0.0.1:{port}/{NAME}"))
    result = CliRunner().invoke(cli, ["weights", "--root", str(tmp_path), "-q"])
    assert result.exit_code == 3 and result.output.count("\n") == 1
    assert result.output.startswith(f"error: cannot reach 127.0.0.1:{port} (connection refused)")
    assert "--mirror DIR|URL" in result.output and "--index-mirror" not in result.output
    assert list((tmp_path / "weights").iterdir()) == []
    (tmp_path / "empty").mkdir()
    with StaticServer(tmp_path / "empty") as server:  # the host answers, the file is not there
        monkeypatch.setitem(KNOWN, "vggish", replace(KNOWN["vggish"], url=f"{server.url}/{NAME}"))
        result = CliRunner().invoke(cli, ["weights", "--root", str(tmp_path), "-q"])
    assert result.exit_code == 2 and "(HTTP 404)" in result.output
    assert "use --mirror DIR|URL" in result.output and "--index-mirror" not in result.output


def test_unknown_weights_and_a_missing_init_file_say_what_to_do(tmp_path):
    result = CliRunner().invoke(cli, ["weights", "resnet", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown weights 'resnet' (known: vggish)" in result.output
    with pytest.raises(AudiobenchError, match="`audiobench weights vggish` downloads it"):
        apply_init(Net(3, width=1.0, attention=False), f"vggish:{tmp_path / 'weights' / NAME}")


def test_init_with_the_bare_file_name_finds_the_weights_fetched_into_the_root(served_weights, tmp_path,
                                                                               monkeypatch):
    root = tmp_path / "root"
    write_features(root, sizes=(8, 4, 4))
    assert CliRunner().invoke(cli, ["weights", "vggish", "--root", str(root), "-q"]).exit_code == 0
    monkeypatch.chdir(tmp_path)  # the working folder holds no weight file: the root's weights/ does
    args = ["train", "toy", "--root", str(root), "--variant", "noatt-weak", "--epochs", "1", "--batch-size", "4",
            "--quiet", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, [*args, "--init", f"vggish:{NAME}"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "metrics.json").is_file()
    (root / "weights" / NAME).unlink()
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "run2"), "--init", f"vggish:{NAME}"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"looked for {NAME} and {root / 'weights' / NAME}" in result.output  # the folders it searched


def test_a_pipeline_fetches_its_weights_first(served_weights, tmp_path):
    pipeline_file = tmp_path / "p.toml"
    pipeline_file.write_text('dataset = "synth"\n[weights]\nnames = ["vggish"]\n')
    lines: list[str] = []
    run_pipeline(load_pipeline(pipeline_file), root=tmp_path / "root", quiet=True, echo=lines.append)
    assert (tmp_path / "root" / "weights" / NAME).is_file()
    assert lines[-1].startswith("weights: vggish: ")
    pipeline_file.write_text('dataset = "synth"\n[weights]\nnames = ["vgg16"]\n')
    with pytest.raises(AudiobenchError, match=r"p.toml: \[weights\] names: unknown weights 'vgg16'"):
        load_pipeline(pipeline_file)
    pipeline_file.write_text('dataset = "synth"\n[weights]\nnames = "vggish"\n')
    with pytest.raises(AudiobenchError, match=r"p.toml: \[weights\] names: expected a list of strings"):
        load_pipeline(pipeline_file)
