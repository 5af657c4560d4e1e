"""Pipelines: one TOML file names a dataset and the options of each stage; ``run`` does them in order.

Every stage skips what is already done (the ledger, the feature files' contents, finished run folders), so
a pipeline is rerun, not resumed by hand. Tables are the stage names; their keys are the stage functions'
keyword arguments, with the same names as the CLI options (``batch_size`` for ``--batch-size``)::

    dataset = "synth"
    [weights]
    names = ["vggish"]
    [synth]
    train = 300
    [featurize]
    jobs = 2
    [[compare]]
    trials = 20
    variants = ["noatt-weak", "att-self"]

String values may use ``{root}`` for the storage root (``init = "run:{root}/runs/audioset-model-a"``).

A ``[fetch]``, ``[resample]`` or ``[featurize]`` table may name another ``dataset`` (and come as an array
of tables, one per dataset); ``[[evaluate]]`` scores a study of the pipeline on another dataset's split
(``study = "NAME"``, ``on = "DATASET:SPLIT"``), as ``audiobench evaluate --on`` does.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiobench.core.errors import AudiobenchError, InputFormatError
from audiobench.core.layout import resolve_root, validate_name

STAGES = ("weights", "synth", "fetch", "resample", "featurize", "train", "compare", "evaluate")
# arrays of tables: several datasets, runs, studies or evaluations per pipeline
_REPEATED = ("fetch", "resample", "featurize", "train", "compare", "evaluate")
_OTHER_DATASET = ("fetch", "resample", "featurize")  # stages whose table may name another `dataset`
_DEFAULT_WEIGHTS = ["vggish"]  # what a [weights] table without `names` fetches


@dataclass(frozen=True)
class Step:
    stage: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class Pipeline:
    path: Path
    name: str
    dataset: str
    description: str
    steps: tuple[Step, ...]


class PipelineError(InputFormatError):
    """Every problem of a pipeline file, one line each (``FILE: [table] key: expected ..., got ...``)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and check a pipeline file: every table and key, before anything runs.

    Unknown tables or options, values of the wrong type or out of range, unknown variants, backends or
    weights, and study folders that would leave the storage root are all reported at once, as a
    :class:`PipelineError` with one line per problem naming the file, the table and the key.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise AudiobenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputFormatError(f"{path}: not valid TOML ({exc})") from None
    problems = _check_top(data)
    steps = []
    for stage in STAGES:
        if stage not in data:
            continue
        tables = data[stage]
        single = isinstance(tables, dict)
        if single:
            tables = [tables]
        elif stage not in _REPEATED:
            problems.append(f"[{stage}] expected a table, got an array of tables")
            continue
        elif not isinstance(tables, list):
            problems.append(f"[[{stage}]] expected tables, got {_show(tables)}")
            continue
        for n, table in enumerate(tables, 1):
            label = f"[{stage}]" if single else f"[[{stage}]]" + (f" #{n}" if len(tables) > 1 else "")
            found = _check_table(table, stage, label, data.get("name", path.stem))
            problems += found
            if not found:
                steps.append(Step(stage, table))
    if problems:
        raise PipelineError([f"{path}: {problem}" for problem in problems])
    return Pipeline(path, data.get("name", path.stem), data["dataset"], data.get("description", ""), tuple(steps))


def _check_top(data: Mapping[str, Any]) -> list[str]:
    problems = []
    if not isinstance(data.get("dataset"), str):
        problems.append("needs a top-level `dataset = \"NAME\"`")
    else:
        problems += _problem("dataset", lambda: validate_name(data["dataset"]))
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            problems.append(f"{key}: expected a string, got {_show(data[key])}")
    problems += [f"unknown table or key {key!r} (stages: {', '.join(STAGES)})"
                 for key in data if key not in {"name", "dataset", "description", *STAGES}]
    if "synth" in data and "fetch" in data:
        problems.append("a pipeline either synthesises its dataset or fetches it, not both")
    return problems


