"""The report's figures: mAP per variant, validation curves, the paper's Fig. 4 and Fig. 5, as PNGs.

Figures are drawn on ``matplotlib.figure.Figure`` objects, never through ``pyplot``: no global backend is
switched and no figure is left open, so a notebook importing audiobench keeps its own backend, and
rendering works on a headless machine (PNG output goes through Agg).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from audiobench.models.shape import SEGMENT_FRAMES  # attention segment t spans frames [16t, 16t+16)

FRAME_SECONDS = 0.010  # the hop of examples saved without theirs (VGGish's: 160 samples at 16 kHz)
DPI = 120
MAX_NAMED_POINTS = 40  # Fig. 4 names every class up to this many; beyond, labels would hide the points
MAX_ALL_CLASSES = 20   # Fig. 5 shows every class up to this many; beyond, only the classes present
ATTENTION_KEYS = ("logmel", "attention", "strong", "class_names")


@dataclass(frozen=True)
class Attention:
    """One example clip for Fig. 5, as the trial runner saves it (``attention/<name>.npz``)."""

    clip_id: str
    variant: str
    logmel: np.ndarray         # [T, dims] feature frames
    attention: np.ndarray      # [C, S] attention A, segment t spans frames [16t, 16t+16)
    segment_probs: np.ndarray | None  # [C, S] segment probabilities Xa, when saved
    strong: np.ndarray         # [T, C] frame labels
    class_names: tuple[str, ...]
    frame_seconds: float = FRAME_SECONDS  # the features' hop


def load_attention(path: Path) -> Attention:
    """Read one ``.npz`` of Fig. 5; raises ``ValueError`` naming the missing arrays."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ATTENTION_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path.name} lacks {', '.join(missing)}")
        return Attention(
            clip_id=str(z["clip_id"]) if "clip_id" in z.files else path.stem,
            variant=str(z["variant"]) if "variant" in z.files else "",
            logmel=np.asarray(z["logmel"], dtype=np.float32),
            attention=np.asarray(z["attention"], dtype=np.float32),
            segment_probs=np.asarray(z["segment_probs"], dtype=np.float32) if "segment_probs" in z.files else None,
            strong=np.asarray(z["strong"]),
            class_names=tuple(str(c) for c in z["class_names"]),
            frame_seconds=float(z["frame_seconds"]) if "frame_seconds" in z.files else FRAME_SECONDS,
        )


