"""Which split of a dataset each stage of training uses: ``train``, ``val`` (model selection) and ``test``.

A dataset's splits may have any names (``fold1`` .. ``fold5``, ``dev``, ``eval``). A manifest's
``[splits.<name>]`` table may say ``role = "train"`` (or ``"val"``, ``"test"``); a role no split declares is
played by the split of that name (:func:`audiobench.data.manifests.assign_roles`). Registering a dataset
records the result in its ledger (meta ``roles``), which this module reads; datasets made without a manifest
(``audiobench synth``, or by release 0.1) name their splits after the roles.
"""
from __future__ import annotations

import re

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import DatasetPaths, known_datasets
from audiobench.data.ledger import Ledger
from audiobench.data.manifests import ROLES


def split_roles(paths: DatasetPaths) -> dict[str, str]:
    """Role -> the dataset's split that plays it: as its ledger recorded at registration, else (no roles
    recorded, or no ledger: feature files alone) the split named after each role."""
    if paths.ledger.is_file():
        with Ledger(paths.ledger) as ledger:
            recorded = ledger.meta().get("roles")
        if isinstance(recorded, dict):
            return {role: str(recorded[role]) for role in ROLES if role in recorded}
    return {role: role for role in ROLES}


def fold_rotations(paths: DatasetPaths) -> list[str]:
    """The datasets ``<name>-fold<k>`` that ``import --folds`` made beside ``paths``'s dataset, in fold order."""
    pattern = re.compile(re.escape(paths.name) + r"-fold([0-9]+)")
    found = [(int(m.group(1)), name) for name in known_datasets(paths.root) if (m := pattern.fullmatch(name))]
    return [name for _, name in sorted(found)]


def split_for(paths: DatasetPaths, role: str) -> str:
    """The name of the split that plays ``role`` in ``paths``'s dataset, or an error saying how to name one."""
    try:
        return split_roles(paths)[role]
    except KeyError:
        rotations = fold_rotations(paths)
        if rotations:
            raise AudiobenchError(
                f"dataset {paths.name!r} holds folds, not a {role} split: train on one of its rotations (fold k "
                f"tests, the next validates, the others train): {', '.join(rotations)}; e.g. `audiobench resample "
                f"{rotations[0]} && audiobench featurize {rotations[0]} && audiobench train {rotations[0]} "
                "--variant att-self`") from None
        raise AudiobenchError(
            f"dataset {paths.name!r} has no {role} split: give one [splits.*] table of its manifest "
            f'`role = "{role}"`, then register it again (`audiobench fetch {paths.name} --limit 0`)') from None