def run_pipeline(pipeline: Pipeline, *, root: str | Path | None = None, quiet: bool = False,
                 echo: Callable[[str], None] = print, index_mirror: str | None = None,
                 weights_mirror: str | None = None) -> None:
    """Run every step in order; each skips what is done.

    ``index_mirror`` and ``weights_mirror`` (a folder or base URL) replace the official hosts of the list
    files (``[fetch]``) and of the pretrained weights (``[weights]``), over what the tables say.
    """
    root_path = resolve_root(root)
    mirrors = {"fetch": {"index_mirror": index_mirror}, "weights": {"mirror": weights_mirror}}
    for step in pipeline.steps:
        given = {k: v for k, v in mirrors.get(step.stage, {}).items() if v}
        options = {k: _expand(v, root_path) for k, v in {**step.options, **given}.items()}
        echo(f"== {step.stage} {options.get('name', options.get('dataset', ''))}".rstrip())
        dataset = options.pop("dataset", pipeline.dataset) if step.stage in _OTHER_DATASET else pipeline.dataset
        _RUNNERS[step.stage](dataclasses.replace(pipeline, dataset=dataset), options, root_path, quiet, echo)


def _expand(value: Any, root: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{root}", str(root))
    if isinstance(value, list):
        return [_expand(v, root) for v in value]
    return value


# -- one runner per stage: map the table onto the stage function --------------------------------------------
def _run_synth(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.data.synth import synthesize

    result = synthesize(p.dataset, root=root, quiet=quiet, **o)
    echo(f"synth: {sum(result.splits.values())} clips ({result.generated} generated now), {result.events} events")


def _run_fetch(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.data.sources.youtube import DownloadSettings
    from audiobench.data.fetch import FetchOptions, fetch, parse_shard

    download_keys = {f.name for f in dataclasses.fields(DownloadSettings)}
    from audiobench.data.sources.ytdlp_setup import parse_extractor_args

    converters = {"cookies": Path, "extractor_args": parse_extractor_args}  # extractor_args: yt-dlp's syntax
    download = DownloadSettings(**{k: converters.get(k, lambda v: v)(v) for k, v in o.items() if k in download_keys})
    fetch_keys = {k: v for k, v in o.items() if k not in download_keys and k != "index_mirror"}
    if "shard" in fetch_keys:
        fetch_keys["shard"] = parse_shard(fetch_keys["shard"])
    result = fetch(p.dataset, root=root, index_mirror=o.get("index_mirror"),
                   options=FetchOptions(**fetch_keys, download=download), quiet=quiet)
    echo(f"fetch: {result.summary.counts}")
    if result.summary.message:  # stopped early (3: rerun later) or nothing fetched (2), as `audiobench fetch` exits
        raise AudiobenchError(result.summary.message, exit_code=result.summary.exit_code)


def _run_resample(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.data.resample import resample

    echo(resample(p.dataset, root=root, quiet=quiet, **o).summary())


def _run_featurize(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.features.featurize import featurize

    echo(featurize(p.dataset, root=root, quiet=quiet, **o).summary())


def _run_train(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.training.options import TrainConfig
    from audiobench.training.train import METRICS, check_finished_run, train

    options = {k: v for k, v in o.items() if k != "name"}
    out = Path(options.pop("out")) if "out" in options else None
    if out is not None and not out.is_absolute():
        out = root / out
    if out is not None and (out / METRICS).is_file():
        check_finished_run(out, TrainConfig(p.dataset, **options))  # never skipped for a run of other settings
        echo(f"train: {out} is finished, skipped")
        return
    result = train(p.dataset, root=root, out=out, quiet=quiet, **options)
    echo(f"train: {result.config.variant} test mAP {result.test_map:.4f} ({result.run_dir})")


def _run_compare(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.study.compare import compare

    options = dict(o)
    name = options.pop("name", p.name)
    place = {k: options.pop(k) for k in ("jobs", "backend", "scheduler", "out") if k in options}
    config = compare_config(p.dataset, options)
    out = Path(place.pop("out", f"runs/{name}"))
    result = compare(config, root=root, out=out if out.is_absolute() else root / out, quiet=quiet, **place)
    if result.report is not None:
        import json

        from audiobench.study.findings import summary
        from audiobench.study.report import event_table, variant_table

        results = json.loads((result.run_dir / "results.json").read_text())
        echo(variant_table(results))
        if (results.get("events") or {}).get("metrics"):  # the test split has strong labels (synth: exact)
            echo("\nEvent level (the test clips' strong labels; in brackets: Holm p against the baseline):")
            echo(event_table(results))
        echo("\n" + "\n".join(f"- {line}" for line in summary(results)))
    echo(f"compare {name}: {result.finished} runs finished, {len(result.failures)} failed; report: {result.report}")
    for failure in result.failures:
        echo(f"  failed: trial {failure.trial} {failure.variant}: {failure.error}")


def _run_evaluate(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.study.evaluate import evaluate, evaluation_table

    options = dict(o)
    study = root / "runs" / options.pop("study")
    summary = evaluate(study, options.pop("eval_on", None), root=root, **options)
    if not quiet:
        echo(evaluation_table(summary))
    echo(f"evaluate {study.name} on {summary['eval_on']['file']}: {len(summary['trials'])} trials scored")


def _run_weights(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.models.weights import fetch_weights

    for name in o.get("names", _DEFAULT_WEIGHTS):
        echo(f"weights: {name}: {fetch_weights(name, root=root, mirror=o.get('mirror'), quiet=quiet)}")


_RUNNERS: dict[str, Callable[[Pipeline, dict[str, Any], Path, bool, Callable[[str], None]], None]] = {
    "weights": _run_weights, "synth": _run_synth, "fetch": _run_fetch, "resample": _run_resample,
    "featurize": _run_featurize, "train": _run_train, "compare": _run_compare, "evaluate": _run_evaluate,
}



# -- checks at load time: every table and key, all problems at once -------------------------------------------
# (the training options' bounds are their fields', checked by TrainConfig.check)
_AT_LEAST = {"jobs": 1, "trials": 1, "examples": 0, "retries": 0, "max_refusals": 1, "limit": 0, "shard_size": 1}


def _schema(stage: str) -> dict[str, Any]:
    """Every key a stage's table takes, with its type: the annotations of what the table is passed to."""
    if stage == "weights":
        return {"names": list[str], "mirror": str}
    if stage == "evaluate":
        return {"study": str, "on": str, "eval_on": str, "name": str, "metric": str, "device": str}
    if stage in _OTHER_DATASET:
        return {**_stage_schema(stage), "dataset": str}
    return _stage_schema(stage)


def _stage_schema(stage: str) -> dict[str, Any]:
    if stage == "fetch":
        from audiobench.data.sources.youtube import DownloadSettings
        from audiobench.data.fetch import FetchOptions

        keys = {**_field_types(FetchOptions), **_field_types(DownloadSettings), "index_mirror": str}
        del keys["download"]
        # "I/N", parsed as --shard is; extractor_args in yt-dlp's syntax, as --extractor-args takes them
        return {**keys, "shard": str, "extractor_args": list[str]}
    if stage in ("train", "compare"):
        from audiobench.training.options import TrainConfig, TrainOptions, option_fields

        if stage == "train":
            return {**{f.name: hint for f, hint in option_fields(TrainConfig)}, "out": str, "name": str}
        from audiobench.study.compare import CompareConfig, compare

        train = {f.name: hint for f, hint in option_fields(TrainOptions)}  # variant and seed are per run
        study = {k: v for k, v in _field_types(CompareConfig).items() if k not in ("dataset", "train")}
        place = {k: v for k, v in typing.get_type_hints(compare).items() if k in ("jobs", "backend", "scheduler")}
        return {**train, **study, **place, "out": str, "name": str}
    function = _stage_function(stage)
    hints = typing.get_type_hints(function)
    return {name: hints[name] for name, param in inspect.signature(function).parameters.items()
            if param.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("root", "quiet")}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _stage_function(stage: str) -> Callable[..., Any]:
    if stage == "synth":
        from audiobench.data.synth import synthesize

        return synthesize
    if stage == "resample":
        from audiobench.data.resample import resample

        return resample
    from audiobench.features.featurize import featurize

    return featurize


def _expectation(hint: Any) -> tuple[str, Callable[[Any], bool]]:
    """What a TOML value of type ``hint`` must be: its description and its test (TOML has no null)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = list({what: (what, test) for what, test in map(_expectation, args) if what != "null"}.values())
        if len(kinds) == 1:
            return kinds[0]
        return " or ".join(k[0] for k in kinds), lambda v: any(test(v) for _, test in kinds)
    if origin is typing.Literal:
        return f"one of {', '.join(json.dumps(a) for a in args)}", lambda v: isinstance(v, str) and v in args
    if origin in (list, tuple, Sequence):
        what, test = _expectation(args[0])
        what = "strings" if what == "a string" else f"items each {what}"
        return f"a list of {what}", lambda v: isinstance(v, list) and all(test(x) for x in v)
    if hint is type(None):
        return "null", lambda v: False
    if hint is bool:
        return "true or false", lambda v: isinstance(v, bool)
    if hint is int:
        return "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)
    if hint is float:
        return "a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if hint in (str, Path) or hint is os.PathLike or origin is os.PathLike:
        return "a string", lambda v: isinstance(v, str)
    raise TypeError(f"no TOML form for {hint!r}")  # a new option type: give it one here


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_table(table: Any, stage: str, label: str, pipeline_name: object) -> list[str]:
    """Every problem of one stage table, each as ``[table] key: what is wrong``."""
    if not isinstance(table, Mapping):
        return [f"{label} expected a table, got {_show(table)}"]
    schema = _schema(stage)
    problems, bad = [], set()
    for key, value in table.items():
        if key not in schema:
            problems.append(f"{key}: no such option (options: {', '.join(sorted(schema))})")
            bad.add(key)
            continue
        what, test = _expectation(schema[key])
        if not test(value):
            problems.append(f"{key}: expected {what}, got {_show(value)}")
            bad.add(key)
        elif key in _AT_LEAST and value < _AT_LEAST[key]:
            problems.append(f"{key}: expected at least {_AT_LEAST[key]}, got {_show(value)}")
            bad.add(key)
    values = _key_problems(stage, table, bad)
    problems += values
    if stage in ("train", "compare") and not bad & {"name", "out"}:
        problems += _path_problems(stage, table, pipeline_name)
    if not bad and not values:  # the checks of the options together need each one right on its own
        problems += _options_problems(stage, table)
    return [f"{label} {problem}" for problem in problems]


def _key_problems(stage: str, table: Mapping[str, Any], bad: set[str]) -> list[str]:
    """Checks of one well-typed key's value: names of weights, variants and extractors, shards; keys a stage
    needs."""
    from audiobench.models.variants import variant_spec

    problems = []
    if stage == "weights" and "names" not in bad:
        from audiobench.models.weights import KNOWN

        problems += [f"names: unknown weights {n!r} (known: {', '.join(KNOWN)})"
                     for n in table.get("names", _DEFAULT_WEIGHTS) if n not in KNOWN]
    if stage == "fetch" and "shard" in table and "shard" not in bad:
        from audiobench.data.fetch import parse_shard

        problems += _problem("shard", lambda: parse_shard(table["shard"]))
    if stage == "compare" and "variants" not in bad:
        if not table.get("variants"):
            problems.append("variants: missing, e.g. variants = [\"noatt-weak\", \"att-self\"]")
        problems += [p for v in table.get("variants", []) for p in _problem("variants", lambda: variant_spec(v))]
    if stage == "featurize" and "features" in table and "features" not in bad:
        from audiobench.features.base import get_extractor

        problems += _problem("features", lambda: get_extractor(table["features"]))
    if stage in _OTHER_DATASET and "dataset" in table and "dataset" not in bad:
        problems += _problem("dataset", lambda: validate_name(table["dataset"]))
    if stage == "evaluate":
        problems += _evaluate_problems(table, bad)
    if stage == "train" and "variant" not in table:
        problems.append("variant: missing, e.g. variant = \"att-self\"")
    elif stage == "train" and "variant" not in bad:
        problems += _problem("variant", lambda: variant_spec(table["variant"]))
    return problems


def _evaluate_problems(table: Mapping[str, Any], bad: set[str]) -> list[str]:
    from audiobench.study.cross_dataset import dataset_target
    from audiobench.training.options import METRIC_COLUMNS

    problems = [] if "study" in table else ["study: missing, the name of a [[compare]] study"]
    if "study" in table and "study" not in bad:
        problems += _problem("study", lambda: validate_name(table["study"], what="study name"))
    if ("on" in table) == ("eval_on" in table):
        problems.append("on: give `on = \"DATASET:SPLIT\"` or `eval_on = \"CLIPS.csv\"`, one of the two")
    elif "on" in table and "on" not in bad:
        problems += _problem("on", lambda: dataset_target(table["on"]))
    if "metric" in table and "metric" not in bad and table["metric"] not in METRIC_COLUMNS:
        problems.append(f"metric: expected one of {', '.join(METRIC_COLUMNS)}, got {_show(table['metric'])}")
    return problems


def _options_problems(stage: str, table: Mapping[str, Any]) -> list[str]:
    """The checks of a stage's options together (ranges, the baseline among the variants), once all are typed."""
    from audiobench.training.options import TrainConfig

    if stage == "train" and "variant" in table:
        options = {k: v for k, v in table.items() if k not in ("out", "name")}
        return _problem("", lambda: TrainConfig("dataset", **options).check())
    if stage == "compare" and table.get("variants"):
        from audiobench.study.compare import check_options

        options = {k: v for k, v in table.items() if k not in ("jobs", "backend", "scheduler", "out", "name")}
        return _problem("", lambda: check_options(compare_config("dataset", options)))
    return []


def compare_config(dataset: str, table: Mapping[str, Any]) -> Any:
    """A ``[[compare]]`` table's study keys and training options (without where and how it runs) as a
    :class:`~audiobench.study.compare.CompareConfig`."""
    from audiobench.study.compare import CompareConfig
    from audiobench.training.options import TrainOptions

    options = dict(table)
    study = {k: options.pop(k) for k in ("trials", "baseline", "examples") if k in options}
    variants = tuple(options.pop("variants"))
    return CompareConfig(dataset, variants, **study, train=TrainOptions(**options))


def _problem(key: str, check: Callable[[], object]) -> list[str]:
    """``check``'s error as ``key: message``; without ``key``, an option the message names (``--batch-size``)."""
    try:
        check()
    except AudiobenchError as exc:
        message = str(exc)
        if not key and (named := re.match(r"--([a-z-]+) ", message)):
            key, message = named.group(1).replace("-", "_"), message[named.end():]
        return [f"{key}: {message}" if key else message]
    return []


def _path_problems(stage: str, table: Mapping[str, Any], pipeline_name: object) -> list[str]:
    """The run or study folder stays under the storage root: ``out`` relative (or under ``{root}/``), of plain
    names, no ``..``; without ``out``, a study's folder is ``runs/<name>`` and its name must be plain too."""
    if "out" not in table:
        if stage != "compare":
            return []
        return _problem("name", lambda: validate_name(table.get("name", pipeline_name), what="study name"))
    text = table["out"].removeprefix("{root}/")
    parts = Path(text).parts
    if not parts or Path(text).is_absolute():
        return [f"out: expected a folder under the storage root, e.g. \"runs/NAME\", got {_show(table['out'])}"]
    for part in parts:
        if problem := _problem("out", lambda: validate_name(part, what="folder name")):
            return problem
    return []
