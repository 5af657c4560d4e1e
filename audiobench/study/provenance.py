"""What a study was measured on and how it was trained: the facts of ``report.md``'s header.

Read from the runs' own ``trials/*/metrics.json`` (each holds its clip counts, the chance level of its test
split and, when recorded, the fingerprint of every split) and ``config.json`` (the shared training options).
Runs of one study share their splits, so the facts of the first readable run stand for all; fingerprints
that differ between runs are listed, not hidden. Older studies lack some keys: those facts are left out.

>>> header_lines({"dataset": "synth", "classes": 6, "chance": 0.2583, "clips": {"train": 200, "test": 120},
...               "train": {"epochs": 10, "lr": 0.001}, "version": "0.1.0"})[:2]
['- dataset: `synth`, 6 classes', '- clips per split: train 200, test 120']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audiobench import __version__

TRIALS_DIR = "trials"  # as audiobench.study.compare writes it (not imported: the report needs no torch)
METRICS = "metrics.json"
SETTINGS = ("epochs", "lr", "batch_size", "width", "frames", "init", "freeze", "alpha", "beta", "patience")
_SETTING_NAMES = {"batch_size": "batch", "alpha": "α", "beta": "β"}


def study_facts(run_dir: Path, config: dict[str, Any], fingerprints: dict[str, str] | None = None) -> dict[str, Any]:
    """Dataset, classes, clips per split, chance level, fingerprints, feature set, training settings, version.

    ``fingerprints`` (``results.json``'s, when the study recorded them) wins over those of the runs.
    """
    runs = _run_metrics(run_dir)
    chances = [m["chance_test_map"] for m in runs if isinstance(m.get("chance_test_map"), (int, float))]
    clips = next((m["clips"] for m in runs if isinstance(m.get("clips"), dict)), None)
    found: dict[str, set[str]] = {}
    for m in runs:
        for split, value in (m.get("fingerprints") or {}).items():
            found.setdefault(str(split), set()).add(str(value))
    prints: dict[str, Any] = dict(fingerprints or {}) or {s: sorted(v)[0] if len(v) == 1 else sorted(v)
                                                          for s, v in found.items()}
    train = config.get("train") or {}
    versions = sorted({str(m["version"]) for m in runs if m.get("version")})
    features = config.get("features") if isinstance(config.get("features"), dict) else _run_features(run_dir)
    return {
        "dataset": config.get("dataset", ""),
        "classes": len(config["classes"]) if isinstance(config.get("classes"), list) else None,
        "clips": clips,
        "chance": sum(chances) / len(chances) if chances else None,
        "fingerprints": prints or None,
        "features": features,
        "train": {k: train[k] for k in SETTINGS if k in train},
        "version": __version__,
        "trained_with": versions,
    }


def header_lines(facts: dict[str, Any]) -> list[str]:
    """The header's bullet lines; a fact the study did not record is left out."""
    classes = facts.get("classes")
    lines = [f"- dataset: `{facts.get('dataset') or 'unnamed'}`" + (f", {classes} classes" if classes else "")]
    if facts.get("clips"):
        lines.append("- clips per split: " + ", ".join(f"{s} {n}" for s, n in facts["clips"].items()))
    if facts.get("eval_on"):  # the clip list the test was restricted to (a path, or what compare recorded of it)
        shown = facts["eval_on"]
        if isinstance(shown, dict):
            shown = ", ".join(f"{k} {v}" for k, v in shown.items())
        lines.append(f"- test restricted to the clips of: {shown}")
    if facts.get("chance") is not None:
        lines.append(f"- chance level (test mAP of a constant predictor, the mean class prior): "
                     f"{facts['chance']:.3f}")
    for split, value in (facts.get("fingerprints") or {}).items():
        shown = ", ".join(f"`{v}`" for v in value) + " (differ between runs)" if isinstance(value, list) \
            else f"`{value}`"
        lines.append(f"- fingerprint of {split}: {shown}")
    features = facts.get("features")
    if isinstance(features, dict) and features.get("id"):
        params = ", ".join(f"{k} {_setting(v)}" for k, v in (features.get("params") or {}).items())
        lines.append(f"- features: `{features['id']}` ({features.get('extractor') or 'unnamed extractor'}, "
                     f"{features.get('dtype') or 'float32'}" + (f"; {params}" if params else "") + ")")
    if facts.get("train"):
        lines.append("- training: " + ", ".join(f"{_SETTING_NAMES.get(k, k)} {_setting(v)}"
                                                for k, v in facts["train"].items()))
    trained = [v for v in facts.get("trained_with") or [] if v != facts.get("version")]
    lines.append(f"- audiobench {facts.get('version')}" + (f" (runs trained with {', '.join(trained)})"
                                                           if trained else ""))
    return lines


def _setting(value: Any) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _run_features(run_dir: Path) -> dict[str, Any] | None:
    """The feature set the first run that recorded one trained on (its ``config.json``'s ``features``): a study
    folder written before studies recorded it. None when no run did (older runs)."""
    for path in sorted((run_dir / TRIALS_DIR).glob("*/config.json")):
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(value, dict) and isinstance(value.get("features"), dict):
            return value["features"]
    return None


def _run_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every readable ``metrics.json`` under ``trials/``, in folder order (an unreadable one is passed over:
    the trial runner retrains it, and the tables come from ``trials.csv``)."""
    found = []
    for path in sorted((run_dir / TRIALS_DIR).glob(f"*/{METRICS}")):
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(value, dict):
            found.append(value)
    return found
