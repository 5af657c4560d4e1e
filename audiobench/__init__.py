"""audiobench: reproducible weakly labelled audio event classification.

Stages (each a plain function, each with a thin CLI command on top):
synth/fetch -> resample -> featurize -> train / compare -> report, and predict with a trained run.

The public API is flat and lazy (docs/api.md): ``from audiobench import train`` imports torch only then, so
``import audiobench`` and ``audiobench --help`` stay fast.

>>> import audiobench
>>> "predict" in dir(audiobench)
True
"""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("audiobench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from audiobench.core.errors import AudiobenchError

# Public name -> "module:attribute", imported on first access (PEP 562), as librosa does with lazy_loader.
_LAZY = {
    "open_split": "audiobench.features.dataset:open_split",
    "LogmelDataset": "audiobench.features.dataset:LogmelDataset",
    "logmel": "audiobench.features.vggish:logmel",
    "TrainConfig": "audiobench.training.train:TrainConfig",
    "TrainResult": "audiobench.training.train:TrainResult",
    "train": "audiobench.training.train:train",
    "CompareConfig": "audiobench.study.compare:CompareConfig",
    "compare": "audiobench.study.compare:compare",
    "render_report": "audiobench.study.report:render_report",
    "Prediction": "audiobench.training.predict:Prediction",
    "predict": "audiobench.training.predict:predict",
    "extractors": "audiobench.features.base:extractors",
    "get_extractor": "audiobench.features.base:get_extractor",
    "register_extractor": "audiobench.features.base:register_extractor",
}

__all__ = ["AudiobenchError", "__version__", *_LAZY]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on first use
    from audiobench.features.base import extractors, get_extractor, register_extractor
    from audiobench.features.dataset import LogmelDataset, open_split
    from audiobench.features.vggish import logmel
    from audiobench.study.compare import CompareConfig, compare
    from audiobench.study.report import render_report
    from audiobench.training.predict import Prediction, predict
    from audiobench.training.train import TrainConfig, TrainResult, train


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'audiobench' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
