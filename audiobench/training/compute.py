"""Where a run trained and what it cost: the ``compute`` record of ``metrics.json`` (docs/model.md).

Float rounding differs between instruction sets (torch's CPU capability, oneDNN's ISA), and a few 1e-7
grow over the epochs into another model: two runs' numbers are only interchangeable when these facts
match, so every run records them beside its cost (wall time, clips/s, parameters, forward FLOPs per clip,
peak memory). Energy is not measured (``energy`` is None).
"""
from __future__ import annotations

import copy
import os
import platform
import resource
import sys
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # oneDNN reads either; unset: its own choice


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def onednn_isa() -> str:
    """The oneDNN ISA limit in force: the environment's ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_``), else
    ``"default"`` (oneDNN picks the best the CPU has)."""
    for name in ISA_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return "default"


def machine_record(device: torch.device) -> dict[str, Any]:
    """The facts that decide a run's rounding: CPU, capability, ISA, GPU, threads, versions, determinism."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_isa": onednn_isa(),
        "gpu": gpu,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "deterministic": {
            "algorithms": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        },
    }


def flops_per_clip(net: torch.nn.Module, *, frames: int, bands: int) -> int:
    """Forward FLOPs of one ``[frames, bands]`` clip, as :class:`~torch.utils.flop_counter.FlopCounterMode`
    counts them (a multiply-add is 2 FLOPs), on a CPU copy of ``net`` in eval mode, without gradient."""
    model = copy.deepcopy(net).cpu().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, frames, bands))
    return int(counter.get_total_flops())


def peak_memory_bytes(device: torch.device) -> int:
    """The peak memory so far: GPU memory torch allocated on ``device``, else the process's peak resident
    set (``ru_maxrss``: kilobytes on Linux, bytes on macOS); both since the process started."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def compute_record(net: torch.nn.Module, machine: dict[str, Any], *, device: torch.device, frames: int,
                   bands: int, wall_s: float, train_s: float, train_clips: int) -> dict[str, Any]:
    """``metrics.json``'s ``compute``: ``machine`` (:func:`machine_record`, taken while the run's
    deterministic settings were in force) and the run's cost."""
    return {
        **machine,
        "wall_s": wall_s,
        "train_clips_per_s": train_clips / max(train_s, 1e-9),
        "parameters": sum(p.numel() for p in net.parameters()),
        "flops_per_clip": flops_per_clip(net, frames=frames, bands=bands),
        "input": [frames, bands],
        "peak_memory_bytes": peak_memory_bytes(device),
        "peak_memory_of": "cuda allocated" if device.type == "cuda" else "process resident set",
        "energy": None,  # not measured
    }
