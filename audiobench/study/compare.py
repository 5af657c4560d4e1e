"""The comparison study (docs/compare.md): paired trials of several variants, then the statistics.

Trial ``k`` trains every variant with seed ``k``: the same batches in the same order and the same initial
weights in the layers the variants share (see :mod:`audiobench.training.train`), so the test mAPs of trial ``k`` are
paired. Each finished (trial, variant) is a run folder under ``<run>/trials/`` whose ``metrics.json`` is
written last: a rerun, or a rerun after a kill, trains only what is missing (and what a damaged file makes
unreadable). One run at a time trains a study folder (a lock names the holder). Every trial uses
:data:`TRIAL_THREADS` CPU threads, whatever ``jobs`` is: the thread count changes the numbers in the third
digit, and a study's trials must not depend on how many ran at once. The tables and figures come from
:func:`audiobench.study.report.render_report` over the saved results.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from audiobench.models.checkpoint import CHECKPOINT_META
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, ensure_writable_dir, resolve_root, runs_dir, write_atomic
from audiobench.core.folders import STUDY, differing, require_own_folder
from audiobench.core.jsonfile import read_json_object
from audiobench.core.locking import exclusive
from audiobench.data.roles import split_for
from audiobench.core.parallel import Backend, check_backend, map_unordered
from audiobench.data.cliplist import eval_subset, neutral
from audiobench.data.fingerprint import split_fingerprint
from audiobench.training.logs import check_log
from audiobench.training.splits import training_frames
from audiobench.training.options import (DEFAULT_METRIC, EVENT_METRIC_COLUMNS, METRIC_COLUMNS, TrainConfig,
                                         TrainOptions)
from audiobench.training.train import METRICS, TRAINING_RECIPE, TrainResult, read_result, run
from audiobench.models.variants import VariantSpec, fig4_pair, require_strong, variant_spec

log = logging.getLogger(__name__)

TRIALS_DIR = "trials"
TRIAL_COLUMNS = ["trial", "variant", "seed", "val_map", "test_map", "best_epoch", "seconds", "test_auc", "test_dprime",
                 *EVENT_METRIC_COLUMNS.values(), "events_chosen_on"]  # event metrics: empty without strong test labels
TRIAL_THREADS = 1  # torch CPU threads per trial, whatever --jobs is (use --jobs for more cores)
ATTENTION_DIR = "attention"


@dataclass(frozen=True)
class CompareConfig:
    """What defines a comparison; its hash names the run folder, so the same study resumes in place.

    ``train`` holds the training options every run shares (each run adds its variant and, as seed, its
    trial number). ``trials`` is left out of the hash: asking for more trials later extends the same study.
    """

    dataset: str
    variants: tuple[str, ...]
    trials: int = 20
    baseline: str | None = None
    examples: int = 3  # test clips whose attention matrices are drawn (Fig. 5)
    metric: str = DEFAULT_METRIC  # which per-trial metric the paired tests compare (``--metric``)
    train: TrainOptions = field(default_factory=TrainOptions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", self.train.options())  # a TrainConfig given: only its options count

    def study_id(self) -> str:
        # The dataset and every option but the worker count and the logs, as earlier versions hashed them (ids
        # stay valid); a clip list scored on (``eval_on``) by its content, and only when there is one.
        shared = {"dataset": self.dataset, **{k: v for k, v in asdict(self.train).items()
                                              if k not in ("workers", "log", "eval_on")}}
        if self.train.eval_on is not None:
            shared["eval_on"] = _file_digest(Path(self.train.eval_on))
        key = json.dumps({"train": shared, "variants": list(self.variants), "recipe": TRAINING_RECIPE},
                         sort_keys=True)
        return f"compare-{self.dataset}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"

    def run_config(self, variant: str, trial: int) -> TrainConfig:
        """The :class:`TrainConfig` of one (trial, variant) run: seed ``trial``, the shared options."""
        return TrainConfig(self.dataset, variant, trial, **asdict(self.train))


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise AudiobenchError(f"--eval-on {path}: cannot be read ({exc.strerror})") from None


@dataclass(frozen=True)
class TrialTask:
    trial: int
    variant: str
    config: TrainConfig
    root: str
    out: str
    threads: int


@dataclass(frozen=True)
class TrialOutcome:
    trial: int
    variant: str
    error: str | None = None
    resumed: bool = False


@dataclass(frozen=True)
class CompareResult:
    run_dir: Path
    finished: int
    trained: int
    resumed: int
    failures: list[TrialOutcome] = field(default_factory=list)
    report: Path | None = None
    timing: dict[str, float] = field(default_factory=dict)  # wall seconds: "trials" (training), "report" (after)


def check_study(config: CompareConfig, root: Path) -> None:
    """Refuse, before any training, what would fail in every trial: bad names, missing features, labels."""
    specs = check_options(config)
    from audiobench.features.store import feature_file

    paths = DatasetPaths(root, config.dataset)
    train_file = feature_file(paths, split_for(paths, "train"), config.train.feature_id)
    with h5py.File(train_file, "r") as f:
        has_strong = bool(f.attrs["has_strong"])
    for spec in specs:
        require_strong(spec, split="train", has_strong=has_strong)
    if config.metric in EVENT_METRIC_COLUMNS:
        test_file = feature_file(paths, split_for(paths, "test"), config.train.feature_id)
        with h5py.File(test_file, "r") as f:
            if not bool(f.attrs["has_strong"]):
                raise AudiobenchError(f"--metric {config.metric} needs strong labels in the test split; {test_file} "
                                      "has none (use --metric map, auc or dprime)")
    if config.train.eval_on is not None:
        eval_subset(config.train.eval_on, feature_file(paths, split_for(paths, "test"), config.train.feature_id))
    check_log(config.train.log)


def check_options(config: CompareConfig) -> list[VariantSpec]:
    """The checks that need no files (variants, baseline, trials, training options); the variants' specs."""
    if not config.variants:
        raise AudiobenchError("no variants to compare (--variants a,b,...)")
    if len(set(config.variants)) != len(config.variants):
        raise AudiobenchError(f"--variants lists a variant twice: {','.join(config.variants)}")
    if config.trials < 1:
        raise AudiobenchError(f"--trials must be at least 1, got {config.trials}")
    specs = [variant_spec(v) for v in config.variants]
    if config.metric not in METRIC_COLUMNS:
        raise AudiobenchError(f"--metric must be one of {', '.join(METRIC_COLUMNS)}, got {config.metric!r}")
    if config.baseline is not None and config.baseline not in config.variants:
        raise AudiobenchError(f"--baseline {config.baseline!r} is not among --variants {','.join(config.variants)}")
    config.train.check()
    return specs