def plot_map_per_variant(trials: pd.DataFrame, variants: Sequence[str], path: Path) -> Path:
    """Box plot of test mAP per variant, each trial a point, a trial's points joined across variants."""
    wide = trials.pivot_table(index="trial", columns="variant", values="test_map", aggfunc="first")
    wide = wide.reindex(columns=list(variants))
    fig = Figure(figsize=(max(5.0, 1.4 * len(variants) + 2.0), 4.5), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(1, len(variants) + 1)
    columns = [wide[v].dropna().to_numpy() for v in variants]
    ax.boxplot(columns, positions=x, widths=0.5, showfliers=False, medianprops={"color": "tab:orange"})
    for _, row in wide.iterrows():  # paired trials: the same seed across variants
        ax.plot(x, row.to_numpy(), color="0.6", alpha=0.35, linewidth=0.8, zorder=1)
    for xi, values in zip(x, columns):
        ax.scatter(np.full(values.size, xi), values, s=14, color="tab:blue", alpha=0.8, zorder=3)
        if values.size:
            ax.scatter([xi], [values.mean()], marker="D", s=30, color="tab:red", zorder=4,
                       label="mean" if xi == 1 else None)
    ax.set_xticks(x, list(variants), rotation=20 if len(variants) > 4 else 0)
    ax.set_xlabel("variant")
    ax.set_ylabel("test mAP")
    ax.set_title(f"Test mAP per variant over {wide.shape[0]} trial{'s' if wide.shape[0] != 1 else ''}")
    ax.grid(axis="y", alpha=0.3)
    if any(c.size for c in columns):
        ax.legend(loc="best", fontsize=8)
    fig.savefig(path)
    return path


def plot_validation_curves(epochs: pd.DataFrame, variants: Sequence[str], path: Path) -> Path:
    """Validation mAP per epoch: the mean over trials per variant, with a band of ± one standard deviation.

    ``epochs`` has one row per (trial, variant, epoch) (``epochs.csv``). A curve still rising at the last
    epoch says the study stopped training early, whatever the table shows. With ``--patience`` the late
    epochs average only the trials still running.
    """
    fig = Figure(figsize=(7.5, 4.5), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for variant in variants:
        rows = epochs[epochs["variant"] == variant]
        if rows.empty:
            continue
        stats = rows.groupby("epoch")["val_map"].agg(["mean", "std"]).reset_index()
        line, = ax.plot(stats["epoch"], stats["mean"], marker="o", markersize=3, label=variant)
        spread = stats["std"].fillna(0.0)
        ax.fill_between(stats["epoch"], stats["mean"] - spread, stats["mean"] + spread, color=line.get_color(),
                        alpha=0.15, linewidth=0)
    trials = epochs["trial"].nunique()
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation mAP")
    ax.set_title(f"Validation mAP per epoch (mean ± std over {trials} trial{'s' if trials != 1 else ''})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path)
    return path


def plot_ap_gain_vs_duration(gain: pd.DataFrame, *, variant: str, over: str, path: Path) -> Path:
    """The paper's Fig. 4: per class, AP(variant) - AP(over) against the class's mean event duration.

    ``gain`` has columns ``name``, ``mean_duration`` (seconds) and ``gain``.
    """
    fig = Figure(figsize=(7.5, 5.0), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.axhline(0.0, color="0.3", linewidth=1.0)
    colors = np.where(gain["gain"].to_numpy() >= 0, "tab:green", "tab:red")
    ax.scatter(gain["mean_duration"], gain["gain"], c=colors, s=28, zorder=3)
    if len(gain) <= MAX_NAMED_POINTS:
        for _, row in gain.iterrows():
            ax.annotate(str(row["name"]), (row["mean_duration"], row["gain"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
    durations = gain["mean_duration"].to_numpy()
    if durations.size and durations.min() > 0 and durations.max() / durations.min() > 10:
        ax.set_xscale("log")  # durations span decades (0.2 s horns to 10 s engines): spread the short ones
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(  # label 0.2, 0.5, 2, 5 ... between the decades
            lambda x, _: f"{x:g}" if round(x / 10 ** np.floor(np.log10(x))) in (2, 5) else ""))
    ax.set_xlabel("mean event duration in the training strong labels (s)")
    ax.set_ylabel(f"AP gain: {variant} − {over}")
    ax.set_title(f"Class-wise AP gain of {variant} over {over} (mean over trials)")
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return path


def plot_attention(clip: Attention, path: Path) -> Path:
    """The paper's Fig. 5: log-mel on top, then attention A (and Xa when saved), then the strong labels.

    All panels share the time axis in frames; attention segment t is drawn over frames [16t, 16t+16).
    """
    n_classes = clip.attention.shape[0]
    present = np.flatnonzero(clip.strong.any(axis=0))
    shown = np.arange(n_classes) if n_classes <= MAX_ALL_CLASSES or present.size == 0 else present
    names = [clip.class_names[c] if c < len(clip.class_names) else str(c) for c in shown]
    frames, segments = clip.logmel.shape[0], clip.attention.shape[1]
    end = max(frames, SEGMENT_FRAMES * segments)
    panels = [("log-mel", clip.logmel.T, frames, "mel band", None)]
    panels.append(("attention A (per class, sums to 1 over time)", clip.attention[shown], SEGMENT_FRAMES * segments,
                   None, "viridis"))
    if clip.segment_probs is not None:
        panels.append(("segment probabilities Xa", clip.segment_probs[shown], SEGMENT_FRAMES * segments, None,
                       "viridis"))
    panels.append(("strong labels", clip.strong[:, shown].T.astype(np.float32), frames, None, "Greys"))
    row_height = max(1.6, 0.17 * len(shown) + 0.6)
    heights = [1.8] + [row_height] * (len(panels) - 1)
    # Fixed margins, not constrained layout: the layout solver took half of this figure's 1.4 s, and a study
    # draws one per example clip and attention variant. The left margin fits class names of ~30 characters.
    fig = Figure(figsize=(10.0, sum(heights) + 1.0), dpi=DPI)
    axes = fig.subplots(len(panels), 1, sharex=True, gridspec_kw={"height_ratios": heights, "hspace": 0.35})
    fig.subplots_adjust(left=0.17, right=0.93, bottom=0.8 / (sum(heights) + 1.0), top=1 - 0.55 / (sum(heights) + 1.0))
    for ax, (title, image, width, ylabel, cmap) in zip(axes, panels):
        rows = image.shape[0]
        im = ax.imshow(image, aspect="auto", origin="lower" if cmap is None else "upper", interpolation="nearest",
                       extent=(0, width, 0, rows) if cmap is None else (0, width, rows - 0.5, -0.5),
                       cmap=cmap or "magma", vmin=0.0 if cmap == "Greys" else None,
                       vmax=1.0 if cmap == "Greys" else None)
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
        ax.set_title(title, fontsize=9, loc="left")
        if ylabel:
            ax.set_ylabel(ylabel)
        else:
            ax.set_yticks(np.arange(rows), names, fontsize=7 if rows <= 30 else 5)
    axes[-1].set_xlim(0, end)
    axes[-1].set_xlabel(f"frames ({clip.frame_seconds * 1000:g} ms); attention segment t spans frames "
                        f"[{SEGMENT_FRAMES}t, {SEGMENT_FRAMES}t+{SEGMENT_FRAMES})")
    fig.suptitle(f"{clip.clip_id}: {clip.variant}" if clip.variant else clip.clip_id)
    fig.savefig(path)
    return path
