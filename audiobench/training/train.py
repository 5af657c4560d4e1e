"""One training run (docs/model.md): a variant, a seed, the HDF5 feature cache in, a run folder out.

Adam on fixed-length batches (the Dataset pads with silence or crops at random), validation mAP on true
lengths after every epoch, the best epoch's weights kept (optional early stopping), test mAP of those.
The run folder gets ``config.json`` (written first: the options, ``frames`` resolved), ``metrics.json``
(written last: its presence means the run finished), ``model.pt`` + ``model.json``, and
``training-curve.png``; where the test split has strong labels, ``test-events/`` too (the event outputs
and the files the event metrics of ``metrics.json`` come from, :mod:`audiobench.training.events.run`).

Pairing (for ``compare``): with the same ``seed``, every variant sees the same batches in the same order
(the shuffling generator and the Dataset's crops are seeded by ``seed`` only) and starts from the same
weights in the layers it shares with the others (each layer is initialised under its own seed derived from
``seed`` and the layer's name, :func:`audiobench.models.net.init_parameters`).

>>> result = train("synth", variant="att-self", seed=0, epochs=10, width=0.25)   # doctest: +SKIP
>>> result.test_map, result.best_epoch, result.run_dir                            # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from audiobench import __version__
from audiobench.models import transfer
from audiobench.models.checkpoint import save_checkpoint
from audiobench.training.batches import TrainBatches
from audiobench.training.batches import usable as batches_usable
from audiobench.training.compute import compute_record, machine_record
from audiobench.training.curves import plot_training_curve
from audiobench.core.errors import AudiobenchError, InputFormatError
from audiobench.core.folders import RUN, differing, require_own_folder
from audiobench.core.jsonfile import read_json_object
from audiobench.core.roots import feature_records
from audiobench.training.inference import Predictions, predict_dataset
from audiobench.training.localisation import localisation
from audiobench.core.layout import (DatasetPaths, ensure_writable_dir, json_safe, resolve_root, runs_dir,
                                   validate_name, write_atomic)
from audiobench.features.dataset import LogmelDataset
from audiobench.features.store import feature_set, summarize_split
from audiobench.models.losses import loss_terms, segment_labels, total_loss
from audiobench.data.cliplist import EvalSubset, eval_subset
from audiobench.data.fingerprint import split_fingerprint
from audiobench.training.logs import TrainingLog, check_log, open_log
from audiobench.training.metrics import (BOOTSTRAP_CONFIDENCE, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, APResult, Scores,
                                         mean_average_precision, roc_auc, score)
from audiobench.models.net import Net, Output, build_net, init_prior_bias, use_fast_layout
from audiobench.core.progress import progress
from audiobench.training.splits import Splits, open_splits, splits_of, training_frames
from audiobench.models.shape import segments_for
from audiobench.models.variants import VariantSpec, require_strong
from audiobench.training.options import TrainConfig

METRICS = "metrics.json"
RUN_CONFIG = "config.json"  # written when the run starts: a folder with it and no METRICS did not finish
# Bumped whenever the same TrainConfig starts to train other numbers (2: He fan-in init and the prior bias of
# L8-a); part of a study's id, so that compare never pairs trials of two recipes.
TRAINING_RECIPE = 2
CURVE = "training-curve.png"
PREDICTIONS = "test-predictions.npz"  # the best epoch's scores of every test clip (what --eval-on subsets)


@dataclass(frozen=True)
class TrainResult:
    """What a run produced. ``test_per_class`` maps class names to AP (None: no positive in the test split)."""

    run_dir: Path
    config: TrainConfig
    val_map: float
    test_map: float
    best_epoch: int
    epochs: tuple[dict[str, Any], ...]
    test_per_class: dict[str, float | None]
    seconds: float
    threads: int | None = None  # torch CPU threads it trained with (None: not recorded, an older run)
    test_auc: float | None = None  # macro ROC AUC and d′ on the test split (None: not recorded, or undefined)
    test_dprime: float | None = None
    checkpoint: Path = field(init=False)
    metrics: Path = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", self.run_dir / "model.pt")
        object.__setattr__(self, "metrics", self.run_dir / METRICS)


def read_result(run_dir: str | os.PathLike[str]) -> TrainResult:
    """The :class:`TrainResult` of a finished run, from its ``metrics.json`` (how ``compare`` resumes)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise AudiobenchError(f"{run_dir} holds no finished run (no {METRICS})")
    m = read_metrics(Path(run_dir))
    try:
        return TrainResult(Path(run_dir), TrainConfig(**m["config"]), m["val_map"], m["test_map"], m["best_epoch"],
                           tuple(m["epochs"]), {c["name"]: c["ap"] for c in m["test_per_class"]},
                           m["timing"]["total_s"], m.get("threads"), m.get("test_auc"), m.get("test_dprime"))
    except (TypeError, KeyError, AttributeError) as exc:
        raise InputFormatError(f"{path}: not the metrics of a run ({type(exc).__name__}: {exc}); {_RETRAIN}") from None


