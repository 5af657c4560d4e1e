"""``audiobench evaluate RUN_OR_STUDY --eval-on CLIPS.csv | --on DATASET[:SPLIT]``: finished runs scored again.

Nothing is trained: each run's saved model (``model.pt``) predicts the test split it was scored on (the
feature file its ``metrics.json`` names), and the clips the list names are scored with every metric of
``metrics.json``; or it predicts every clip of another dataset's split with the same classes and features
(:mod:`audiobench.study.cross_dataset`: an SL-DCASE-17 model on DCASE 2017 task 4's strong sets). A run gets ``evaluation-<name>.json``; a study gets one per trial, then its own
``evaluation-<name>.json`` with each variant's mean and the paired tests on the subset (as ``compare``
tests them, Holm-corrected, on the metric chosen). Where the test split has strong labels, the run's
event outputs on the listed clips go to ``<run>/evaluation-<name>-events/`` (the files of ``test-events/``,
post-processed with the values the run chose at training) and the event metrics join the record.

>>> evaluate("audiobench-data/runs/synth-demo", "their-clips.csv")     # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import json_safe, validate_name, write_atomic
from audiobench.core.roots import feature_path, record_path
from audiobench.data.cliplist import ClipList, read_clip_list, select
from audiobench.study.cross_dataset import DatasetTarget, dataset_target
from audiobench.study import stats
from audiobench.training.options import CLIP_METRIC_COLUMNS, DEFAULT_METRIC, EVENT_METRIC_COLUMNS, METRIC_COLUMNS

PREFIX = "evaluation-"


Target = ClipList | DatasetTarget  # what is scored: listed clips of the run's test split, or another split


def evaluation_name(clip_list: str | os.PathLike[str] | None, name: str | None, *, on: str | None = None) -> str:
    """``name``, or the clip list's file stem, or ``<dataset>-<split>`` for ``--on``: ``evaluation-<name>.json``."""
    if name is None:
        name = dataset_target(on).label if on is not None else Path(clip_list).stem
    return validate_name(name, what="evaluation name")


