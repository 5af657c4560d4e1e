"""The training options are defined once: `train`, `compare`, pipelines and Python take the same ones, with the
same defaults and bounds."""
from __future__ import annotations

from dataclasses import MISSING, asdict

import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.pipeline import PipelineError, load_pipeline
from audiobench.training.options import TrainConfig, TrainOptions, option_fields


def _params(command: str) -> dict:
    return {p.name: p for p in cli.commands[command].params}


@pytest.mark.parametrize("command, cls", [("train", TrainConfig), ("compare", TrainOptions)])
def test_each_command_takes_every_option_with_the_fields_default_and_help(command, cls):
    params = _params(command)
    for f, _ in option_fields(cls):
        assert f.name in params, (command, f.name)
        assert params[f.name].help == f.metadata["help"]
        if f.default is MISSING:
            assert params[f.name].required
        else:
            assert params[f.name].default == f.default, (command, f.name)
    assert ("variant" in params, "seed" in params) == ((True, True) if command == "train" else (False, False))
    assert _params("train")["frames"].default is None  # the longest training clip, resolved by the run


def test_pipeline_keys_are_the_option_fields(tmp_path):
    keys = {f.name for f, _ in option_fields(TrainConfig)}
    path = tmp_path / "p.toml"
    path.write_text('dataset = "synth"\n[[train]]\nvariant = "att-self"\ncolour = 1\n')
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    listed = str(info.value).split("(options: ")[1].rstrip(")").split(", ")
    assert set(listed) == keys | {"out", "name"}


def test_a_bound_is_one_fact_on_the_command_line_in_pipelines_and_in_python(tmp_path):
    result = CliRunner().invoke(cli, ["train", "toy", "--variant", "att-self", "--frames", "8",
                                      "--root", str(tmp_path)])
    assert result.exit_code == 2 and "x>=16" in result.output
    path = tmp_path / "p.toml"
    path.write_text('dataset = "synth"\n[[train]]\nvariant = "att-self"\nframes = 8\n[[compare]]\n'
                    'variants = ["noatt-weak"]\nfreeze = 9\nworkers = -1\n')
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert info.value.problems == [
        f"{path}: [[train]] frames: must be at least 16 (one segment), got 8",
        f"{path}: [[compare]] freeze: must be between 0 and 7, got 9",
    ]  # one problem per table: the first option out of its bounds
    with pytest.raises(AudiobenchError, match=r"^--workers must be at least 0, got -1$"):
        TrainConfig("synth", "att-self", workers=-1).check()
    with pytest.raises(AudiobenchError, match=r"^--lr must be positive, got 0$"):
        TrainOptions(lr=0).check()


def test_a_pipeline_names_an_unknown_variant_by_its_key(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('dataset = "synth"\n[[train]]\nvariant = "att-selfish"\n')
    with pytest.raises(PipelineError) as info:
        load_pipeline(path)
    assert info.value.problems == [f"{path}: [[train]] variant: no variant 'att-selfish'; did you mean 'att-self'? "
                                   "(others: att-strong, att-strong-self, att-unsup, noatt-strong, noatt-weak, "
                                   "noatt-weak-strong)"]


def test_a_run_config_is_its_options_plus_dataset_variant_and_seed_in_the_recorded_order():
    config = TrainConfig("synth", "att-self", 3, epochs=10)
    assert list(asdict(config))[:5] == ["dataset", "variant", "seed", "epochs", "lr"]  # as metrics.json records it
    assert config.options() == TrainOptions(epochs=10)