_RETRAIN = "train the run again (compare retrains such a trial)"
METRICS_KEYS = ("config", "val_map", "test_map", "best_epoch", "epochs", "test_per_class", "timing")


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """A finished run's ``metrics.json``, with the keys every reader needs; else a one-line error."""
    metrics = read_json_object(run_dir / METRICS, required=METRICS_KEYS, fix=_RETRAIN)
    if not isinstance(metrics["config"], dict):
        raise InputFormatError(f"{run_dir / METRICS}: its config is not an object; {_RETRAIN}")
    return metrics


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cuda`` without a GPU is an error, as is any other name."""
    if name not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", name):
        raise AudiobenchError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AudiobenchError("--device cuda: no CUDA GPU is visible to PyTorch (use --device cpu)")
    return torch.device(name)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch and switch torch to deterministic algorithms, restoring the switch after."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS on CUDA
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def _worker_seed(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32  # differs per worker, derived from the loader's generator
    random.seed(seed)
    np.random.seed(seed)


def train_loader(splits: Splits, config: TrainConfig, device: torch.device) -> DataLoader | TrainBatches:
    """Shuffled fixed-length batches of the training split, in an order fixed by ``config.seed``.

    The Dataset builds each batch at once from its indices (the same batches as ``shuffle=True,
    batch_size=B``, drawn from the same generator), which halves the loader's share of a small net's step.
    With ``workers=0`` and the split in memory, :class:`~audiobench.training.batches.TrainBatches` gathers
    the same batches, in the same order, without a DataLoader.
    """
    if config.workers == 0 and batches_usable(splits.train):
        return TrainBatches(splits.train, batch_size=config.batch_size, seed=config.seed,
                            pin=device.type == "cuda")
    generator = torch.Generator().manual_seed(config.seed)
    batches = BatchSampler(RandomSampler(splits.train, generator=generator), config.batch_size, drop_last=False)
    return DataLoader(splits.train, batch_size=None, sampler=batches, generator=generator,
                      num_workers=config.workers, worker_init_fn=_worker_seed, pin_memory=device.type == "cuda")


def train_epoch(net: Net, batches: Iterable[dict[str, torch.Tensor]], spec: VariantSpec,
                optimizer: torch.optim.Optimizer, *, device: torch.device, alpha: float, beta: float,
                bf16: bool = False, step_losses: list[torch.Tensor] | None = None) -> dict[str, float]:
    """One pass of Adam over ``batches``; returns the mean of the total loss and of each term.

    Losses are accumulated on the device and read once at the end (no per-step synchronisation).
    ``step_losses``: each step's total loss is appended to it (detached, still on the device; ``--log``).
    """
    net.train()
    names = ["loss", *(term for term, _ in spec.terms)]  # loss_terms returns the terms in this order
    sums: torch.Tensor | None = None  # the total loss and each term, weighted by clips: one tensor, few ops
    count = 0
    for batch in batches:
        logmel = batch["logmel"].to(device, non_blocking=True)
        weak = batch["weak"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(logmel)
        out = Output(*(None if t is None else t.float() for t in out))  # losses in float32
        segments = None
        if spec.needs_strong:
            segments = segment_labels(batch["strong"].to(device, non_blocking=True), segments_for(logmel.shape[1]))
        values = loss_terms(spec, out, weak, segments)
        loss = total_loss(spec, values, alpha=alpha, beta=beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step_losses is not None:
            step_losses.append(loss.detach())
        step = torch.stack([loss.detach(), *(values[name].detach() for name in names[1:])]) * len(logmel)
        sums = step if sums is None else sums + step
        count += len(logmel)
    if sums is None:
        return {}
    return {name: total / max(count, 1) for name, total in zip(names, sums.tolist())}


def evaluate(net: Net, splits: Splits, split: str, *, device: torch.device, batch_size: int,
             bf16: bool = False) -> tuple[APResult, Predictions]:
    """mAP of ``net`` on a split (and the predictions it comes from), clips at their true lengths."""
    predictions = predict_dataset(net, splits.eval_set(split), device=device, batch_size=batch_size, bf16=bf16)
    return mean_average_precision(predictions.scores, predictions.targets), predictions


def new_run_dir(root: Path, config: TrainConfig) -> Path:
    """``<root>/runs/<run-id>``, ``<run-id>`` = ``train-<dataset>-<variant>-s<seed>-<UTC time>``, never reused."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = runs_dir(root) / f"train-{config.dataset}-{config.variant}-s{config.seed}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    return run_dir


