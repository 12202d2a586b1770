"""The report's static pictures, drawn with matplotlib in the search's own words.

Each function returns a matplotlib ``Figure`` (saved by the caller), so the labels can be read back:

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> figure = learning_curves_figure([Curve(0, "complete", {0: 0.5, 1: 0.75})])
>>> figure.axes[0].get_xlabel(), figure.axes[0].get_ylabel(), float(figure.axes[0].get_xlim()[0])
('epoch', 'validation accuracy', 0.85)
>>> matplotlib.pyplot.close(figure)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Below this many completed trials the importances are marked unreliable, in the picture and its caption.
#: fANOVA fits a random forest to (parameters -> validation accuracy) and splits the variance of its
#: predictions among the parameters; with few trials the forest mostly fits noise. Measured on a
#: synthetic search of 6 parameters where one clearly matters most (accuracy 0.6 + 0.15·p0 + 0.05·p1,
#: noise sd 0.04, 20 searches per size): fANOVA ranked that parameter first in 9/20 searches of 5 trials,
#: 11/20 of 8, 15/20 of 12, 18/20 of 20 and 20/20 of 30. From 20 trials on the ranking is mostly right.
MIN_TRIALS_FOR_IMPORTANCES = 20

ACCURACY = "validation accuracy"
UNUSED = "unused"  # the position of a parameter a trial did not have (a block its network lacks)


@dataclass(frozen=True)
class Curve:
    """One trial for the search pictures: its number, state, per-epoch accuracy (epoch index from 0)."""

    trial: int
    state: str  # complete or pruned
    history: dict[int, float]
    value: float | None = None  # the trial's validation accuracy (complete trials)
    params: dict[str, Any] | None = None
    reason: str = ""  # why a pruned trial stopped ("pruner: ...", "not_learning: ...", "timeout: ...")
    start_point: int | None = None  # which of the space's start points this trial was (None: a searched trial)

    @property
    def best(self) -> float | None:
        """The accuracy to plot: the trial's value, or the best epoch of a pruned trial."""
        if self.value is not None:
            return self.value
        return max(self.history.values()) if self.history else None


