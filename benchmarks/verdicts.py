"""Do the demo's verdicts depend on the CPU? The whole demo under four float-rounding settings, compared.

    .venv/bin/python benchmarks/verdicts.py [--pipeline pipelines/synth-demo.toml] [--keep DIR]
    .venv/bin/python benchmarks/verdicts.py --settings native,default     # a subset

Float rounding differs between instruction sets: torch's kernels for AVX-512, AVX2 or none
(``ATEN_CPU_CAPABILITY``) and oneDNN's convolutions (``ONEDNN_MAX_CPU_ISA``) round differently, and
training grows those last-digit differences into other models. One machine rounds as another would under
these variables, so each setting runs the pipeline from scratch (synth, featurize, compare) in a root of its
own, and the verdicts of the pairwise tests are compared: which variant wins each pair at Holm-adjusted
p < 0.05 (or none), with the stability mark the report gives it (robust, fragile, no detectable
difference). A verdict marked robust is a claim: it must come out the same, and robust, under every
setting. A pair marked fragile or "no detectable difference" is not a claim (the docs state none for it); it
must never be marked robust under any setting. Prints one row per pair and setting, the wall time of each
run, and exits 1 when a claim does not hold everywhere.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALPHA = 0.05
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},  # the machine's own: AVX-512 where it has it
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "default": {"ATEN_CPU_CAPABILITY": "default"},  # no vector kernels
    "onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def verdict(row: dict) -> str:
    """``b > a``, ``b < a`` (Holm p < ALPHA) or ``no difference``, with the stability mark when recorded."""
    p = row.get("p_holm")
    if p is not None and p < ALPHA:
        said = f"{row['b']} > {row['a']}" if row["mean_diff"] > 0 else f"{row['b']} < {row['a']}"
    else:
        said = f"{row['b']} = {row['a']}"
    mark = (row.get("stability") or {}).get("mark") if isinstance(row.get("stability"), dict) else row.get("stability")
    return f"{said} ({mark})" if mark else said


def run_setting(pipeline: Path, root: Path, env: dict[str, str]) -> tuple[dict[tuple[str, str], dict], float]:
    """(pair -> its row of results.json, wall seconds) of the pipeline run under ``env``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "audiobench.cli", "run", str(pipeline), "--root", str(root)],
                   env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    (results,) = root.glob("runs/*/results.json")
    rows = json.loads(results.read_text())["tests"]
    return {(r["a"], r["b"]): r for r in rows}, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", type=Path, default=Path(__file__).parents[1] / "pipelines" / "synth-demo.toml")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"of {', '.join(SETTINGS)}")
    parser.add_argument("--keep", type=Path, default=None, help="keep each setting's root under this folder")
    args = parser.parse_args()
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}")
    base = args.keep or Path(tempfile.mkdtemp(prefix="audiobench-verdicts-"))
    found: dict[str, dict[tuple[str, str], dict]] = {}
    for name in names:
        rows, wall = run_setting(args.pipeline, base / name, SETTINGS[name])
        found[name] = rows
        print(f"{name:<12} {' '.join(f'{k}={v}' for k, v in SETTINGS[name].items()) or '(as the machine is)':<32} "
              f"{wall / 60:5.1f} min", flush=True)
    pairs = sorted({pair for rows in found.values() for pair in rows})
    same = True
    print(f"\n{'pair':<28} " + " ".join(f"{n:>34}" for n in names))
    for pair in pairs:
        cells = [verdict(found[n][pair]) if pair in found[n] else "(missing)" for n in names]
        claimed = any(c.endswith("(robust)") for c in cells)
        holds = len(set(cells)) == 1 if claimed else not any(c == "(missing)" for c in cells)
        same &= holds
        flag = ("" if len(set(cells)) == 1 else "  (not a claim: never robust)") if holds else "  <- DIFFERS"
        print(f"{pair[1] + ' vs ' + pair[0]:<28} " + " ".join(f"{c:>34}" for c in cells) + flag)
        print(f"{'  Holm p, mean diff':<28} " + " ".join(
            f"{found[n][pair]['p_holm']:>20.2g} {found[n][pair]['mean_diff']:+13.4f}" if pair in found[n] else " " * 34
            for n in names))
    print(f"\nrobust verdicts the same under every setting, and no other pair robust anywhere: "
          f"{'yes' if same else 'NO'}  (roots under {base})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
