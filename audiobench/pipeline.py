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
"""
from __future__ import annotations

import dataclasses
import inspect
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiobench.errors import AudiobenchError, InputFormatError
from audiobench.layout import resolve_root

STAGES = ("weights", "synth", "fetch", "resample", "featurize", "train", "compare")
_REPEATED = ("train", "compare")  # arrays of tables: several runs or studies per pipeline
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


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and check a pipeline file: unknown stages or options are errors naming the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise AudiobenchError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputFormatError(f"{path}: not valid TOML ({exc})") from None
    if not isinstance(data.get("dataset"), str):
        raise InputFormatError(f"{path}: needs a top-level `dataset = \"NAME\"`")
    unknown = set(data) - {"name", "dataset", "description", *STAGES}
    if unknown:
        raise InputFormatError(f"{path}: unknown table or key {sorted(unknown)[0]!r} (stages: {', '.join(STAGES)})")
    if "synth" in data and "fetch" in data:
        raise InputFormatError(f"{path}: a pipeline either synthesises its dataset or fetches it, not both")
    steps = []
    for stage in STAGES:
        if stage not in data:
            continue
        tables = data[stage]
        if isinstance(tables, dict):
            tables = [tables]
        elif stage not in _REPEATED:
            raise InputFormatError(f"{path}: [{stage}] must be a table, not an array of tables")
        for table in tables:
            _check_keys(path, stage, table)
            steps.append(Step(stage, table))
    return Pipeline(path, data.get("name", path.stem), data["dataset"], data.get("description", ""), tuple(steps))


def run_pipeline(pipeline: Pipeline, *, root: str | Path | None = None, quiet: bool = False,
                 echo: Callable[[str], None] = print) -> None:
    """Run every step in order; each skips what is done."""
    root_path = resolve_root(root)
    for step in pipeline.steps:
        options = {k: _expand(v, root_path) for k, v in step.options.items()}
        echo(f"== {step.stage} {options.get('name', '')}".rstrip())
        _RUNNERS[step.stage](pipeline, options, root_path, quiet, echo)


def _expand(value: Any, root: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{root}", str(root))
    if isinstance(value, list):
        return [_expand(v, root) for v in value]
    return value


# -- one runner per stage: map the table onto the stage function --------------------------------------------
def _run_synth(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.synth import synthesize

    result = synthesize(p.dataset, root=root, quiet=quiet, **o)
    echo(f"synth: {sum(result.splits.values())} clips ({result.generated} generated now), {result.events} events")


def _run_fetch(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.download import DownloadSettings
    from audiobench.fetch import FetchOptions, fetch, parse_shard

    download_keys = {f.name for f in dataclasses.fields(DownloadSettings)}
    download = DownloadSettings(**{k: (Path(v) if k == "cookies" else v) for k, v in o.items() if k in download_keys})
    fetch_keys = {k: v for k, v in o.items() if k not in download_keys and k != "index_mirror"}
    if "shard" in fetch_keys:
        fetch_keys["shard"] = parse_shard(fetch_keys["shard"])
    result = fetch(p.dataset, root=root, index_mirror=o.get("index_mirror"),
                   options=FetchOptions(**fetch_keys, download=download), quiet=quiet)
    echo(f"fetch: {result.summary.counts}")
    if result.summary.message:
        raise AudiobenchError(result.summary.message)


def _run_resample(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.resample import resample

    echo(resample(p.dataset, root=root, quiet=quiet, **o).summary())


def _run_featurize(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.featurize import featurize

    echo(featurize(p.dataset, root=root, quiet=quiet, **o).summary())


def _run_train(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.train import METRICS, train

    options = {k: v for k, v in o.items() if k != "name"}
    out = Path(options.pop("out")) if "out" in options else None
    if out is not None and not out.is_absolute():
        out = root / out
    if out is not None and (out / METRICS).is_file():
        echo(f"train: {out} is finished, skipped")
        return
    result = train(p.dataset, root=root, out=out, quiet=quiet, **options)
    echo(f"train: {result.config.variant} test mAP {result.test_map:.4f} ({result.run_dir})")


def _run_compare(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.compare import CompareConfig, compare
    from audiobench.train import TrainConfig

    options = dict(o)
    name = options.pop("name", p.name)
    study = {k: options.pop(k) for k in ("variants", "trials", "baseline", "examples") if k in options}
    place = {k: options.pop(k) for k in ("jobs", "backend", "scheduler", "out") if k in options}
    variants = tuple(study.pop("variants"))
    config = CompareConfig(TrainConfig(p.dataset, variants[0], **options), variants=variants, **study)
    out = Path(place.pop("out", f"runs/{name}"))
    result = compare(config, root=root, out=out if out.is_absolute() else root / out, quiet=quiet, **place)
    if result.report is not None:
        import json

        from audiobench.report import variant_table

        echo(variant_table(json.loads((result.run_dir / "results.json").read_text())))
    echo(f"compare {name}: {result.finished} runs finished, {len(result.failures)} failed; report: {result.report}")
    for failure in result.failures:
        echo(f"  failed: trial {failure.trial} {failure.variant}: {failure.error}")


def _run_weights(p: Pipeline, o: dict[str, Any], root: Path, quiet: bool, echo: Callable[[str], None]) -> None:
    from audiobench.weights import fetch_weights

    for name in o.get("names", _DEFAULT_WEIGHTS):
        echo(f"weights: {name}: {fetch_weights(name, root=root, mirror=o.get('mirror'), quiet=quiet)}")


_RUNNERS: dict[str, Callable[[Pipeline, dict[str, Any], Path, bool, Callable[[str], None]], None]] = {
    "weights": _run_weights, "synth": _run_synth, "fetch": _run_fetch, "resample": _run_resample,
    "featurize": _run_featurize, "train": _run_train, "compare": _run_compare,
}


def _allowed_keys(stage: str) -> set[str]:
    """The keyword arguments each stage takes from a pipeline table."""
    if stage == "weights":
        return {"names", "mirror"}
    if stage == "fetch":
        from audiobench.download import DownloadSettings
        from audiobench.fetch import FetchOptions

        return ({f.name for f in dataclasses.fields(FetchOptions)} - {"download"}
                | {f.name for f in dataclasses.fields(DownloadSettings)} | {"index_mirror"})
    if stage in ("train", "compare"):
        from audiobench.train import TrainConfig

        train_keys = {f.name for f in dataclasses.fields(TrainConfig)} - {"dataset"}
        if stage == "train":
            return train_keys | {"out", "name"}
        return train_keys - {"variant", "seed"} | {"variants", "trials", "baseline", "examples", "jobs", "backend",
                                                   "scheduler", "out", "name"}
    function = _stage_function(stage)
    return {name for name, param in inspect.signature(function).parameters.items()
            if param.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("root", "quiet")}


def _stage_function(stage: str) -> Callable[..., Any]:
    if stage == "synth":
        from audiobench.synth import synthesize

        return synthesize
    if stage == "resample":
        from audiobench.resample import resample

        return resample
    from audiobench.featurize import featurize

    return featurize


def _check_keys(path: Path, stage: str, table: Mapping[str, Any]) -> None:
    if not isinstance(table, Mapping):
        raise InputFormatError(f"{path}: [{stage}] must be a table")
    unknown = sorted(set(table) - _allowed_keys(stage))
    if unknown:
        raise InputFormatError(f"{path}: [{stage}] has no option {unknown[0]!r} "
                               f"(options: {', '.join(sorted(_allowed_keys(stage)))})")
    if stage == "weights":
        from audiobench.weights import KNOWN

        names = table.get("names", _DEFAULT_WEIGHTS)
        if not isinstance(names, list):
            raise InputFormatError(f"{path}: [weights] names must be a list, e.g. names = [\"vggish\"]")
        bad = [n for n in names if n not in KNOWN]
        if bad:
            raise InputFormatError(f"{path}: [weights] names: unknown weights {bad[0]!r} "
                                   f"(known: {', '.join(KNOWN)})")
    if stage == "compare" and not table.get("variants"):
        raise InputFormatError(f"{path}: [[compare]] needs `variants = [...]`")