def history_figure(curves: Sequence[Curve], counts: dict[str, int]) -> Any:
    """Each trial's validation accuracy against its trial number, the best so far, and the best start
    point's as a line: what the search paid over the space's own defaults (issue 32)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, ax = plt.subplots(figsize=(7.5, 4.2))
    done = [c for c in curves if c.state == "complete" and c.best is not None]
    pruned = [c for c in curves if c.state == "pruned" and c.best is not None]
    ax.scatter(
        [c.trial for c in done],
        [float(c.best or 0.0) for c in done],
        s=36,
        color="#1f77b4",
        zorder=3,
        label="completed trial",
    )
    if pruned:
        ax.scatter(
            [c.trial for c in pruned],
            [float(c.best or 0.0) for c in pruned],
            s=40,
            marker="x",
            color="#888888",
            zorder=3,
            label="pruned trial (its best epoch before it stopped)",
        )
    if done:
        xs, ys, best = [], [], -math.inf
        for c in sorted(done, key=lambda c: c.trial):
            best = max(best, float(c.best or 0.0))
            xs.append(c.trial)
            ys.append(best)
        last = max(c.trial for c in curves)
        ax.step([*xs, last], [*ys, ys[-1]], where="post", color="#d62728", lw=1.8, label="best so far", zorder=2)
        winner = max(done, key=lambda c: float(c.best or 0.0))
        ax.annotate(
            f"best: trial {winner.trial}, {winner.best:.4f}",
            (winner.trial, winner.best),
            xytext=(0, 10),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            color="#d62728",
        )
    starts = [float(c.best) for c in done if c.start_point is not None and c.best is not None]
    if starts:
        ax.axhline(max(starts), color="#2ca02c", ls="--", lw=1.2, label="best start point", zorder=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(ACCURACY)
    ax.grid(alpha=0.3)
    ax.margins(y=0.15)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    ax.set_title(f"{ACCURACY} of each trial: {describe_counts(counts)}", fontsize=9)
    return figure


def learning_curves_figure(curves: Sequence[Curve]) -> Any:
    """Validation accuracy after each epoch (counted from 1) of every trial; pruned trials dashed, ending in x."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    figure, ax = plt.subplots(figsize=(7.5, 4.2))
    drawn = [c for c in curves if c.history]
    done = [c for c in drawn if c.state == "complete"]
    winner = max(done, key=lambda c: float(c.best or 0.0)) if done else None
    for c in sorted(drawn, key=lambda c: c is winner):
        steps = sorted(c.history)
        xs, ys = [e + 1 for e in steps], [c.history[e] for e in steps]
        if c is winner:
            ax.plot(xs, ys, color="#d62728", lw=2.4, marker="o", ms=4, zorder=4)
        elif c.state == "pruned":
            ax.plot(xs, ys, color="#888888", lw=1.2, ls="--", alpha=0.9, zorder=2)
            ax.plot(xs[-1], ys[-1], marker="x", color="#555555", ms=7, zorder=3)
        else:
            ax.plot(xs, ys, color="#1f77b4", lw=1.2, alpha=0.7, marker="o", ms=2.5, zorder=3)
    handles = [Line2D([], [], color="#1f77b4", lw=1.2, marker="o", ms=2.5, label="completed trial")]
    if winner is not None:
        handles.insert(
            0, Line2D([], [], color="#d62728", lw=2.4, marker="o", ms=4, label=f"best: trial {winner.trial}")
        )
    if any(c.state == "pruned" for c in drawn):
        handles.append(
            Line2D([], [], color="#888888", lw=1.2, ls="--", marker="x", label="pruned trial (× where it stopped)")
        )
    epochs = max((max(c.history) + 1 for c in drawn), default=1)
    ax.set_xlim(0.85, max(epochs, 2) + 0.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ACCURACY)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    ax.set_title(f"{ACCURACY} after each epoch, {len(drawn)} trials", fontsize=9)
    return figure


def importances_figure(importances: dict[str, float], completed: int) -> Any:
    """fANOVA importances as bars, the number of trials said, and a warning below the threshold."""
    import matplotlib.pyplot as plt

    names = list(importances)[::-1]  # most important on top
    values = [importances[n] for n in names]
    figure, ax = plt.subplots(figsize=(7.5, 0.32 * len(names) + 1.6))
    ax.barh(range(len(names)), values, color="#4c72b0", height=0.65)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, max([*values, 0.01]) * 1.15)
    ax.set_xlabel(f"importance: share of the variance of {ACCURACY} (fANOVA)")
    ax.set_ylabel("parameter")
    title = f"parameter importances from {completed} completed trials"
    if completed < MIN_TRIALS_FOR_IMPORTANCES:
        title += f"\nunreliable below {MIN_TRIALS_FOR_IMPORTANCES} completed trials: the ranking may change with more"
    ax.set_title(title, fontsize=9, color="#b22222" if completed < MIN_TRIALS_FOR_IMPORTANCES else "black")
    ax.grid(axis="x", alpha=0.3)
    return figure


def _axis(values: list[Any]) -> tuple[Any, list[tuple[float, str]]]:
    """How one parameter maps to a height in [0, 1]: (function, ticks). Few distinct values are spaced
    evenly in order (8, 16, 32 or relu, elu); many numbers are placed linearly, or on a log scale when
    they span more than a decade (a learning rate)."""
    present = [v for v in values if v is not None]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    distinct = sorted(set(present), key=lambda v: v if numeric else str(v))
    whole = numeric and all(float(v).is_integer() for v in present)
    if not numeric or (whole and len(distinct) <= 6) or len(distinct) <= 1:
        if len(distinct) == 1:
            spots = {distinct[0]: 0.5}
        else:
            spots = {v: i / (len(distinct) - 1) for i, v in enumerate(distinct)}
        ticks = [(spots[v], _short(v)) for v in distinct]
        return (lambda v: spots[v]), ticks
    lo, hi = float(min(present)), float(max(present))
    log = lo > 0 and hi / lo > 10
    scale = (lambda v: math.log10(v)) if log else (lambda v: v)
    a, b = scale(lo), scale(hi)

    def place(v: Any) -> float:
        return (scale(float(v)) - a) / (b - a)

    marks = [lo, (10 ** ((a + b) / 2)) if log else (lo + hi) / 2, hi]
    return place, [(place(m), f"{m:.3g}") for m in marks]


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3g}"
    text = str(value)
    return text if len(text) <= 14 else text[:13] + "…"


