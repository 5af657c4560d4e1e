"""Training logs in the formats people already read (``train --log csv|tensorboard``), besides metrics.json.

``csv``: ``<run>/logs/steps.csv`` (``step, epoch, loss``: every optimizer step) and ``<run>/logs/epochs.csv``
(``epoch``, the mean loss and each loss term, ``val_map``, ``val_auc``). ``tensorboard``: the same scalars
as TensorBoard events in ``<run>/logs/`` (``train/loss`` per step; ``epoch/<name>`` per epoch), written by
``torch.utils.tensorboard.SummaryWriter`` (the ``tensorboard`` extra: ``pip install 'audiobench[tensorboard]'``);
``tensorboard --logdir <run>/logs`` shows them. Both are written as the run goes, so a running or killed run
can be read.
"""
from __future__ import annotations

import csv
import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

from audiobench.core.errors import AudiobenchError

LOG_DIR = "logs"


class TrainingLog(Protocol):
    def steps(self, first: int, epoch: int, losses: Sequence[float]) -> None: ...
    def epoch(self, epoch: int, values: Mapping[str, float]) -> None: ...
    def close(self) -> None: ...


class CsvLog:
    """``steps.csv`` and ``epochs.csv``, flushed after every epoch."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._steps_file: IO[str] = open(folder / "steps.csv", "w", newline="")
        self._steps = csv.writer(self._steps_file)
        self._steps.writerow(["step", "epoch", "loss"])
        self._epochs_file: IO[str] = open(folder / "epochs.csv", "w", newline="")
        self._epochs: csv.DictWriter | None = None

    def steps(self, first: int, epoch: int, losses: Sequence[float]) -> None:
        self._steps.writerows([first + i, epoch, loss] for i, loss in enumerate(losses))
        self._steps_file.flush()

    def epoch(self, epoch: int, values: Mapping[str, float]) -> None:
        row = {"epoch": epoch, **values}
        if self._epochs is None:
            self._epochs = csv.DictWriter(self._epochs_file, fieldnames=list(row))
            self._epochs.writeheader()
        self._epochs.writerow(row)
        self._epochs_file.flush()

    def close(self) -> None:
        self._steps_file.close()
        self._epochs_file.close()


def check_log(kind: str | None) -> None:
    """Refuse ``--log tensorboard`` without the tensorboard package, before a run folder is made."""
    if kind == "tensorboard" and importlib.util.find_spec("tensorboard") is None:  # torch's writer needs it
        raise AudiobenchError("--log tensorboard needs the tensorboard package: "
                              "pip install 'audiobench[tensorboard]' (or use --log csv)")


class TensorboardLog:
    """TensorBoard event files through torch's ``SummaryWriter``."""

    def __init__(self, folder: Path) -> None:
        check_log("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(folder))

    def steps(self, first: int, epoch: int, losses: Sequence[float]) -> None:
        for i, loss in enumerate(losses):
            self._writer.add_scalar("train/loss", loss, first + i)

    def epoch(self, epoch: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self._writer.add_scalar(f"epoch/{name}", value, epoch)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def open_log(kind: str | None, run_dir: Path) -> TrainingLog | None:
    """The log ``--log`` asked for, in ``<run>/logs/``; None without ``--log``."""
    if kind is None:
        return None
    return (TensorboardLog if kind == "tensorboard" else CsvLog)(run_dir / LOG_DIR)