def compare(config: CompareConfig, *, root: str | os.PathLike[str] | None = None,
            out: str | os.PathLike[str] | None = None, jobs: int = 1, backend: Backend = "loky",
            scheduler: str | None = None, quiet: bool = False) -> CompareResult:
    """Train ``config.trials`` paired trials of every variant (resuming), then write the report.

    >>> cfg = CompareConfig("synth", ("noatt-weak", "att-self"), trials=20,            # doctest: +SKIP
    ...                     train=TrainOptions(epochs=5, width=0.125))
    >>> compare(cfg, jobs=2).report                                                          # doctest: +SKIP
    """
    root_path = resolve_root(root)
    if config.train.eval_on is not None:  # trials may run in other processes: the list by its full path
        config = replace(config, train=replace(config.train, eval_on=str(Path(config.train.eval_on).resolve())))
    check_study(config, root_path)
    check_backend(backend)
    frames = training_frames(DatasetPaths(root_path, config.dataset), feature_id=config.train.feature_id,
                             frames=config.train.frames)  # resolved first: the study id hashes the number
    config = replace(config, train=replace(config.train, frames=frames))
    run_dir = Path(out) if out is not None else runs_dir(root_path) / config.study_id()
    require_own_folder(run_dir, STUDY, option="--out", fix=_ANOTHER_OUT)
    ensure_writable_dir(run_dir)
    with exclusive(run_dir, busy=f"another `audiobench compare` is training the study in {run_dir}"):
        return _run_study(config, root_path, run_dir, jobs=jobs, backend=backend, scheduler=scheduler,
                          quiet=quiet)