def train(dataset: str | Mapping[str, LogmelDataset], *, variant: str, root: str | os.PathLike[str] | None = None,
          out: str | os.PathLike[str] | None = None, quiet: bool = False, **options: Any) -> TrainResult:
    """Train one variant on ``<root>/<dataset>/features/<feature-id>/{train,val,test}.h5``.

    ``options``: ``seed`` and any field of :class:`audiobench.training.options.TrainOptions` (``epochs``,
    ``lr``, ``width``, ...; their defaults and meaning are there and in ``audiobench train --help``).
    ``seed`` fixes the data order, the crops and the initial weights (same seed + same device: the same
    numbers). ``frames``: the training input length, by default the longest training clip; a shorter one
    crops clips (a one-line notice says so). ``out``: the run folder (default ``<root>/runs/<run-id>``); it
    must not hold a finished run. Returns the :class:`TrainResult`; everything is also in ``<run>/metrics.json``.

    ``dataset`` may also be open datasets, ``{"train": ..., "val": ..., "test": ...}`` of
    :class:`~audiobench.features.dataset.LogmelDataset` (e.g. from :func:`~audiobench.features.dataset.open_split`),
    in place of a name: ``val`` and ``test`` opened with ``frames=None``; a training split opened with
    ``frames=None`` is read as training by name reads it (the numbers are the same), one with a fixed length is
    used as it is. The run is named after the dataset the files were made from; ``feature_id`` is theirs.
    """
    config = TrainConfig(dataset if isinstance(dataset, str) else "", variant, **options)
    config.check()
    if not isinstance(dataset, str):
        splits = splits_of(dataset, frames=config.frames, seed=config.seed)
        summary = summarize_split(splits.files["train"])
        name = validate_name(summary.dataset, what="dataset name", where=str(splits.files["train"]))
        config = replace(config, dataset=name, frames=splits.train.frames, feature_id=summary.feature_id)
        return run(config, root=root, out=out, quiet=quiet, splits=splits)
    paths = DatasetPaths(resolve_root(root), dataset)
    config = replace(config, frames=training_frames(paths, feature_id=config.feature_id, frames=config.frames))
    return run(config, root=root, out=out, quiet=quiet)


