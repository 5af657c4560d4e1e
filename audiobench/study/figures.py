"""The report's figures: mAP per variant, validation curves, the paper's Fig. 4 and Fig. 5, as PNGs.

Each ``plot_*`` returns a :class:`Drawn`: the file and what the figure shows (values, labels, colour limits,
read back from its artists), which ``results.json`` and the tests use.

Figures are drawn on ``matplotlib.figure.Figure`` objects, never through ``pyplot``: no global backend is
switched and no figure is left open, so a notebook importing audiobench keeps its own backend, and
rendering works on a headless machine (PNG output goes through Agg).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from audiobench.models.shape import SEGMENT_FRAMES  # attention segment t spans frames [16t, 16t+16)

FRAME_SECONDS = 0.010  # the hop of examples saved without theirs (VGGish's: 160 samples at 16 kHz)
DPI = 120
MAX_NAMED_POINTS = 40  # Fig. 4 draws every class up to this many; beyond, only the largest and smallest gains
TOP_BOTTOM = 15        # ... this many of each
MAX_ALL_CLASSES = 20   # Fig. 5 shows every class up to this many; beyond, only the classes present
ATTENTION_KEYS = ("logmel", "attention", "strong", "class_names")
FEATURE_NAMES = {"vggish-logmel": "VGGish log-mel", "kaldi-fbank-128": "Kaldi fbank"}  # extractor -> title


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
    trial: int = 0  # the trial whose model drew it (the trial runner saves trial 0's)
    features: str = ""  # the extractor of the features (``vggish-logmel``, ``kaldi-fbank-128``; "": not recorded)


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
            trial=int(z["trial"]) if "trial" in z.files else 0,
            features=str(z["features"]) if "features" in z.files else "",
        )


@dataclass(frozen=True)
class Drawn:
    """A figure written to ``path`` and what it shows (the plotted values and labels, read back from its artists)."""

    path: Path
    data: dict[str, Any]
    figure: Figure | None = None  # the drawn figure, for a caller that measures its artists


def plot_map_per_variant(trials: pd.DataFrame, variants: Sequence[str], path: Path, *, chance: float | None = None,
                         brackets: Sequence[tuple[str, str, str]] = (), column: str = "test_map",
                         label: str = "test mAP") -> Drawn:
    """Box plot of a metric per variant, each trial a point, a trial's points joined across variants.

    ``chance``: a dashed line at the chance level. ``brackets``: ``(a, b, mark)`` pairs drawn as brackets over
    the boxes, each with its mark (``*`` ...), the pairs the tests found significant.
    """
    wide = trials.pivot_table(index="trial", columns="variant", values=column, aggfunc="first")
    wide = wide.reindex(columns=list(variants))
    fig = Figure(figsize=(max(5.0, 1.4 * len(variants) + 2.0), 4.5 + 0.25 * len(brackets)), dpi=DPI,
                 layout="constrained")
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
    if chance is not None:
        ax.axhline(chance, color="0.35", linestyle="--", linewidth=1.0, label=f"chance ({chance:.3f})")
    drawn = _brackets(ax, [v for v in variants], columns, brackets)
    ax.set_xticks(x, list(variants), rotation=20 if len(variants) > 4 else 0)
    ax.set_xlabel("variant")
    ax.set_ylabel(label)
    n = wide.shape[0]
    ax.set_title(f"{label[0].upper() + label[1:]} per variant over {n} trial{'s' if n != 1 else ''}"
                 + ("; brackets: Holm-significant pairs" if drawn else ""))
    ax.grid(axis="y", alpha=0.3)
    if any(c.size for c in columns) or chance is not None:
        ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path)
    chance_lines = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
    return Drawn(path, {"chance": chance_lines[0] if chance_lines else None, "brackets": drawn}, fig)


def _brackets(ax: Any, variants: list[str], columns: list[np.ndarray],
              pairs: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Draw ``pairs`` as brackets stacked above the highest point, shortest span lowest; return those drawn."""
    values = np.concatenate([c for c in columns if c.size]) if any(c.size for c in columns) else np.zeros(1)
    top, span = float(values.max()), float(np.ptp(values)) or 0.05
    step = 0.08 * span
    shown = sorted(((variants.index(a), variants.index(b), a, b, mark) for a, b, mark in pairs
                    if a in variants and b in variants), key=lambda p: (abs(p[1] - p[0]), min(p[0], p[1])))
    drawn = []
    for level, (i, j, a, b, mark) in enumerate(shown, start=1):
        lo, hi = sorted((i + 1, j + 1))
        y = top + level * step
        ax.plot([lo, lo, hi, hi], [y - 0.3 * step, y, y, y - 0.3 * step], color="0.2", linewidth=0.9)
        ax.text((lo + hi) / 2, y, mark, ha="center", va="bottom", fontsize=9)
        drawn.append((a, b, mark))
    if drawn:
        ax.set_ylim(top=top + (len(drawn) + 1) * step)
    return drawn


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