def _run_study(config: CompareConfig, root_path: Path, run_dir: Path, *, jobs: int, backend: Backend,
               scheduler: str | None, quiet: bool) -> CompareResult:
    _check_same_study(run_dir, config)
    _write_config(run_dir, config, root_path)
    tasks, resumed = [], 0
    for trial in range(config.trials):
        for variant in config.variants:
            folder = run_dir / TRIALS_DIR / f"t{trial:02d}-{variant}"
            damage = trial_damage(folder)
            if damage is None:
                resumed += 1
                continue
            if damage != UNFINISHED:
                log.warning("trial %d variant %s: %s, retraining", trial, variant, damage)
            shutil.rmtree(folder, ignore_errors=True)  # a run killed mid-way, or a damaged one: start it again
            tasks.append(TrialTask(trial, variant, config.run_config(variant, trial), str(root_path), str(folder),
                                   TRIAL_THREADS))
    failures = []
    started = time.perf_counter()
    for outcome in map_unordered(run_trial, tasks, jobs=jobs, backend=backend, scheduler=scheduler,
                                 desc="trials", quiet=quiet, unit="run", fresh_workers=True):
        if outcome.error is not None:
            failures.append(outcome)
    trained = time.perf_counter()
    results = finished_runs(run_dir)
    _warn_mixed_threads(run_dir, results)
    write_tables(run_dir, results)
    write_class_durations(run_dir, root_path, config)
    write_attention_examples(run_dir, root_path, config, results)
    from audiobench.study.report import render_report

    report = render_report(run_dir) if results else None
    timing = {"trials": trained - started, "report": time.perf_counter() - trained}
    return CompareResult(run_dir, len(results), len(tasks) - len(failures), resumed, failures, report, timing)


UNFINISHED = "unfinished"


def trial_damage(folder: Path) -> str | None:
    """None for a finished trial whose records read back; else why it must be trained (again).

    ``metrics.json`` is written last, so without it the run did not finish; with it, a copy or a full disk
    may still have cut it or ``model.json`` short.
    """
    if not (folder / METRICS).is_file():
        return UNFINISHED
    try:
        read_result(folder)
    except AudiobenchError:
        return f"{METRICS} unreadable"
    try:
        json.loads((folder / CHECKPOINT_META).read_text())
    except (OSError, ValueError):
        return f"{CHECKPOINT_META} unreadable"
    return None


def _warn_mixed_threads(run_dir: Path, results: Sequence[tuple[int, TrainResult]]) -> None:
    """Say so when a study's trials were trained with different torch thread counts (numbers may differ)."""
    counts: dict[str, int] = {}
    for _, result in results:
        key = "not recorded" if result.threads is None else f"{result.threads} thread(s)"
        counts[key] = counts.get(key, 0) + 1
    if len(counts) > 1:
        mix = ", ".join(f"{n} runs with {k}" for k, n in sorted(counts.items()))
        log.warning("%s mixes trials trained with different torch thread counts (%s): their numbers may differ "
                    "in the third digit; for one setting, train the study again under another --out", run_dir, mix)