def parallel_figure(curves: Sequence[Curve], params: Sequence[str]) -> Any:
    """Each completed trial as a line through ``params`` and its validation accuracy (the last axis,
    drawn as the viridis colour scale of the lines: dark = low, yellow = high)."""
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    done = sorted(
        (c for c in curves if c.state == "complete" and c.value is not None), key=lambda c: float(c.value or 0)
    )
    values = [float(c.value or 0.0) for c in done]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.005, hi + 0.005
    norm, cmap = Normalize(lo, hi), colormaps["viridis"]
    axes = [_axis([(c.params or {}).get(p) for c in done]) for p in params]
    unused = -0.14
    count = len(params) + 1
    figure, ax = plt.subplots(figsize=(1.55 * count + 1.2, 5.0))
    for c, v in zip(done, values, strict=True):
        ys = [
            unused if (c.params or {}).get(p) is None else place((c.params or {})[p])
            for p, (place, _) in zip(params, axes, strict=True)
        ]
        ys.append(float(norm(v)))
        best = c is done[-1]
        ax.plot(
            range(count),
            ys,
            color=cmap(norm(v)),
            lw=2.8 if best else 1.5,
            alpha=0.95 if best else 0.8,
            zorder=3 if best else 2,
        )
    box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
    for i, (_, ticks) in enumerate(axes):
        ax.axvline(i, color="#444444", lw=1.0, zorder=1)
        for y, label in ticks:
            ax.text(i + 0.05, y, label, fontsize=7.5, va="center", ha="left", bbox=box, zorder=5)
        if any((c.params or {}).get(params[i]) is None for c in done):
            ax.text(i + 0.05, unused, UNUSED, fontsize=7, va="center", ha="left", color="#777777", bbox=box, zorder=5)
    _colour_scale(ax, cmap, count - 1, lo, hi)
    names = ["\n".join(p.split("/")) for p in params] + [ACCURACY.replace(" ", "\n")]
    ax.set_xticks(range(count), names, fontsize=8)
    ax.tick_params(axis="x", length=0, pad=6)
    ax.set_yticks([])
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(-0.15, count - 1 + 0.55)
    ax.set_ylim(unused - 0.08, 1.06)
    ax.set_title(
        f"{len(done)} completed trials through the {len(params)} most important parameters,"
        f" coloured by {ACCURACY} (yellow = best)",
        fontsize=9,
    )
    return figure


def _colour_scale(ax: Any, cmap: Any, x: float, lo: float, hi: float) -> None:
    """The accuracy axis at ``x``: the lines' colour scale from ``lo`` to ``hi``, with five of its values."""
    import numpy as np

    gradient = np.linspace(0, 1, 256)[:, None]
    ax.imshow(gradient, cmap=cmap, aspect="auto", extent=(x - 0.06, x + 0.06, 0, 1), origin="lower", zorder=4)
    for y in np.linspace(0, 1, 5):
        ax.text(x + 0.1, y, f"{lo + y * (hi - lo):.3f}", fontsize=7.5, va="center", ha="left", zorder=5)