def evaluate(path: str | os.PathLike[str], clip_list: str | os.PathLike[str] | None = None, *,
             on: str | None = None, name: str | None = None, metric: str = DEFAULT_METRIC, device: str = "cpu",
             root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Score a run folder or a study folder on ``clip_list`` (clips of each run's test split) or on ``on``
    (``DATASET[:SPLIT]``, every clip of that split); returns what ``evaluation-<name>.json`` holds.

    Each run is scored on features of the storage root it lies in (a copied or moved root: the copy's);
    ``root``: the root of runs kept outside it, when that root moved (``--root``).
    """
    from audiobench.training.train import resolve_device

    folder = Path(path)
    resolve_device(device)  # a bad name is refused before anything is read
    if (clip_list is None) == (on is None):
        raise AudiobenchError("say what to score: --eval-on CLIPS.csv (clips of the run's test split) or "
                              "--on DATASET[:SPLIT] (another dataset's split), one of the two")
    label = evaluation_name(clip_list, name, on=on)
    clips: Target = dataset_target(on) if on is not None else read_clip_list(clip_list)
    if metric not in METRIC_COLUMNS:
        raise AudiobenchError(f"--metric must be one of {', '.join(METRIC_COLUMNS)}, got {metric!r}")
    if (folder / "metrics.json").is_file():
        return evaluate_run(folder, clips, label, device=device, root=root)
    if (folder / "trials").is_dir():
        return evaluate_study(folder, clips, label, metric=metric, device=device, root=root)
    raise AudiobenchError(f"{folder} is neither a finished run (no metrics.json) nor a study (no trials/)")


def evaluate_run(run_dir: Path, clips: Target, label: str, *, device: str = "cpu",
                 opened: dict[Path, Any] | None = None,
                 root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """One run's metrics on the listed test clips (or the target split), written to
    ``<run>/evaluation-<label>.json``.

    ``opened``: test splits already open, by path (a study's trials share theirs); this run's is added.
    ``root``: see :func:`evaluate`.
    """
    from audiobench.features.dataset import LogmelDataset
    from audiobench.models.checkpoint import load_model
    from audiobench.training.inference import predict_dataset
    from audiobench.training.metrics import score
    from audiobench.training.train import read_metrics, resolve_device

    metrics = read_metrics(run_dir)
    if isinstance(clips, DatasetTarget):
        test_file, subset = clips.resolve(metrics, run_dir, root=root)
    else:
        test_file = feature_path(metrics, run_dir, "test", root=root)
        subset = select(clips, test_file)
    net, _ = load_model(run_dir)
    where = resolve_device(device)
    opened = {} if opened is None else opened
    dataset = opened.get(test_file) or LogmelDataset(test_file, frames=None)
    opened[test_file] = dataset
    config = metrics["config"]
    predictions = predict_dataset(net.to(where), dataset, device=where, batch_size=int(config["batch_size"]),
                                  bf16=bool(config.get("bf16", False)), rows=subset.rows)
    result = score(predictions.scores, predictions.targets)
    names = [c.name for c in dataset.classes]
    record = {
        "run_dir": record_path(run_dir), "variant": config["variant"], "seed": config["seed"],
        "eval_on": subset.record(), **result.summary("test"), "chance_test_map": result.chance,
        "test_per_class": [{"index": c, "name": n, **v} for c, (n, v) in enumerate(zip(names, result.per_class()))],
        "trained_on": metrics.get("fingerprints"),
    }
    if dataset.has_strong:
        chooser = clips.choosing_split(test_file) if isinstance(clips, DatasetTarget) else None
        record.update(_events(run_dir, net, dataset, subset.rows, label, device=where, config=config,
                              chooser=chooser))
    write_atomic(run_dir / f"{PREFIX}{label}.json", json.dumps(json_safe(record), indent=2))
    return record


def _events(run_dir: Path, net: Any, dataset: Any, rows: Any, label: str, *, device: Any,
            config: dict[str, Any], chooser: tuple[Path, str] | None = None) -> dict[str, Any]:
    """Event files and metrics of the clips scored. Post-processed as chosen on ``chooser`` (another split's
    strong labels: a cross-dataset score's val split), else as the run chose at training (its
    ``test-events/postprocessing.json``); {} with a note when neither exists."""
    from audiobench.features.dataset import LogmelDataset
    from audiobench.training.events.run import (FOLDER, choose_postprocessing, events_record, read_postprocessing,
                                                score_folder, write_events)
    from audiobench.training.events.segments import segment_scores

    batch, bf16 = int(config["batch_size"]), bool(config.get("bf16", False))
    chosen_file = run_dir / FOLDER / "postprocessing.json"
    if chooser is not None:
        chosen = choose_postprocessing(net, LogmelDataset(chooser[0], frames=None), chooser[1], device=device,
                                       batch_size=batch, bf16=bf16)
    elif chosen_file.is_file():
        chosen = read_postprocessing(chosen_file.parent)
    else:
        return {"events_note": f"no {FOLDER}/postprocessing.json in the run and no strongly labelled split to "
                               "choose the post-processing on: no event metrics"}
    scores = segment_scores(net, dataset, device=device, batch_size=batch, bf16=bf16, rows=rows)
    classes = [c.name for c in dataset.classes]
    folder = write_events(run_dir / f"{PREFIX}{label}-events", scores, dataset.path, classes, chosen)
    return events_record(folder, run_dir, classes, score_folder(folder, classes))


def evaluate_study(study_dir: Path, clips: Target, label: str, *, metric: str = DEFAULT_METRIC,
                   device: str = "cpu", root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Every finished trial of a study on the listed clips, then per-variant means and the paired tests."""
    from audiobench.study.compare import finished_runs
    from audiobench.study.report import read_run

    study = read_run(study_dir)
    runs = finished_runs(study_dir)
    if not runs:
        raise AudiobenchError(f"{study_dir} has no finished trial to evaluate")
    rows, opened = [], {}
    for trial, result in runs:
        record = evaluate_run(result.run_dir, clips, label, device=device, opened=opened, root=root)
        rows.append({"trial": trial, "variant": result.config.variant,
                     **{column: record.get(column) for column in METRIC_COLUMNS.values()}})
    table = pd.DataFrame(rows)
    variants = [v for v in study.variants if v in set(table["variant"])]
    baseline = study.baseline if study.baseline in variants else variants[0]
    tests = stats.compare_variants(table, baseline=baseline, pairs=study.config.get("pairs", "all"),
                                   variants=variants, column=METRIC_COLUMNS[metric])
    summary = {
        "study": record_path(study_dir), "metric": metric, "baseline": baseline,
        "eval_on": record["eval_on"],
        "variants": [{"variant": v, **{column: asdict(stats.describe(table.loc[table["variant"] == v, column]))
                                       for column in METRIC_COLUMNS.values()}} for v in variants],
        "tests": [asdict(t) for t in tests],
        "trials": rows,
    }
    summary = json_safe(summary)
    write_atomic(study_dir / f"{PREFIX}{label}.json", json.dumps(summary, indent=2))
    return summary


def evaluation_table(summary: dict[str, Any]) -> str:
    """A study's evaluation as a Markdown table: each variant's mean ± std, then the paired tests."""
    from audiobench.study.report import fmt_mean_std, fmt_p

    e = summary["eval_on"]
    from audiobench.study.findings import METRIC_NAMES

    shown = {**CLIP_METRIC_COLUMNS, **{m: c for m, c in EVENT_METRIC_COLUMNS.items()
                                       if any(v[c]["n"] for v in summary["variants"])}}
    lines = [f"On {e['held']} of the {e['listed']} clips listed in {e['file']} ({e['clips']} test clips, "
             f"fingerprint {e['fingerprint']}):", "",
             "| variant | " + " | ".join(METRIC_NAMES[m] for m in shown) + " | trials |",
             "|---|" + "---|" * (len(shown) + 1)]
    for v in summary["variants"]:
        cells = [fmt_mean_std(v[c]["mean"], v[c]["std"]) for c in shown.values()]
        lines.append(f"| {v['variant']} | {' | '.join(cells)} | {v['test_map']['n']} |")
    lines += ["", f"| pair ({summary['metric']}) | mean diff | p | Holm p |", "|---|---|---|---|"]
    for t in summary["tests"]:
        p = "n/a" if t["p"] is None else fmt_p(t["p"])
        holm = "n/a" if t["p_holm"] is None else fmt_p(t["p_holm"]) + t["mark"]
        lines.append(f"| {t['b']} − {t['a']} | {t['mean_diff']:+.4f} | {p} | {holm} |")
    return "\n".join(lines)