def run_trial(task: TrialTask) -> TrialOutcome:
    """One (trial, variant) training run; any failure is returned, not raised, so the others go on."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(task.threads)
    try:
        run(task.config, root=task.root, out=task.out, quiet=True, curve=False)
    except Exception as exc:  # noqa: BLE001 (reported per run; the study goes on)
        message = str(exc) if isinstance(exc, AudiobenchError) else traceback.format_exc(limit=3).strip()
        return TrialOutcome(task.trial, task.variant, error=message.splitlines()[-1] if message else repr(exc))
    finally:
        torch.set_num_threads(before)  # with one job the trial ran in this process
    return TrialOutcome(task.trial, task.variant)


def finished_runs(run_dir: Path) -> list[tuple[int, TrainResult]]:
    """Every finished (trial, result) under ``run_dir/trials``, ordered by trial then folder name."""
    found = []
    for folder in sorted((run_dir / TRIALS_DIR).glob("t*-*")):
        if trial_damage(folder) is None:
            found.append((int(folder.name[1:].split("-", 1)[0]), read_result(folder)))
    return found


def write_tables(run_dir: Path, results: Sequence[tuple[int, TrainResult]]) -> None:
    """``trials.csv``, ``per_class.csv`` and ``epochs.csv``, rebuilt from the run folders (they are the truth)."""
    trials, per_class = [], []
    epochs = [{"trial": trial, "variant": result.config.variant, "epoch": e["epoch"], "loss": e["loss"],
               "val_map": e["val_map"]} for trial, result in results for e in result.epochs]
    for trial, result in results:
        metrics = json.loads(result.metrics.read_text())
        trials.append({"trial": trial, "variant": result.config.variant, "seed": result.config.seed,
                       "val_map": result.val_map, "test_map": result.test_map, "best_epoch": result.best_epoch,
                       "seconds": round(result.seconds, 3), "test_auc": result.test_auc,
                       "test_dprime": result.test_dprime, **{c: metrics.get(c) for c in EVENT_METRIC_COLUMNS.values()},
                       "events_chosen_on": (metrics.get("events") or {}).get("chosen_on")})
        for row in metrics["test_per_class"]:
            if row["ap"] is not None:
                per_class.append({"trial": trial, "variant": result.config.variant, "class_index": row["index"],
                                  "mid": neutral(str(row["mid"])), "name": neutral(str(row["name"])), "ap": row["ap"],
                                  **{k: row.get(k) for k in ("ap_low", "ap_high", "auc")}})
    pd.DataFrame(trials, columns=TRIAL_COLUMNS).to_csv(run_dir / "trials.csv", index=False)
    pd.DataFrame(per_class, columns=["trial", "variant", "class_index", "mid", "name", "ap", "ap_low", "ap_high",
                                     "auc"]).to_csv(run_dir / "per_class.csv", index=False)
    pd.DataFrame(epochs, columns=["trial", "variant", "epoch", "loss", "val_map"]
                 ).to_csv(run_dir / "epochs.csv", index=False)
    write_psd_rocs(run_dir, results)


PSD_ROC_GRID = np.linspace(0.0, 100.0, 101)  # eFPR per hour at which psd_roc.csv samples each trial's PSD-ROC


def write_psd_rocs(run_dir: Path, results: Sequence[tuple[int, TrainResult]]) -> None:
    """``psd_roc.csv``: each trial's PSD-ROC (PSDS1 scenario, segment scores) on an eFPR grid, for the report.

    A PSD-ROC is a step function of eFPR; the TPR at each grid point is that of the last step at or below it.
    Absent when no trial wrote test-events/ (no strong test labels).
    """
    from audiobench.training.events.run import FOLDER

    rows = []
    for trial, result in results:
        path = result.run_dir / FOLDER / "segments" / "psd_roc.json"
        roc = json.loads(path.read_text()).get("psds1") if path.is_file() else None
        if not roc:
            continue
        efpr, tpr = np.asarray(roc["efpr"], dtype=float), np.asarray(roc["tpr"], dtype=float)
        at = np.searchsorted(efpr, PSD_ROC_GRID, side="right") - 1
        rows += [{"trial": trial, "variant": result.config.variant, "efpr": x, "tpr": float(tpr[i]) if i >= 0 else 0.0}
                 for x, i in zip(PSD_ROC_GRID, at)]
    target = run_dir / "psd_roc.csv"
    if rows:
        pd.DataFrame(rows).to_csv(target, index=False)
    else:
        target.unlink(missing_ok=True)


_ANOTHER_OUT = "choose another --out, or remove that folder to start again"
_SAME_EVERY_RUN = ("workers", "log")  # options that change no number (and are not part of the study id)


def _check_same_study(run_dir: Path, config: CompareConfig) -> None:
    """Refuse to resume trials of another study found in ``run_dir``, naming the settings that differ."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    found = read_json_object(path, fix=_ANOTHER_OUT)
    if found.get("study_id") == config.study_id():
        return
    wanted = {"dataset": config.dataset, "variants": list(config.variants), **asdict(config.train)}
    had = {"dataset": found.get("dataset"), "variants": found.get("variants"),
           **(found.get("train") if isinstance(found.get("train"), dict) else {})}
    changed = differing(had, wanted, skip=_SAME_EVERY_RUN)
    if not changed and config.train.eval_on is not None:
        changed = [f"eval_on: the content of {config.train.eval_on} changed"]
    why = "; ".join(changed) or "trained with another training recipe (an earlier audiobench)"
    raise AudiobenchError(f"--out {run_dir}: holds another study ({found.get('study_id')}; this one is "
                          f"{config.study_id()}): {why}. Its trials were trained with other settings: {_ANOTHER_OUT}")


def _write_config(run_dir: Path, config: CompareConfig, root: Path) -> None:
    from audiobench.features.store import feature_file, feature_set

    paths = DatasetPaths(root, config.dataset)
    train_file = feature_file(paths, split_for(paths, "train"), config.train.feature_id)
    with h5py.File(train_file, "r") as f:
        classes = [{"mid": str(m), "name": str(n)} for m, n in zip(f.attrs["class_mids"], f.attrs["class_names"])]
    payload: dict[str, Any] = {
        "dataset": config.dataset, "variants": list(config.variants), "trials": config.trials, "classes": classes,
        "baseline": config.baseline or config.variants[0], "train": asdict(config.train),
        "labels_used": {v: variant_spec(v).labels for v in config.variants}, "study_id": config.study_id(),
        "metric": config.metric, **study_fingerprints(paths, config), "features": feature_set(train_file),
    }
    pair = fig4_pair(config.variants, payload["baseline"])
    if pair is not None:
        payload["fig4"] = {"variant": pair[0], "over": pair[1]}
    write_atomic(run_dir / "config.json", json.dumps(payload, indent=2))


