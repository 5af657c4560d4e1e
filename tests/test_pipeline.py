"""Pipeline files: every table and key checked when the file is read, all problems at once; `run` options."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiobench.cli import cli
from audiobench.core.errors import AudiobenchError
from audiobench.pipeline import PipelineError, load_pipeline
from audiobench.models.weights import KNOWN, WEIGHTS_MIRROR_ENV

PIPELINES = sorted((Path(__file__).resolve().parents[1] / "pipelines").glob("*.toml"))

# Each fault a user can make in a table, and the line `run --check` must print for it.
FAULTY = '''
dataset = "synth"
[synth]
train = "10"
classes = "Car"
[featurize]
jobs = "two"
backend = "locky"
[[compare]]
name = "../../x"
trials = 1.5
variants = "noatt-weak"
jobs = 1
backend = "dask-ish"
[[compare]]
name = "fine"
variants = ["noatt-weak", "att-selfish"]
out = "runs/../../elsewhere"
epochs = 10
lr = "fast"
colour = "blue"
'''
EXPECTED = [
    '[synth] train: expected an integer, got "10"',
    '[synth] classes: expected a list of strings, got "Car"',
    '[featurize] jobs: expected an integer, got "two"',
    '[featurize] backend: expected one of "loky", "threading", "dask", got "locky"',
    '[[compare]] #1 trials: expected an integer, got 1.5',
    '[[compare]] #1 variants: expected a list of strings, got "noatt-weak"',
    '[[compare]] #1 backend: expected one of "loky", "threading", "dask", got "dask-ish"',
    "[[compare]] #1 name: invalid study name '../../x'",
    '[[compare]] #2 lr: expected a number, got "fast"',
    "[[compare]] #2 colour: no such option (options: alpha, backend, baseline,",
    "[[compare]] #2 variants: no variant 'att-selfish'; did you mean 'att-self'?",
    "[[compare]] #2 out: invalid folder name '..'",
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


def test_check_reports_every_problem_at_once_one_line_each(tmp_path):
    path = _write(tmp_path, FAULTY)
    result = CliRunner().invoke(cli, ["run", str(path), "--check"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == len(EXPECTED), result.output
    for line, expected in zip(lines, EXPECTED):
        assert line.startswith(f"error: {path}: {expected}"), (line, expected)


@pytest.mark.parametrize("table, problem", [
    ('name = "../../x"', "name: invalid study name '../../x'"),
    ('out = "../x"', "out: invalid folder name '..'"),
    ('out = "/tmp/elsewhere"', 'out: expected a folder under the storage root, e.g. "runs/NAME", got "/tmp/elsewhere"'),
    ('name = "a/b"', "name: invalid study name 'a/b'"),
])
def test_a_study_folder_that_would_leave_the_root_is_refused_before_anything_runs(tmp_path, table, problem):
    path = _write(tmp_path, f'dataset = "synth"\n[synth]\ntrain = 2\n[[compare]]\n{table}\nvariants = ["noatt-weak"]\n')
    root = tmp_path / "deep" / "root"
    result = CliRunner().invoke(cli, ["run", str(path), "--root", str(root)])
    assert result.exit_code == 2
    assert f"error: {path}: [[compare]] {problem}" in result.output
    assert not root.exists()  # not even the synth step ran


def test_a_pipeline_named_with_a_path_cannot_name_its_study_folder(tmp_path):
    path = _write(tmp_path, 'dataset = "synth"\nname = "../up"\n[[compare]]\nvariants = ["noatt-weak"]\n')
    with pytest.raises(PipelineError, match=r"\[\[compare\]\] name: invalid study name '../up'"):
        load_pipeline(path)
    # With an `out` of its own, the study's folder no longer comes from the name.
    path.write_text('dataset = "synth"\nname = "../up"\n[[compare]]\nvariants = ["noatt-weak"]\nout = "runs/a"\n')
    assert load_pipeline(path).steps[0].options["out"] == "runs/a"


def test_ranges_and_the_options_together_are_checked_too(tmp_path):
    path = _write(tmp_path, 'dataset = "synth"\n[featurize]\njobs = 0\n[[train]]\nvariant = "att-self"\n'
                            'epochs = 0\n[[compare]]\nvariants = ["noatt-weak", "att-self"]\nbaseline = "att-unsup"\n')
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    assert caught.value.problems == [
        f"{path}: [featurize] jobs: expected at least 1, got 0",
        f"{path}: [[train]] epochs: must be at least 1, got 0",
        f"{path}: [[compare]] baseline: 'att-unsup' is not among --variants noatt-weak,att-self",
    ]
    assert isinstance(caught.value, AudiobenchError)  # the one family: the CLI prints it, no traceback


@pytest.mark.parametrize("pipeline", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_the_shipped_pipelines_pass_the_check(pipeline):
    result = CliRunner().invoke(cli, ["run", str(pipeline), "--check"])
    assert result.exit_code == 0, result.output


def test_run_takes_the_weights_from_the_mirror_given_on_its_command_line(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_MIRROR_ENV, raising=False)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    name = KNOWN["vggish"].name
    (mirror / name).write_bytes(b"weights as the mirror holds them")
    sha = hashlib.sha256((mirror / name).read_bytes()).hexdigest()
    # The official host is unreachable here (a closed port on this machine): only the mirror can serve it.
    monkeypatch.setitem(KNOWN, "vggish", replace(KNOWN["vggish"], sha256=sha, url=f"http://127.0.0.1:9/{name}"))
    path = _write(tmp_path, 'dataset = "synth"\n[weights]\nnames = ["vggish"]\n')
    root = tmp_path / "root"
    refused = CliRunner().invoke(cli, ["run", str(path), "--root", str(root), "--quiet"])
    assert refused.exit_code == 3 and not (root / "weights" / name).exists()  # unreachable: rerun later
    result = CliRunner().invoke(cli, ["run", str(path), "--root", str(root), "--quiet", "--weights-mirror",
                                      str(mirror)])
    assert result.exit_code == 0, result.output
    assert (root / "weights" / name).read_bytes() == (mirror / name).read_bytes()


def test_run_takes_the_list_files_from_the_index_mirror_given_on_its_command_line(tmp_path, reference_dir):
    path = _write(tmp_path, 'dataset = "sl-dcase17"\n[fetch]\nlimit = 0\n')
    root = tmp_path / "root"
    result = CliRunner().invoke(cli, ["run", str(path), "--root", str(root), "--quiet", "--index-mirror",
                                      str(reference_dir)])
    assert result.exit_code == 0, result.output
    assert (root / "sl-dcase17" / "ledger.sqlite").is_file()
    assert sorted(p.name for p in (root / "sl-dcase17" / "index").iterdir())


def test_run_stops_where_fetch_stops_with_its_exit_status(tmp_path, reference_dir):
    from static_server import HostThatGoesAway

    with HostThatGoesAway(connections=1) as host:  # the check connects, then the network is gone
        path = _write(tmp_path, f'dataset = "sl-dcase17"\n[fetch]\nsplit = "test"\nlimit = 6\n'
                                f'max_network_errors = 3\nsource_template = "{host.url}/{{ytid}}.flac"\n'
                                '[resample]\n')
        result = CliRunner().invoke(cli, ["run", str(path), "--root", str(tmp_path / "root"), "--quiet",
                                          "--index-mirror", str(reference_dir)])
    assert result.exit_code == 3, result.output  # rerun later, as `audiobench fetch` itself says
    assert "stopped early: 3 downloads in a row could not connect" in result.output.splitlines()[-1]
    assert "== resample" not in result.output