def plot_class_gain(gain: pd.DataFrame, *, variant: str, over: str, path: Path, interval: str = "") -> Drawn:
    """The paper's Fig. 4: per class, AP(variant) − AP(over) with its interval, one row per class.

    ``gain`` has columns ``name``, ``gain``, ``low``, ``high`` (NaN: no interval) and optionally
    ``mean_duration`` (seconds). Rows are ordered by mean event duration, shortest on top, when every class
    has one (the paper's question: do short events gain most?), else by gain. Class names are the row labels,
    so they never overlap; beyond :data:`MAX_NAMED_POINTS` classes only the :data:`TOP_BOTTOM` largest and
    smallest gains are drawn, and the title says so. ``interval`` names the interval in the axis label.
    """
    total = len(gain)
    shown = gain
    if total > MAX_NAMED_POINTS:
        ranked = gain.sort_values("gain", ascending=False, kind="stable")
        shown = pd.concat([ranked.head(TOP_BOTTOM), ranked.tail(TOP_BOTTOM)])
    by_duration = "mean_duration" in shown and shown["mean_duration"].notna().all() and total <= MAX_NAMED_POINTS
    shown = shown.sort_values("mean_duration" if by_duration else "gain", kind="stable")
    shown = shown.iloc[::-1] if by_duration else shown  # barh draws the first row at the bottom
    names = [f"{n} ({d:.2g} s)" if by_duration else str(n)
             for n, d in zip(shown["name"], shown["mean_duration"] if by_duration else shown["name"])]
    y = np.arange(len(shown))
    values = shown["gain"].to_numpy(dtype=float)
    low, high = shown["low"].to_numpy(dtype=float), shown["high"].to_numpy(dtype=float)
    fig = Figure(figsize=(7.5, max(3.0, 1.6 + 0.24 * len(shown))), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.axvline(0.0, color="0.3", linewidth=1.0)
    has = ~(np.isnan(low) | np.isnan(high))
    if has.any():
        ax.errorbar(values[has], y[has], xerr=[values[has] - low[has], high[has] - values[has]], fmt="none",
                    ecolor="0.45", elinewidth=1.0, capsize=2, zorder=2)
    ax.scatter(values, y, c=np.where(values >= 0, "tab:green", "tab:red"), s=26, zorder=3)
    ax.set_yticks(y, names, fontsize=8 if len(shown) <= 20 else 7)
    if len(shown) < total:  # the gap between the smallest and the largest gains
        ax.axhline(TOP_BOTTOM - 0.5, color="0.5", linestyle=":", linewidth=1.0)
        ax.text(0.01, TOP_BOTTOM - 0.5, f"{total - len(shown)} classes not shown", transform=ax.get_yaxis_transform(),
                fontsize=7, color="0.4", va="center", backgroundcolor="white")
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.set_xlabel(f"AP gain: {variant} − {over}" + (f" ({interval})" if interval else ""))
    which = (f"the {TOP_BOTTOM} largest and {TOP_BOTTOM} smallest of {total} classes" if len(shown) < total
             else f"{total} classes" + (", shortest events on top" if by_duration else ""))
    ax.set_title(f"Class-wise AP gain of {variant} over {over}\n(mean over trials; {which})", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    return Drawn(path, {"labels": labels, "gain": values, "low": low, "high": high, "title": ax.get_title(),
                        "classes": total}, fig)


def feature_label(extractor: str, dims: int) -> str:
    """A feature set's name for a title: ``VGGish log-mel, 64 bands`` or ``Kaldi fbank, 128 bands``.

    From the extractor name the example file records (``features``); a file without it says only its dims,
    never "log-mel" (a Kaldi run drawn as log-mel would misname its input).
    """
    known = FEATURE_NAMES.get(extractor)
    if known:
        return f"{known}, {dims} bands"
    return f"{extractor}, {dims} dims" if extractor else f"features of {dims} dims (extractor not recorded)"


def event_spans(strong: np.ndarray, frame_seconds: float) -> list[tuple[int, float, float]]:
    """``(class, start s, stop s)`` of every run of labelled frames in ``strong`` ``[T, C]``."""
    spans = []
    for c in range(strong.shape[1]):
        edges = np.diff(np.concatenate([[0], (strong[:, c] > 0).astype(np.int8), [0]]))
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            spans.append((c, float(a * frame_seconds), float(b * frame_seconds)))
    return spans


def shown_classes(strong: np.ndarray, n_classes: int) -> np.ndarray:
    """The rows of Fig. 5: every class up to :data:`MAX_ALL_CLASSES`, else the present classes and the first
    absent ones in class order up to that many. Chosen from the labels only, never from what a model does
    (rows picked for their attention would show what the picking selected)."""
    if n_classes <= MAX_ALL_CLASSES:
        return np.arange(n_classes)
    present = set(np.flatnonzero(strong.any(axis=0)).tolist())
    absent = [c for c in range(n_classes) if c not in present][:max(MAX_ALL_CLASSES - len(present), 0)]
    return np.array(sorted(present | set(absent)), dtype=int)


def plot_clip_variants(clips: Sequence[Attention], path: Path, *, trial: int | None = None) -> Drawn:
    """The paper's Fig. 5: one clip's features and its attention under each variant, on one time axis.

    Panels are stacked and share the time axis in seconds (frame ``f`` at ``f · hop``, attention segment ``t``
    over frames ``[16t, 16t + 16)``): the features on top (named in the title: VGGish log-mel or Kaldi
    fbank), the clip's strong labels when it has any, then one panel of attention A per variant, all with the
    same colour limits (0 to the largest weight of any variant) and one colour bar, so a brighter cell means
    more attention whichever panel it is in. The ground-truth events are outlined on every attention panel.
    Rows are classes (:func:`shown_classes`); classes absent from the clip are greyed (name and row). The left
    margin fits the longest class name.
    """
    first = clips[0]
    hop = first.frame_seconds
    shown = shown_classes(first.strong, first.attention.shape[0])
    present = np.flatnonzero(first.strong.any(axis=0))
    names = [first.class_names[c] if c < len(first.class_names) else str(c) for c in shown]
    absent = ~np.isin(shown, present)
    row_of = {int(c): r for r, c in enumerate(shown)}
    spans = [(row_of[c], a, b) for c, a, b in event_spans(first.strong, hop) if c in row_of]
    vmax = float(max(c.attention[shown].max() for c in clips)) or 1.0
    frames, segments = first.logmel.shape[0], first.attention.shape[1]
    seconds = frames * hop
    rows = len(shown)
    fontsize = 7 if rows <= 30 else 5
    panel = 0.17 * rows + 0.35
    heights = [1.3] + ([panel] if spans else []) + [panel] * len(clips)
    left = 0.35 + 0.055 * fontsize / 7 * max((len(n) for n in names), default=4)  # inches: the longest name fits
    width, top, bottom, gap = 9.0, 0.8, 0.55, 0.3
    height = sum(heights) + gap * (len(heights) - 1) + top + bottom
    fig = Figure(figsize=(width, height), dpi=DPI)
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=gap / (sum(heights) / len(heights)),
                            left=left / width, right=1 - 1.1 / width, bottom=bottom / height, top=1 - top / height)
    mel = fig.add_subplot(grid[0])
    mel.imshow(first.logmel.T, aspect="auto", origin="lower", interpolation="nearest", cmap="magma",
               extent=(0, seconds, 0, first.logmel.shape[1]))
    features = feature_label(first.features, first.logmel.shape[1])
    mel.set_title(features, fontsize=9, loc="left")
    mel.set_ylabel("band", fontsize=8)
    axes = [mel]
    if spans:
        truth = fig.add_subplot(grid[1], sharex=mel)
        truth.imshow(first.strong[:, shown].T.astype(np.float32), aspect="auto", interpolation="nearest",
                     cmap="Greys", vmin=0.0, vmax=1.0, extent=(0, seconds, rows - 0.5, -0.5))
        truth.set_title("strong labels", fontsize=9, loc="left")
        axes.append(truth)
    images = []
    for k, clip in enumerate(clips):
        ax = fig.add_subplot(grid[len(axes)], sharex=mel)
        im = ax.imshow(clip.attention[shown], aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0,
                       vmax=vmax, extent=(0, SEGMENT_FRAMES * segments * hop, rows - 0.5, -0.5))
        for r in np.flatnonzero(absent):  # absent classes: a grey veil over the row
            ax.axhspan(r - 0.5, r + 0.5, color="0.85", alpha=0.75, linewidth=0)
        for r, a, b in spans:  # the ground truth, outlined where the attention should be
            ax.add_patch(Rectangle((a, r - 0.45), b - a, 0.9, fill=False, edgecolor="red", linewidth=0.9))
        ax.set_title(f"attention A: {clip.variant or f'variant {k + 1}'}", fontsize=9, loc="left")
        axes.append(ax)
        images.append(im)
    for ax in axes[1:]:
        ax.set_yticks(np.arange(rows), names, fontsize=fontsize)
        for tick, grey in zip(ax.get_yticklabels(), absent):
            tick.set_color("0.6" if grey else "black")
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    mel.set_xlim(0, seconds)
    axes[-1].set_xlabel("time (s)")
    low, high = axes[-1].get_position(), axes[len(axes) - len(images)].get_position()
    bar = fig.add_axes((high.x1 + 0.15 / width, low.y0, 0.15 / width, high.y1 - low.y0))  # panels keep their width
    fig.colorbar(images[-1], cax=bar, label="attention A (shared scale)")
    labels = [first.class_names[c] for c in present if c < len(first.class_names)]
    fig.suptitle(f"{first.clip_id}" + (f", trial {trial}" if trial is not None else "")
                 + f": labels {', '.join(labels) or 'none'}; {features}\n"
                 + ("red: the strong labels' events; " if spans else "no strong labels; ")
                 + "grey rows: classes absent from the clip", fontsize=9)
    fig.savefig(path)
    return Drawn(path, {"variants": [c.variant for c in clips], "clims": [im.get_clim() for im in images],
                        "rows": names, "greyed": [n for n, g in zip(names, absent) if g],
                        "title": fig.get_suptitle(), "features": features,
                        "xlims": [tuple(float(x) for x in ax.get_xlim()) for ax in axes],
                        "events": [(names[r], a, b) for r, a, b in spans]}, fig)


def plot_psd_roc(rocs: pd.DataFrame, variants: Sequence[str], path: Path) -> Drawn:
    """One panel per variant: each trial's PSD-ROC (effective TPR against eFPR per hour, PSDS1 scenario).

    ``rocs`` has one row per (trial, variant, efpr) with the ``tpr`` there (``psd_roc.csv``). PSDS1 is the
    area under such a curve up to 100 false positives per hour, divided by 100.
    """
    shown = [v for v in variants if (rocs["variant"] == v).any()]
    fig = Figure(figsize=(3.2 * max(len(shown), 1), 3.2), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, max(len(shown), 1), sharey=True, squeeze=False)[0]
    curves: dict[str, int] = {}
    for ax, variant in zip(axes, shown):
        mine = rocs[rocs["variant"] == variant]
        for _, trial in mine.groupby("trial"):
            ax.step(trial["efpr"], trial["tpr"], where="post", color="C0", alpha=0.35, linewidth=1)
        mean = mine.groupby("efpr")["tpr"].mean()
        ax.step(mean.index, mean.to_numpy(), where="post", color="C3", linewidth=1.8, label="mean over trials")
        curves[variant] = int(mine["trial"].nunique())
        ax.set_title(variant, fontsize=9)
        ax.set_xlabel("eFPR (per hour)")
        ax.set_xlim(0, float(rocs["efpr"].max()))
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("effective TPR")
    if shown:
        axes[0].legend(loc="lower right", fontsize=7)
    fig.suptitle("PSD-ROC, PSDS1 scenario (dtc = gtc = 0.7, α_st = 1)", fontsize=10)
    fig.savefig(path)
    return Drawn(path, {"variants": shown, "trials": curves}, fig)