def filters_figure(layer: Any) -> tuple[Any, str]:
    """The first convolution's kernels: in colour when they read 3 channels (each kernel scaled to
    0-1 over its R, G and B weights), otherwise one panel per kernel and input channel (blue negative,
    red positive). Returns the figure and how it is drawn, for the caption."""
    import matplotlib.pyplot as plt
    import numpy as np

    kernel = np.asarray(layer.get_weights()[0])  # (k, k, in, out), or (k, k, in, multiplier) for depthwise kinds
    size, channels = kernel.shape[0], kernel.shape[2]
    depthwise = type(layer).__name__ in ("SeparableConv2D", "DepthwiseConv2D")
    names = ["R", "G", "B"] if channels == 3 else [f"in {i}" for i in range(channels)]
    if channels == 3 and not depthwise:
        return _colour_filters(layer, kernel)
    if depthwise:  # one kernel per input channel (and multiplier)
        panels = [
            (kernel[:, :, c, m], f"{names[c]} ×{m}" if kernel.shape[3] > 1 else names[c])
            for m in range(kernel.shape[3])
            for c in range(channels)
        ]
    elif channels == 1:
        panels = [(kernel[:, :, 0, i], f"filter {i}") for i in range(kernel.shape[-1])]
    else:  # per channel: filter i on input channel c
        panels = [(kernel[:, :, c, i], f"f{i} {names[c]}") for i in range(kernel.shape[-1]) for c in range(channels)]
    panels = panels[:32]
    cols = min(8, len(panels))
    rows = (len(panels) + cols - 1) // cols
    scale = max(float(np.abs(kernel).max()), 1e-12)
    figure, axes = plt.subplots(rows, cols, figsize=(1.15 * cols + 0.8, 1.25 * rows + 0.6), squeeze=False)
    image = None
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(panels):
            ax.axis("off")
            continue
        image = ax.imshow(panels[i][0], cmap="coolwarm", vmin=-scale, vmax=scale, interpolation="nearest")
        ax.set_title(panels[i][1], fontsize=7)
    if image is not None:
        figure.colorbar(image, ax=list(axes.flat), shrink=0.8, label="weight")
    how = "per input channel" if channels > 1 else "one panel per kernel"
    figure.suptitle(
        f"{layer.name}: {len(panels)} kernels, {size}x{size}, {how} (blue negative, red positive weights)", fontsize=8.5
    )
    return figure, how