def study_fingerprints(paths: DatasetPaths, config: CompareConfig) -> dict[str, Any]:
    """``fingerprints`` of the splits every trial trains and is scored on, and ``eval_on`` (None without it)."""
    from audiobench.features.store import feature_file

    files = {role: feature_file(paths, split_for(paths, role), config.train.feature_id)
             for role in ("train", "val", "test")}
    found = {role: split_fingerprint(path) for role, path in files.items()}
    subset = None
    if config.train.eval_on is not None:
        subset = eval_subset(config.train.eval_on, files["test"])
        found["test"] = subset.fingerprint
    return {"fingerprints": found, "eval_on": None if subset is None else subset.record()}


def _strong_file(root: Path, config: CompareConfig) -> Path | None:
    """The first of test, val, train whose features carry strong labels (for durations and Fig. 5)."""
    from audiobench.features.store import feature_file

    paths = DatasetPaths(root, config.dataset)
    for role in ("test", "val", "train"):
        path = feature_file(paths, split_for(paths, role), config.train.feature_id)
        with h5py.File(path, "r") as f:
            if bool(f.attrs["has_strong"]):
                return path
    return None


def write_class_durations(run_dir: Path, root: Path, config: CompareConfig) -> None:
    """Mean event duration per class, from the training split's strong labels (Fig. 4's x axis)."""
    from audiobench.features.store import feature_file

    paths = DatasetPaths(root, config.dataset)
    path = feature_file(paths, split_for(paths, "train"), config.train.feature_id)
    with h5py.File(path, "r") as f:
        if not bool(f.attrs["has_strong"]):
            return
        names, mids = list(f.attrs["class_names"]), list(f.attrs["class_mids"])
        events = f["events"]
        frame = pd.DataFrame({"class_index": events["class"][()], "duration": events["offset"][()] - events["onset"][()]})
    frame = frame[frame["duration"] > 0]  # zero-length events: present, not localised
    table = frame.groupby("class_index")["duration"].agg(["mean", "size"]).reset_index()
    table.columns = ["class_index", "mean_duration", "n_events"]
    table.insert(1, "mid", [neutral(str(mids[i])) for i in table["class_index"]])
    table.insert(2, "name", [neutral(str(names[i])) for i in table["class_index"]])
    table.to_csv(run_dir / "class_durations.csv", index=False)


def write_attention_examples(run_dir: Path, root: Path, config: CompareConfig,
                             results: Sequence[tuple[int, TrainResult]]) -> None:
    """Attention matrices of the first clips with events (in split order), from trial 0 of each attention variant.

    The clips are chosen by their labels only, never by what a model does with them: clips picked for their
    attention would show the picking, not the models.
    """
    import torch

    from audiobench.models.checkpoint import load_model
    from audiobench.features.dataset import LogmelDataset

    source = _strong_file(root, config)
    runs = [r for t, r in results if t == 0 and variant_spec(r.config.variant).attention]
    if source is None or not runs or config.examples < 1:
        return
    with h5py.File(source, "r") as f:
        strong = f["strong"][()]
    picks = [int(i) for i in np.flatnonzero(strong.any(axis=(1, 2)))[: config.examples]]
    dataset = LogmelDataset(source, frames=None, in_memory=False)  # a few clips: no need to read them all
    folder = ensure_writable_dir(run_dir / ATTENTION_DIR)
    for result in runs:
        net, _ = load_model(result.run_dir)
        for index in picks:
            item = dataset[index]
            with torch.no_grad():
                output = net(torch.as_tensor(item["logmel"])[None])
            np.savez_compressed(
                folder / f"{dataset.clip_ids[index]}-{result.config.variant}.npz",
                logmel=np.asarray(item["logmel"]), attention=output.attention[0].numpy(),
                segment_probs=output.xa[0].numpy(), strong=np.asarray(item["strong"]),
                clip_id=dataset.clip_ids[index], variant=result.config.variant,
                class_names=np.array([c.name for c in dataset.classes]), frame_seconds=dataset.frame_seconds,
                features=dataset.extractor.name)