def run(config: TrainConfig, *, root: str | os.PathLike[str] | None = None,
        out: str | os.PathLike[str] | None = None, quiet: bool = False, curve: bool = True,
        splits: Splits | None = None) -> TrainResult:
    """:func:`train` with a ready :class:`TrainConfig`.

    ``curve=False`` skips ``training-curve.png`` (``compare`` draws one figure of every trial's curves
    instead of a PNG per run; the numbers are in ``metrics.json`` either way). ``splits``: the open splits
    to train on (``config.frames`` set to their training length) instead of those of ``config.dataset``.
    """
    spec = config.check()
    root_path = resolve_root(root)
    if splits is None:
        paths = DatasetPaths(root_path, config.dataset)
        if config.frames is None:  # train() and compare() resolve it first, and say when clips are cropped
            config = replace(config, frames=training_frames(paths, feature_id=config.feature_id, frames=None))
        splits = open_splits(paths, feature_id=config.feature_id, frames=config.frames, seed=config.seed)
    require_strong(spec, split="train", has_strong=splits.train.has_strong)
    device = resolve_device(config.device)
    subset = eval_subset(config.eval_on, splits.files["test"]) if config.eval_on else None
    check_log(config.log)
    run_dir = Path(out) if out is not None else new_run_dir(root_path, config)
    if (run_dir / METRICS).exists():
        raise AudiobenchError(f"{run_dir} already holds a finished run ({METRICS}); choose another --out")
    check_run_folder(run_dir, config)
    ensure_writable_dir(run_dir)
    write_atomic(run_dir / RUN_CONFIG, json.dumps({"kind": "run", "config": asdict(config),
                                                   "features": feature_set(splits.files["train"])}, indent=2))

    started = time.perf_counter()
    with seeded(config.seed):
        machine = machine_record(device)  # under the run's deterministic settings
        net = build_net(len(splits.classes), width=config.width, attention=spec.attention, seed=config.seed,
                        bands=splits.train.dims)
        init_prior_bias(net, torch.from_numpy(splits.train.weak.mean(axis=0)))
        transfer.apply_init(net, config.init, root=root_path)
        use_fast_layout(net.to(device), device)
        optimizer = torch.optim.Adam(transfer.freeze(net, config.freeze), lr=config.lr)
        loader = train_loader(splits, config, device)
        history: list[dict[str, Any]] = []
        best: tuple[APResult, int, dict[str, torch.Tensor], Predictions] | None = None
        log = open_log(config.log, run_dir)
        steps = 0
        try:
            for epoch in progress(range(1, config.epochs + 1), total=config.epochs, quiet=quiet, unit="epoch",
                                  desc=f"{config.variant} seed {config.seed}"):
                tick = time.perf_counter()
                splits.train.set_epoch(epoch)  # crops drawn from (seed, epoch, clip): paired across variants
                step_losses: list[torch.Tensor] | None = [] if log is not None else None
                losses = train_epoch(net, loader, spec, optimizer, device=device, alpha=config.alpha,
                                     beta=config.beta, bf16=config.bf16, step_losses=step_losses)
                trained = time.perf_counter()
                val, val_predictions = evaluate(net, splits, "val", device=device, batch_size=config.batch_size,
                                                bf16=config.bf16)
                history.append({"epoch": epoch, "loss": losses.pop("loss"), "terms": losses, "val_map": val.map,
                                "train_s": trained - tick, "val_s": time.perf_counter() - trained})
                if log is not None and step_losses is not None:
                    steps = _log_epoch(log, history[-1], step_losses, steps, val_predictions)
                if best is None or val.map > best[0].map:  # ties keep the earlier epoch
                    best = (val, epoch, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
                            val_predictions)
                if config.patience is not None and epoch - best[1] >= config.patience:
                    break
        finally:
            if log is not None:
                log.close()
        assert best is not None  # epochs >= 1
        _, best_epoch, weights, val_predictions = best
        net.load_state_dict(weights)
        test_predictions = predict_dataset(net, splits.test, device=device, batch_size=config.batch_size,
                                           bf16=config.bf16)
        events = _test_events(net, splits, run_dir, config, device, subset)
    seconds = time.perf_counter() - started
    scored = test_predictions if subset is None else test_predictions.rows(subset.rows)
    val_scores = score(val_predictions.scores, val_predictions.targets, resamples=0)  # no interval needed
    return _write_run(run_dir, config, splits, net, history, best_epoch, val_scores,
                      score(scored.scores, scored.targets), test_predictions, subset, seconds, device, curve,
                      machine, events)


