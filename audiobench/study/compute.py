"""A study's compute: per-variant totals of its runs' ``compute`` records (``results.json``, ``report.md``).

Each run's ``metrics.json`` says where it trained (CPU model, torch's CPU capability, oneDNN's ISA, GPU)
and at what cost (:mod:`audiobench.training.compute`). Float rounding differs between instruction sets and
grows over the epochs into another model, so a study whose trials ran on different machines or
capabilities is warned about: its numbers are not interchangeable. Runs from before the record have none
and are counted as such. No torch here: a report renders without it.

>>> lines({"variants": [], "machines": [], "unrecorded": 0, "warning": None})
['## Compute', '', '- no run recorded its compute', '']
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from audiobench.study.provenance import _run_metrics

MACHINE_KEYS = ("cpu", "cpu_capability", "onednn_isa", "gpu")  # what decides a run's rounding, beside torch
_GIB = 1 << 30


def study_compute(run_dir: Path, variants: tuple[str, ...]) -> dict[str, Any]:
    """Per variant: runs, total wall time, mean training clips/s, FLOPs per clip, parameters, peak memory;
    the machines seen; how many runs recorded nothing; the mixed-machine warning (None if they agree)."""
    records: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    machines: dict[tuple[Any, ...], int] = {}
    unrecorded = 0
    for metrics in _run_metrics(run_dir):
        compute = metrics.get("compute")
        variant = str((metrics.get("config") or {}).get("variant", ""))
        if not isinstance(compute, dict):
            unrecorded += 1
            continue
        records.setdefault(variant, []).append(compute)
        key = tuple(compute.get(k) for k in MACHINE_KEYS)
        machines[key] = machines.get(key, 0) + 1
    totals = [_totals(v, found) for v, found in records.items() if found]
    seen = [{**dict(zip(MACHINE_KEYS, key)), "runs": n} for key, n in machines.items()]
    warning = None
    if len(seen) > 1:
        warning = ("the trials ran on different machines or CPU capabilities (" + "; ".join(
            f"{m['runs']} on {_machine(m)}" for m in seen) + "): their numbers are not interchangeable")
    return {"variants": totals, "machines": seen, "unrecorded": unrecorded, "warning": warning}


def _totals(variant: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    def values(key: str) -> list[float]:
        return [r[key] for r in found if isinstance(r.get(key), (int, float))]

    rates, flops, params, peaks = values("train_clips_per_s"), values("flops_per_clip"), values("parameters"), \
        values("peak_memory_bytes")
    return {"variant": variant, "runs": len(found), "wall_s": sum(values("wall_s")),
            "train_clips_per_s": sum(rates) / len(rates) if rates else None,
            "flops_per_clip": max(flops) if flops else None, "parameters": max(params) if params else None,
            "peak_memory_bytes": max(peaks) if peaks else None}


def _machine(m: dict[str, Any]) -> str:
    where = f"{m.get('cpu') or 'unknown CPU'}, capability {m.get('cpu_capability')}, oneDNN {m.get('onednn_isa')}"
    return where + (f", GPU {m['gpu']}" if m.get("gpu") else "")


def lines(compute: dict[str, Any]) -> list[str]:
    """The ``## Compute`` section of ``report.md``."""
    out = ["## Compute", ""]
    if not compute["variants"]:
        return out + ["- no run recorded its compute", ""]
    if compute["warning"]:
        out += [f"**Warning:** {compute['warning']}.", ""]
    out += ["| variant | runs | wall time (total) | training clips/s | FLOPs per clip | parameters | peak memory |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for v in compute["variants"]:
        rate = "–" if v["train_clips_per_s"] is None else f"{v['train_clips_per_s']:.1f}"
        flops = "–" if v["flops_per_clip"] is None else _flops(v["flops_per_clip"])
        params = "–" if v["parameters"] is None else f"{v['parameters']:,}"
        peak = "–" if v["peak_memory_bytes"] is None else f"{v['peak_memory_bytes'] / _GIB:.2f} GiB"
        out.append(f"| {v['variant']} | {v['runs']} | {_duration(v['wall_s'])} | {rate} | {flops} | {params} | "
                   f"{peak} |")
    out += [""] + [f"- trained on {_machine(m)}: {m['runs']} run{'s' if m['runs'] != 1 else ''}"
                   for m in compute["machines"]]
    if compute["unrecorded"]:
        out.append(f"- {compute['unrecorded']} run(s) recorded no compute (trained before the record existed)")
    out += ["- FLOPs: one forward pass of one training-length clip (torch's FlopCounterMode, a multiply-add "
            "counts 2); peak memory: the largest of the runs (process resident set on CPU, allocated on GPU); "
            "energy is not measured", ""]
    return out


def _flops(n: float) -> str:
    """``6.72 M``, ``16.7 G``: three digits and a unit."""
    return f"{n / 1e9:.3g} G" if n >= 1e9 else f"{n / 1e6:.3g} M"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
