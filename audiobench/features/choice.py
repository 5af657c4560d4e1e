"""Which feature set of a dataset a stage reads, when the command does not say (``--feature-id``).

A dataset featurized once (with any extractor: ``vggish-logmel``, ``kaldi-fbank-128``, ...) has one feature
set, and every stage that reads features (train, compare, evaluate, pipelines) uses it. With several, the
choice is the user's: the error lists them. Picking VGGish's silently would train a Kaldi-only dataset on
features that are not there, or a dataset with both on the ones the user did not mean.
"""
from __future__ import annotations

from pathlib import Path

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, known_datasets, validate_name
from audiobench.core.names import unknown_name


def feature_sets_present(paths: DatasetPaths) -> list[str]:
    """The feature ids under ``features/`` that hold at least one split file (a folder holding only the
    shards of an interrupted featurize is not a feature set yet)."""
    if not paths.features.is_dir():
        return []
    return sorted(p.name for p in paths.features.iterdir() if p.is_dir() and any(p.glob("*.h5")))


def choose_feature_set(paths: DatasetPaths, feature_id: str | None) -> str:
    """``feature_id`` when the dataset has it; else (``None``) the dataset's only feature set.

    Errors: an unknown dataset (with the closest name), a feature id the dataset lacks (with the closest
    one), no feature set (run featurize) or several (choose one with ``--feature-id``).
    """
    if feature_id is not None:
        validate_name(feature_id, what="feature id")  # before any path is made of it
    if not paths.dir.is_dir():
        raise unknown_name("dataset", paths.name, _datasets(paths.root), under=paths.root,
                           then=f"make it with `audiobench synth --name {paths.name}`, "
                                f"`audiobench fetch {paths.name}` or `audiobench import {paths.name} DIR`")
    present = feature_sets_present(paths)
    if feature_id is not None:
        validate_name(feature_id, what="feature id")
        if feature_id in present:
            return feature_id
        raise unknown_name("feature set", feature_id, present, under=paths.features,
                           then=f"compute one with `audiobench featurize {paths.name}`")
    if len(present) == 1:
        return present[0]
    if not present:
        raise AudiobenchError(f"dataset {paths.name!r} has no features yet (nothing under {paths.features}); "
                              f"run `audiobench featurize {paths.name}`")
    raise AudiobenchError(f"dataset {paths.name!r} has {len(present)} feature sets ({', '.join(present)}); "
                          "choose one with --feature-id (`feature_id` in a pipeline)")


def _datasets(root: Path) -> list[str]:
    """Datasets by ledger, and folders of features alone (copied feature files train without a ledger)."""
    featured = [p.parent.name for p in root.glob("*/features") if p.is_dir()] if root.is_dir() else []
    return sorted({*known_datasets(root), *featured})
