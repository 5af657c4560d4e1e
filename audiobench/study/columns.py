"""Several studies as one table, a column per study: ``audiobench report A B --columns one-step,two-step``.

The paper's Table I is two studies of the same six variants (one-step and two-step transfer). Here each
study keeps its own folder and report; this table puts their test mAPs side by side, the paper's values
beside each column when a study reproduces a published table (:mod:`audiobench.study.paper`), and tests
each later column's gain over the first per variant, as the paper does: trial ``k`` of both studies trains
with seed ``k``, so the per-trial mAPs of one variant are paired by seed, and the two-sided Wilcoxon
signed-rank test of :func:`audiobench.study.stats.paired_test` runs on those pairs, Holm-corrected across
the variants of one column. The files, ``columns-<a>-<b>.{md,json,csv,tex}``, go into ``out`` (default: the
first study's folder).

>>> render_columns([Path("runs/one-step"), Path("runs/two-step")], ["one-step", "two-step"])  # doctest: +SKIP
PosixPath('runs/one-step/columns-one-step-two-step.md')
"""
from __future__ import annotations

import json
from dataclasses import asdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import ensure_writable_dir, validate_name, write_atomic
from audiobench.core.roots import record_path
from audiobench.study import exports, findings, paper, stats
from audiobench.study.provenance import study_facts
from audiobench.core.layout import json_safe
from audiobench.study.report import fmt_mean_std, fmt_p, read_run


def render_columns(run_dirs: Sequence[Path], columns: Sequence[str], *, out: Path | None = None,
                   seed: int = stats.SEED) -> Path:
    """Write the multi-study table (Markdown, JSON, CSV, LaTeX) and return the Markdown file's path."""
    if len(run_dirs) < 2:
        raise AudiobenchError("a table of columns needs at least two studies")
    if len(columns) != len(run_dirs):
        raise AudiobenchError(f"--columns names {len(columns)} column(s) for {len(run_dirs)} studies: "
                              "give one name per study, in the same order")
    for name in columns:
        validate_name(name, what="column name")
    if len(set(columns)) != len(columns):
        raise AudiobenchError(f"--columns names a column twice: {','.join(columns)}")
    runs = [read_run(Path(d)) for d in run_dirs]
    results = summarise_columns(runs, list(columns), seed=seed)
    folder = ensure_writable_dir(Path(out) if out is not None else runs[0].dir)
    stem = folder / ("columns-" + "-".join(columns))
    header, rows, align = column_cells(results)
    results["exports"] = exports.write_table(column_frame(results), header, rows, align, stem)
    results = json_safe(results)
    write_atomic(stem.with_suffix(".json"), json.dumps(results, indent=2) + "\n")
    path = stem.with_suffix(".md")
    write_atomic(path, columns_markdown(results))
    return path


def summarise_columns(runs: Sequence[Any], columns: list[str], *, seed: int = stats.SEED) -> dict[str, Any]:
    """Per column its study, mAP per variant and paper values; per later column the gain tests over the first."""
    variants = list(dict.fromkeys(v for run in runs for v in run.variants))
    studies, notes = [], []
    for name, run in zip(columns, runs):
        table = paper.table_for(run.config)
        facts = study_facts(run.dir, run.config)
        studies.append({
            "column": name, "folder": record_path(run.dir), "dataset": run.config.get("dataset", ""),
            "test_fingerprint": (facts.get("fingerprints") or {}).get("test"), "features": facts.get("features"),
            "paper_table": table, "paper": paper.TABLES[table] if table else {},
            "maps": {v: asdict(stats.describe(run.trials.loc[run.trials["variant"] == v, "test_map"]))
                     for v in variants},
        })
    if len({s["dataset"] for s in studies}) > 1:
        notes.append("the studies are of different datasets: " + ", ".join(f"{s['column']} {s['dataset']}"
                                                                          for s in studies))
    notes += _clip_and_feature_notes(studies)
    gains = []
    for name, run in zip(columns[1:], runs[1:]):
        gains.append({"a": columns[0], "b": name, "tests": _gain_tests(runs[0].trials, run.trials, variants, seed,
                                                                        notes, columns[0], name)})
    return {"columns": columns, "variants": variants, "studies": studies, "gains": gains, "notes": notes,
            "paper_citation": paper.CITATION if any(s["paper"] for s in studies) else None}


def _clip_and_feature_notes(studies: list[dict[str, Any]]) -> list[str]:
    """Whether the columns were measured on the same test clips (fingerprints), and with which features.

    A clip-set fingerprint leaves the features out, so the same clips featurized two ways compare; a study
    without a ``features`` record was written when fingerprints hashed the feature id in: not comparable.
    """
    prints = {s["column"]: s["test_fingerprint"] for s in studies if isinstance(s["test_fingerprint"], str)}
    ids = {s["column"]: s["features"]["id"] for s in studies if isinstance(s.get("features"), dict)}
    older = [c for c in prints if c not in ids]
    notes = []
    if len(set(prints.values())) > 1:
        if older:
            notes.append(f"{', '.join(older)}: written by an earlier audiobench, whose fingerprints included the "
                         f"feature id: whether the columns were measured on the same clips cannot be told "
                         f"(run `audiobench report` on a study trained again)")
        else:
            notes.append("the test splits differ (fingerprints " + ", ".join(f"{c} {p}" for c, p in prints.items())
                         + "): the columns were not measured on the same clips")
    elif len(set(ids.values())) > 1:
        shown = f" (fingerprint {next(iter(prints.values()))})" if prints else ""
        notes.append(f"the same test clips{shown} with different features: "
                     + ", ".join(f"{c} `{i}`" for c, i in ids.items()) + ": the columns compare the feature sets")
    return notes


