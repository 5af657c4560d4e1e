"""The training options, defined once: each field's type, default, bounds and help text.

``audiobench train`` and ``compare`` generate their options from these fields (``audiobench.cli.train_options``),
pipelines check their ``[[train]]`` and ``[[compare]]`` keys against them, and :meth:`TrainOptions.check`
applies the same bounds to a config built in Python. Plain data, without torch (the command line reads it at
start-up).

:class:`TrainOptions` is what every run of a study shares; :class:`TrainConfig` adds what tells one run from
another (dataset, variant, seed) and is what a run folder records, in this field order:

>>> TrainConfig("synth", "att-self", seed=3, epochs=10).options() == TrainOptions(epochs=10)
True
"""
from __future__ import annotations

import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from audiobench.core.errors import AudiobenchError
from audiobench.models.shape import CONV_LAYERS, SEGMENT_FRAMES
from audiobench.models.variants import VariantSpec, variant_spec

# The metrics ``compare --metric`` can test, each by the per-trial column it reads (trials.csv, metrics.json).
CLIP_METRIC_COLUMNS: dict[str, str] = {"map": "test_map", "auc": "test_auc", "dprime": "test_dprime"}
# Event-level metrics, recorded by runs whose test split has strong labels (test-events/, docs/compare.md).
EVENT_METRIC_COLUMNS: dict[str, str] = {"psds1": "test_psds1", "psds2": "test_psds2", "segment_f1": "test_segment_f1",
                                        "segment_er": "test_segment_er", "event_f1": "test_event_f1"}
METRIC_COLUMNS: dict[str, str] = {**CLIP_METRIC_COLUMNS, **EVENT_METRIC_COLUMNS}
LOWER_IS_BETTER = frozenset({"segment_er"})  # an error rate: the better variant scores lower
DEFAULT_METRIC = "map"
LOG_FORMATS = ("tensorboard", "csv")  # ``--log``: the training logs a run can write besides metrics.json


def option(default: Any = MISSING, help: str = "", *, minimum: float | None = None, maximum: float | None = None,
           positive: bool = False, why: str = "", metavar: str | None = None,
           choices: tuple[str, ...] | None = None) -> Any:
    """A field whose metadata the command line, the pipeline checks and :meth:`TrainOptions.check` read.

    ``minimum``/``maximum``: inclusive bounds; ``positive``: above 0; ``why``: said after a bound's error;
    ``choices``: the values a text option takes.
    """
    meta = {"help": help, "minimum": minimum, "maximum": maximum, "positive": positive, "why": why,
            "metavar": metavar, "choices": choices}
    return field(metadata=meta) if default is MISSING else field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """The training options every run of a study shares (keyword-only)."""

    epochs: int = option(50, "Training epochs (the best validation epoch is kept).", minimum=1)
    lr: float = option(1e-4, "Adam learning rate (the paper: 1e-4 on SL-DCASE-17, 1e-3 on AudioSet).", positive=True)
    batch_size: int = option(32, "Clips per training batch.", minimum=1)
    alpha: float = option(1.0, "Weight α of the attention loss.")
    beta: float = option(1.0, "Weight β of the self-supervised loss in att-strong-self.")
    width: float = option(1.0, "Width multiplier on every channel count (1 = the paper's network).", positive=True)
    frames: int | None = option(
        None, "Training input length in frames [default: the longest training clip]; shorter clips are padded "
              "with silence, longer ones cropped at random.", minimum=SEGMENT_FRAMES, why="one segment")
    init: str | None = option(None, "Start L1–L6 from VGGish weights, or L1–L7 from an earlier run.",
                              metavar="vggish:PATH|run:PATH")
    freeze: int = option(0, "Keep the first K conv layers (of L1–L7) fixed.", minimum=0, maximum=len(CONV_LAYERS))
    device: str = option("auto", "Where to train: auto (CUDA when available), cpu, cuda or cuda:N.",
                         metavar="auto|cpu|cuda")
    bf16: bool = option(False, "bfloat16 autocast for the network (losses stay float32).")
    patience: int | None = option(None, "Stop after N epochs without a better validation mAP.", minimum=1)
    feature_id: str | None = option(None, "Which feature set under features/ [default: the only one there; "
                                          "with several, name one].")
    workers: int = option(0, "DataLoader worker processes for the training split.", minimum=0)
    eval_on: str | None = option(
        None, "Score the test split only on the clips listed in this CSV (a `status --export` list, or any CSV "
              "with a clip_id, ytid, youtube_id or source_id column) that the dataset holds.", metavar="CLIPS.csv")
    log: str | None = option(None, "Also log per-step loss and per-epoch metrics: CSV files, or TensorBoard "
                                   "events (needs the tensorboard extra).", choices=LOG_FORMATS)

    def check(self) -> None:
        """Validate the options once, at the boundary: each field's bounds, and the device's name."""
        for f in fields(TrainOptions):
            problem = bound_problem(f, getattr(self, f.name))
            if problem:
                raise AudiobenchError(f"--{f.name.replace('_', '-')} {problem}")
        if self.log is not None and self.log not in LOG_FORMATS:
            raise AudiobenchError(f"--log must be {' or '.join(LOG_FORMATS)}, got {self.log!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise AudiobenchError(f"--device must be auto, cpu or cuda, got {self.device!r}")

    def options(self) -> TrainOptions:
        """Only the shared options (of a :class:`TrainConfig`: without its dataset, variant and seed)."""
        return TrainOptions(**{f.name: getattr(self, f.name) for f in fields(TrainOptions)})


@dataclass(frozen=True)
class _RunFields:
    """What tells one run from another; first in a :class:`TrainConfig` (and in its records)."""

    dataset: str
    variant: str = option(help="Pooling and loss terms: see the variants table in docs/model.md.")
    seed: int = option(0, "Fixes data order, crops and initial weights; trial k of a comparison uses seed k.")


@dataclass(frozen=True)
class TrainConfig(TrainOptions, _RunFields):
    """Everything that defines a run: ``TrainConfig(dataset, variant, seed=0, **options)``.

    Stored in full (``dataclasses.asdict``: dataset, variant, seed, then the options) in ``config.json``,
    ``metrics.json`` and ``model.json``.
    """

    def check(self) -> VariantSpec:  # type: ignore[override]
        """Validate the options and the variant once, at the boundary; returns the variant's spec."""
        spec = variant_spec(self.variant)
        super().check()
        return spec


def bound_problem(f: Any, value: Any) -> str:
    """What is wrong with ``value`` under field ``f``'s bounds (``"must be at least 1, got 0"``), or ``""``."""
    meta = f.metadata
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    why = f" ({meta['why']})" if meta.get("why") else ""
    low, high = meta.get("minimum"), meta.get("maximum")
    if meta.get("positive") and not value > 0:
        return f"must be positive{why}, got {value}"
    if low is not None and high is not None and not low <= value <= high:
        return f"must be between {low} and {high}{why}, got {value}"
    if low is not None and value < low:
        return f"must be at least {low}{why}, got {value}"
    if high is not None and value > high:
        return f"must be at most {high}{why}, got {value}"
    return ""


def option_fields(cls: type) -> list[tuple[Any, Any]]:
    """``(field, type)`` of each option of ``cls`` (:class:`TrainOptions` or :class:`TrainConfig`), in order,
    without ``dataset`` (a command's argument, a pipeline's top-level key)."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in fields(cls) if f.name != "dataset"]

