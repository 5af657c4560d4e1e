"""The report's tables for a paper: CSV (numbers, for a spreadsheet) and a LaTeX ``tabular`` with booktabs rules.

A table is a header and rows of cells (strings, already formatted); :func:`latex_tabular` escapes every cell,
so variant names such as ``att_self`` or ``50%`` print as written. The ``.tex`` files hold the ``tabular``
alone (no ``table`` float), to be ``\\input`` inside the paper's own float; they need ``\\usepackage{booktabs}``.

>>> print(latex_tabular(["variant", "mAP"], [["att_self", "0.612 ± 0.015"]], "lr"))
\\begin{tabular}{lr}
\\toprule
variant & mAP \\\\
\\midrule
att\\_self & 0.612 $\\pm$ 0.015 \\\\
\\bottomrule
\\end{tabular}
<BLANKLINE>
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from audiobench.data.cliplist import neutral
from audiobench.core.layout import write_atomic

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_TEXT = {"±": r"$\pm$", "−": "$-$", "–": "--", "α": r"$\alpha$", "β": r"$\beta$", "′": "$'$"}


def latex_escape(text: str) -> str:
    """``text`` safe in LaTeX text mode: the ten special characters escaped, ± − – α β ′ as math/dashes."""
    return "".join(_LATEX_SPECIAL.get(ch) or _LATEX_TEXT.get(ch) or ch for ch in str(text))


def latex_tabular(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """One ``tabular`` with ``\\toprule``, ``\\midrule`` after the header and ``\\bottomrule``."""
    if len(align) != len(header) or any(len(r) != len(header) for r in rows):
        raise ValueError(f"{len(header)} columns, align {align!r}, rows of {sorted({len(r) for r in rows})} cells")
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(latex_escape(h) for h in header) + r" \\",
             "\\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in rows]
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """The same table in Markdown (``l``: left, ``r``: right aligned)."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in [list(header), rule, *rows])


def write_table(frame: pd.DataFrame, header: Sequence[str], rows: Sequence[Sequence[str]], align: str,
                stem: Path) -> list[str]:
    """``<stem>.csv`` (the numbers of ``frame``) and ``<stem>.tex`` (the formatted cells); their file names."""
    text = frame.copy()
    for column in text.columns[text.dtypes == object]:  # names (studies, classes) are users' text
        text[column] = [neutral(v) if isinstance(v, str) else v for v in text[column]]
    write_atomic(stem.with_suffix(".csv"), text.to_csv(index=False, float_format="%.6g"))
    write_atomic(stem.with_suffix(".tex"), latex_tabular(header, rows, align))
    return [stem.with_suffix(".csv").name, stem.with_suffix(".tex").name]


def variant_frame(results: dict[str, Any]) -> pd.DataFrame:
    """The variant table as numbers: one row per variant, every metric's mean and std the study recorded."""
    base = results["baseline"]
    against = {t["b"] if t["a"] == base else t["a"]: t for t in results["tests"] if base in (t["a"], t["b"])}
    paper = (results.get("paper") or {}).get("values") or {}
    rows = []
    for v in results["variants"]:
        name, s = v["variant"], v["test_map"]
        row: dict[str, Any] = {"variant": name, "labels_used": v.get("labels_used", ""), "trials": s["n"],
                               "test_map_mean": s["mean"], "test_map_std": s["std"], "test_map_median": s["median"]}
        for key in ("test_auc", "test_dprime"):
            value = v.get(key) if isinstance(v.get(key), dict) else {"mean": v.get(f"{key}_mean"),
                                                                    "std": v.get(f"{key}_std")}
            if value.get("mean") is not None:
                row[f"{key}_mean"], row[f"{key}_std"] = value["mean"], value.get("std")
        row["val_map_mean"] = v.get("val_map_mean")
        t = against.get(name)
        row[f"p_holm_vs_{base}"] = None if t is None else t["p_holm"]
        if paper:
            row["paper_map_mean_pct"], row["paper_map_std_pct"] = paper.get(name) or (None, None)
        rows.append(row)
    return pd.DataFrame(rows)


def pairwise_frame(results: dict[str, Any]) -> pd.DataFrame:
    """The pairwise tests as numbers, one row per pair (difference b − a)."""
    keys = ("a", "b", "n", "b_wins", "a_wins", "mean_diff", "ci_low", "ci_high", "w", "p", "method", "p_holm",
            "rank_biserial")
    return pd.DataFrame([{k: t.get(k) for k in keys} for t in results["tests"]], columns=list(keys))


def pairwise_cells(results: dict[str, Any]) -> tuple[list[str], list[list[str]], str]:
    """Header, rows and alignment of the pairwise table as the exports print it."""
    header = ["a", "b", "n", "mean diff b − a", "95% CI", "p", "Holm p"]
    rows = [[t["a"], t["b"], str(t["n"]), _signed(t["mean_diff"]),
             "–" if t["ci_low"] is None else f"[{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]",
             "–" if t["p"] is None else f"{t['p']:.2g}", "–" if t["p_holm"] is None else f"{t['p_holm']:.2g}"]
            for t in results["tests"]]
    return header, rows, "llrrrrr"


def _signed(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.4f}"