def _gain_tests(first: pd.DataFrame, later: pd.DataFrame, variants: list[str], seed: int, notes: list[str],
                a: str, b: str) -> list[dict[str, Any]]:
    """Per variant the paired test of ``later - first`` over the seeds both studies trained, Holm across them."""
    key = "seed" if "seed" in first and "seed" in later else "trial"
    tests = []
    for v in variants:
        x = first[first["variant"] == v].set_index(key)["test_map"]
        y = later[later["variant"] == v].set_index(key)["test_map"]
        both = pd.concat([x.rename("a"), y.rename("b")], axis=1).dropna()
        unmatched = len(x.index.symmetric_difference(y.index))
        if unmatched and len(both):
            notes.append(f"{v}: {unmatched} trial(s) ran in only one of {a} and {b}; the test pairs the "
                         f"{len(both)} {key}s both ran")
        t = stats.paired_test(both["a"].to_numpy(), both["b"].to_numpy(), seed=seed)
        d = (both["b"] - both["a"]).round(stats.ROUND_DECIMALS)
        tests.append({"variant": v, **asdict(t), "b_wins": int((d > 0).sum()), "a_wins": int((d < 0).sum())})
    for t, p_holm in zip(tests, stats.holm([t["p"] for t in tests])):
        t["p_holm"], t["mark"] = p_holm, stats.significance_mark(p_holm)
    return tests


def column_cells(results: dict[str, Any]) -> tuple[list[str], list[list[str]], str]:
    """Header, cells and alignment: variant, per column mAP (and the paper's), per later column the gain test."""
    header, align = ["variant"], "l"
    for s in results["studies"]:
        header.append(f"{s['column']} mAP")
        align += "r"
        if s["paper"]:
            header.append(f"paper {s['column']} (%)")
            align += "r"
    for g in results["gains"]:
        header += [f"{g['b']} − {g['a']} [95% CI]", "n", "Holm p"]
        align += "rrr"
    rows = []
    for v in results["variants"]:
        row = [v]
        for s in results["studies"]:
            m = s["maps"][v]
            row.append(fmt_mean_std(m["mean"], m["std"]) if m["n"] else "–")
            if s["paper"]:
                row.append(paper.fmt_paper(s["paper"].get(v)))
        for g in results["gains"]:
            t = next(t for t in g["tests"] if t["variant"] == v)
            diff = "–" if not t["n"] else f"{t['mean_diff']:+.3f}" + (
                "" if t["ci_low"] is None else f" [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}]")
            row += [diff, str(t["n"]), "n/a" if t["p_holm"] is None else f"{fmt_p(t['p_holm'])} {t['mark']}".rstrip()]
        rows.append(row)
    return header, rows, align


def column_frame(results: dict[str, Any]) -> pd.DataFrame:
    """The table as numbers (CSV): per column mean, std, n (and the paper's), per gain the test's numbers."""
    rows = []
    for v in results["variants"]:
        row: dict[str, Any] = {"variant": v}
        for s in results["studies"]:
            m, c = s["maps"][v], s["column"]
            row.update({f"{c}_mean": m["mean"], f"{c}_std": m["std"], f"{c}_trials": m["n"]})
            if s["paper"]:
                row[f"paper_{c}_mean_pct"], row[f"paper_{c}_std_pct"] = s["paper"].get(v) or (None, None)
        for g in results["gains"]:
            t = next(t for t in g["tests"] if t["variant"] == v)
            prefix = f"{g['b']}_minus_{g['a']}"
            row.update({f"{prefix}_{k}": t[k] for k in ("n", "mean_diff", "ci_low", "ci_high", "p", "p_holm")})
        rows.append(row)
    return pd.DataFrame(rows)


def columns_markdown(results: dict[str, Any]) -> str:
    """The table with what each column is, the gain sentences, the notes and the exports."""
    lines = ["# Test mAP by study: " + ", ".join(results["columns"]), ""]
    for s in results["studies"]:
        features = s.get("features") if isinstance(s.get("features"), dict) else {}
        lines.append(f"- {s['column']}: `{s['folder']}` (dataset `{s['dataset']}`"
                     + (f", features `{features['id']}`" if features.get("id") else "")
                     + (f", paper: {paper.TITLES[s['paper_table']]}" if s["paper_table"] else "") + ")")
    lines += ["", exports.markdown_table(*column_cells(results)), "",
              "Gains are later column − first, per variant, over the trials both studies ran with the same seed: "
              "two-sided Wilcoxon signed-rank test, paired bootstrap 95% interval, Holm across the variants."]
    if results.get("paper_citation"):
        lines.append(f"Paper columns: test mAP in percent (mean ± std over 20 trials) of {results['paper_citation']}.")
    lines += ["", "## Summary", ""]
    for g in results["gains"]:
        for t in g["tests"]:
            named = {**t, "a": f"{t['variant']} ({g['a']})", "b": f"{t['variant']} ({g['b']})"}
            lines.append(f"- {findings.sentence(named)}")
    if results["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    lines += ["", "Exports: " + ", ".join(f"[{f}]({f})" for f in results.get("exports", [])), ""]
    return "\n".join(lines)