def _test_events(net: Net, splits: Splits, run_dir: Path, config: TrainConfig, device: torch.device,
                 subset: EvalSubset | None) -> dict[str, Any]:
    """``test-events/`` and the event metrics of a test split with strong labels, else {} (docs/compare.md)."""
    if not splits.test.has_strong:
        return {}
    from audiobench.training.events.run import run_events  # sed_eval and sed_scores_eval take seconds to import

    return run_events(net, splits, run_dir, device=device, batch_size=config.batch_size, bf16=config.bf16,
                      rows=None if subset is None else subset.rows)


_CHANGE_NO_NUMBER = ("workers", "log")  # options a rerun may change: the run's numbers stay the same


def check_finished_run(run_dir: Path, config: TrainConfig) -> None:
    """Refuse to count the finished run in ``run_dir`` as ``config``'s when its settings differ (``frames``
    left unset matches the number the run resolved it to)."""
    found = read_metrics(run_dir)["config"]
    skip = _CHANGE_NO_NUMBER + (("frames",) if config.frames is None else ())
    changed = differing(_same_init(found), _same_init(asdict(config)), skip=skip)
    if changed:
        raise AudiobenchError(f"{run_dir}: holds a finished run of other settings ({'; '.join(changed)}); "
                              "choose another out, or remove that folder to train again")


def _same_init(config: dict[str, Any]) -> dict[str, Any]:
    """``init`` by its kind and the last two parts of its path: a pipeline's ``{root}/runs/a`` stays the same
    setting when the root moves."""
    init = config.get("init")
    if not isinstance(init, str):
        return config
    kind, _, path = init.partition(":")
    return {**config, "init": f"{kind}:{'/'.join(Path(path).parts[-2:])}"}


def check_run_folder(run_dir: Path, config: TrainConfig) -> None:
    """Refuse a run folder that holds anything but an unfinished run of the same settings (trained again)."""
    fix = "choose another --out"
    if not require_own_folder(run_dir, RUN, option="--out", fix=fix):
        return
    found = read_json_object(run_dir / RUN_CONFIG, required=("config",), fix=fix)["config"]
    changed = differing(_same_init(found if isinstance(found, dict) else {}), _same_init(asdict(config)),
                        skip=_CHANGE_NO_NUMBER)
    if changed:
        raise AudiobenchError(f"--out {run_dir}: holds an unfinished run of other settings ({'; '.join(changed)}); "
                              f"train it with its own settings, or {fix}")


def _log_epoch(log: TrainingLog, record: dict[str, Any], step_losses: list[torch.Tensor], steps: int,
               val: Predictions) -> int:
    """Write one epoch to the ``--log`` log; returns the steps taken so far."""
    losses = torch.stack(step_losses).float().cpu().tolist() if step_losses else []
    log.steps(steps + 1, record["epoch"], losses)
    values = {"loss": record["loss"], **record["terms"], "val_map": record["val_map"]}
    try:
        values["val_auc"] = roc_auc(val.scores, val.targets).auc
    except AudiobenchError:
        pass  # no class with both outcomes in the validation split: no AUC to log
    log.epoch(record["epoch"], values)
    return steps + len(losses)


def _per_class(splits: Splits, result: Scores) -> list[dict[str, Any]]:
    return [{"index": c, "mid": info.mid, "name": info.name, **values}
            for c, (info, values) in enumerate(zip(splits.classes, result.per_class()))]