def _colour_filters(layer: Any, kernel: Any) -> tuple[Any, str]:
    """:func:`filters_figure` of a convolution reading 3 channels: each kernel one RGB image."""
    import matplotlib.pyplot as plt

    size = kernel.shape[0]
    n = min(kernel.shape[-1], 32)
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(1.15 * cols, 1.25 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        w = kernel[:, :, :, i]
        w = (w - w.min()) / max(float(w.max() - w.min()), 1e-12)
        ax.imshow(w, interpolation="nearest")
        ax.set_title(f"filter {i}", fontsize=7)
    how = "in colour: each kernel's R, G, B weights scaled together to 0–1"
    figure.suptitle(
        f"{layer.name}: {n} of {kernel.shape[-1]} kernels, {size}x{size}x3, {how}\n"
        "(a pixel's colour: the mix of R, G, B the kernel weighs most there; grey: the three weighed alike)",
        fontsize=8.5,
    )
    return figure, how


def pick_images(labels: Any, rows: int = 4) -> list[int]:
    """Indices of up to ``rows`` validation images, one per class first (so the rows differ).

    >>> pick_images([3, 3, 1, 0, 1, 2], rows=4)
    [0, 2, 3, 5]
    """
    chosen: list[int] = []
    seen: set[int] = set()
    for i, label in enumerate(labels):
        if int(label) not in seen:
            seen.add(int(label))
            chosen.append(i)
        if len(chosen) == rows:
            return chosen
    rest = [i for i in range(len(labels)) if i not in chosen]
    return sorted(chosen + rest[: rows - len(chosen)])


def feature_maps_figure(
    images: Any, maps: Any, truth: Sequence[str], predicted: Sequence[str], layer_name: str, shown: int = 8
) -> tuple[Any, list[int]]:
    """Each image (titled with its true and predicted class) and the ``shown`` channels of ``maps``
    that respond most over these images, each panel titled with its channel index and each channel
    on one colour scale across the rows."""
    import matplotlib.pyplot as plt
    import numpy as np

    strength = maps.reshape(-1, maps.shape[-1]).mean(axis=0)
    channels = sorted(np.argsort(strength)[::-1][: min(shown, maps.shape[-1])].tolist())
    rows = len(images)
    figure, axes = plt.subplots(
        rows, len(channels) + 1, figsize=(1.15 * (len(channels) + 1), 1.45 * rows + 0.7), squeeze=False
    )
    for r, image in enumerate(images):
        ax = axes[r, 0]
        if image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray")
        else:
            ax.imshow(np.clip(image, 0, 255).astype("uint8"))
        right = truth[r] == predicted[r]
        ax.set_title(
            f"true: {truth[r]}\npredicted: {predicted[r]}", fontsize=7, color="#2a7a2a" if right else "#b22222"
        )
        for j, c in enumerate(channels):
            top = float(maps[:, :, :, c].max()) or 1.0
            axes[r, j + 1].imshow(
                maps[r, :, :, c], cmap="viridis", vmin=float(min(0.0, maps[:, :, :, c].min())), vmax=top
            )
            axes[r, j + 1].set_title(f"channel {c}", fontsize=7)
        for c in range(len(channels) + 1):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
    figure.suptitle(
        f"output of {layer_name}: "
        + (
            f"the {len(channels)} most active of {maps.shape[-1]} channels"
            if len(channels) < maps.shape[-1]
            else f"its {len(channels)} channels"
        )
        + " (bright = strong; one scale per channel)",
        fontsize=8.5,
    )
    figure.tight_layout()
    return figure, channels


#: Why a trial in state "pruned" stopped early, by the first word of its reason.
STOPS = {
    "pruner": "cut by the pruner",
    "not_learning": "not learning (training accuracy at chance)",
    "val_collapse": "validation accuracy collapsed to chance",
    "timeout": "stopped at the search's time limit",
}


def describe_stops(reasons: Sequence[str]) -> str:
    """Why the pruned trials stopped, counted by kind.

    >>> describe_stops(["pruner: stopped after epoch 1", "not_learning: ...", "pruner: stopped after epoch 2"])
    '2 cut by the pruner, 1 not learning (training accuracy at chance)'
    """
    kinds: dict[str, int] = {}
    for reason in reasons:
        kind = reason.split(":", 1)[0].strip()
        text = STOPS.get(kind, "stopped early")
        kinds[text] = kinds.get(text, 0) + 1
    return ", ".join(f"{n} {text}" for text, n in kinds.items())


def describe_counts(counts: dict[str, int]) -> str:
    """``8 trials: 5 completed, 2 pruned, 1 infeasible``; a state with no trial is not named.

    >>> describe_counts({"complete": 4})
    '4 trials: 4 completed'
    >>> describe_counts({"complete": 5, "pruned": 2, "infeasible": 1})
    '8 trials: 5 completed, 2 pruned, 1 infeasible'
    """
    words = {"complete": "completed"}
    parts = [f"{n} {words.get(state, state)}" for state, n in counts.items() if n]
    total = sum(counts.values())
    return f"{total} trial{'s' if total != 1 else ''}: " + ", ".join(parts)


def describe(figure: Any) -> str:
    """Text for the picture's alt text and PNG metadata: its titles, axis names and legends."""
    parts = []
    if figure.get_suptitle():
        parts.append(" ".join(figure.get_suptitle().split()))
    labelled = []
    for ax in figure.axes:
        title = " ".join(ax.get_title().split())
        if title:
            labelled.append(title)
        if ax.get_xlabel() or ax.get_ylabel():
            parts.append(f"x axis: {ax.get_xlabel() or '-'}; y axis: {ax.get_ylabel() or '-'}")
        elif ticks := [" ".join(t.get_text().split()) for t in ax.get_xticklabels() if t.get_text()]:
            parts.append("axes: " + ", ".join(ticks))  # the parallel coordinates name their axes by ticks
        if legend := ax.get_legend():
            parts.append("legend: " + ", ".join(t.get_text() for t in legend.get_texts()))
    if labelled:
        parts.append("panels: " + " | ".join(labelled[:40]))
    return ". ".join(parts)