def _fingerprints(splits: Splits, subset: EvalSubset | None) -> dict[str, str]:
    """The fingerprint of each split as trained and scored on (the test split's: of the clips scored)."""
    found = {split: split_fingerprint(path) for split, path in splits.files.items() if split != "test"}
    found["test"] = split_fingerprint(splits.files["test"]) if subset is None else subset.fingerprint
    return found


def _write_run(run_dir: Path, config: TrainConfig, splits: Splits, net: Net, history: list[dict[str, Any]],
               best_epoch: int, val: Scores, test: Scores, test_predictions: Predictions,
               subset: EvalSubset | None, seconds: float, device: torch.device, curve: bool,
               machine: dict[str, Any], events: dict[str, Any] | None = None) -> TrainResult:
    """Checkpoint, curve, predictions, then ``metrics.json`` last (atomically): a run without it did not finish."""
    features = summarize_split(splits.files["train"])  # how to compute the net's input again (predict)
    meta = {"config": asdict(config), "class_names": [c.name for c in splits.classes],
            "class_mids": [c.mid for c in splits.classes], "version": __version__,
            "features": {"feature_id": features.feature_id, "dtype": features.dtype},
            "extractor": {"name": splits.train.extractor.name, "params": asdict(splits.train.extractor.params)}}
    writing = time.perf_counter()
    save_checkpoint(run_dir, net, meta)
    test_predictions.save(run_dir / PREDICTIONS, splits.test.clip_ids)
    if curve:
        plot_training_curve(history, best_epoch, run_dir / CURVE,
                            title=f"{config.dataset} {config.variant} seed {config.seed}")
    write_s = time.perf_counter() - writing
    train_clips = len(splits.train) * len(history)
    metrics = {
        "version": __version__, "recipe": TRAINING_RECIPE, "torch": torch.__version__, "device": str(device),
        "threads": torch.get_num_threads(),  # CPU threads change the numbers in the last digits
        "config": asdict(config), **feature_records(splits.files, run_dir),  # relative: the root moves with them
        "clips": {"train": len(splits.train), "val": len(splits.val),
                  "test": len(splits.test) if subset is None else len(subset.rows)},
        "val_map": val.ap.map, "test_map": test.ap.map, "best_epoch": best_epoch, "epochs_run": len(history),
        "stopped_early": len(history) < config.epochs,
        "chance_test_map": test.chance,
        **test.summary("test"), **{k: v for k, v in val.summary("val").items() if k != "val_map"},
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "confidence": BOOTSTRAP_CONFIDENCE, "seed": BOOTSTRAP_SEED,
                      "method": "percentile", "over": "test clips"},
        "fingerprints": _fingerprints(splits, subset),
        "eval_on": None if subset is None else subset.record(),
        "localisation": localisation(net, splits, device=device, batch_size=config.batch_size, bf16=config.bf16),
        "val_per_class": _per_class(splits, val), "test_per_class": _per_class(splits, test),
        "test_skipped": [splits.classes[c].name for c in test.ap.skipped],
        "epochs": history,
        **(events or {}),  # test_psds1, test_segment_f1, ... and the "events" block (test-events/)
        "timing": {"total_s": seconds, "train_s": sum(e["train_s"] for e in history),
                   "val_s": sum(e["val_s"] for e in history),
                   "train_clips_per_s": train_clips / max(sum(e["train_s"] for e in history), 1e-9),
                   "write_s": write_s},
        "compute": compute_record(net, machine, device=device, frames=splits.train.frames, bands=splits.train.dims,
                                  wall_s=seconds, train_s=sum(e["train_s"] for e in history), train_clips=train_clips),
    }
    write_atomic(run_dir / METRICS, json.dumps(json_safe(metrics), indent=2))
    return TrainResult(run_dir, config, val.ap.map, test.ap.map, best_epoch, tuple(history),
                       {c.name: ap for c, ap in zip(splits.classes, test.ap.per_class)}, seconds,
                       torch.get_num_threads(), metrics["test_auc"], metrics["test_dprime"])
