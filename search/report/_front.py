"""The report's Pareto front pictures (a search of several goals): validation accuracy against each goal
of size.

What one shows: every complete trial a point; the front strong and joined as a staircase, dominated
trials faded; trials at chance (:func:`search._goal.at_chance` of the validation split's chance
level, the run's ``val_chance`` tag) as grey crosses under a dotted line at the chance level, never
on the front; the constraint on that goal dashed; and the registered points ringed, each named by its
alias (``champion``: what ``export`` takes by default; ``picked``: ``export --pick``'s; ``exported``:
``export --trial``'s), so the picture says which model left. The size axis is logarithmic when the
sizes spread over more than 20×, with its ticks as people write sizes (``3k``, ``20k``, ``1.5M``),
never a label on each minor tick.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> points = [FrontPoint(0, 0.9, 5000.0, True), FrontPoint(1, 0.11, 50.0, False, at_chance=True)]
>>> figure = front_figure(points, "params", chance=0.1, aliases={0: ["champion"]})
>>> [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
['Pareto front', 'at chance (left off the front)', 'chance 0.100', 'registered: champion']
>>> size_text(1500), size_text(20000), size_text(2.5e6), size_text(0.25)
('1.5k', '20k', '2.5M', '0.25')
>>> matplotlib.pyplot.close(figure)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search._goal import GOAL, at_chance

ACCURACY = "validation accuracy"
#: The aliases the registry gives a search's models, ringed on the front when set (in this order).
ALIASES = ("champion", "picked", "exported")
#: Sizes spread over more than this factor are drawn on a logarithmic axis.
LOG_SPREAD = 20


@dataclass(frozen=True)
class FrontPoint:
    """One complete trial: its number, validation accuracy, size on the goal drawn, whether it is on the front."""

    trial: int
    accuracy: float
    size: float
    on_front: bool
    at_chance: bool = False


def size_text(value: float) -> str:
    """A size as people write it: ``950``, ``1.5k``, ``20k``, ``2.5M``, ``0.25``."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def front_figure(
    points: Sequence[FrontPoint],
    size: str,
    *,
    limit: float | None = None,
    chance: float | None = None,
    aliases: Mapping[int, Sequence[str]] | None = None,
) -> Any:
    """The picture of the module docstring for the goal of size ``size`` (its axis name)."""
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7.5, 4.2))
    front = sorted((p for p in points if p.on_front), key=lambda p: p.size)
    useless = [p for p in points if p.at_chance and not p.on_front]
    rest = [p for p in points if not p.on_front and not p.at_chance]
    if rest:
        ax.scatter([p.size for p in rest], [p.accuracy for p in rest], color="0.6", alpha=0.35, s=28, label="dominated")
    xs, ys = [p.size for p in front], [p.accuracy for p in front]
    ax.scatter(xs, ys, color="tab:blue", s=40, zorder=3, label="Pareto front")
    if front:
        ax.step(xs, ys, where="post", color="tab:blue", linewidth=1.2)
    for p in front:
        ax.annotate(str(p.trial), (p.size, p.accuracy), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if useless:
        xs, ys = [p.size for p in useless], [p.accuracy for p in useless]
        ax.scatter(xs, ys, marker="x", color="0.45", s=30, zorder=2, label="at chance (left off the front)")
    if chance is not None:
        ax.axhline(chance, color="0.3", linestyle=":", linewidth=1.2, label=f"chance {chance:.3f}")
    if limit is not None and points and limit <= 2 * max(p.size for p in points):  # a far limit would squash them
        ax.axvline(limit, color="tab:red", linestyle="--", linewidth=1.2, label=f"constraint {size_text(limit)}")
    _ring_registered(ax, points, aliases or {})
    sizes = [p.size for p in points if p.size > 0]
    if sizes and max(sizes) / min(sizes) > LOG_SPREAD:
        _log_axis(ax)
    ax.set_xlabel(f"{size} (lower is better)")
    ax.set_ylabel(ACCURACY)
    ax.set_title(f"Validation accuracy against {size}: {len(front)} of {len(points)} complete trials on the front")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return figure


def _ring_registered(ax: Any, points: Sequence[FrontPoint], aliases: Mapping[int, Sequence[str]]) -> None:
    """Ring each registered trial and write its aliases beside it; one legend entry for them all."""
    ringed = [(p, aliases[p.trial]) for p in points if aliases.get(p.trial)]
    for i, (p, names) in enumerate(ringed):
        label = "registered: " + ", ".join(sorted({n for _, ns in ringed for n in ns}, key=ALIASES.index))
        ax.scatter([p.size], [p.accuracy], s=170, facecolors="none", edgecolors="tab:orange", linewidths=1.8,
                   zorder=4, label=label if i == 0 else None)  # fmt: skip
        ax.annotate(" / ".join(names), (p.size, p.accuracy), textcoords="offset points", xytext=(6, -12),
                    fontsize=8, color="tab:orange")  # fmt: skip


def _log_axis(ax: Any) -> None:
    """A logarithmic size axis labelled at 1, 2 and 5 of each decade as sizes are written; no minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: size_text(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def registered_trials(client: Any, name: str) -> dict[int, list[str]]:
    """Trial number -> the aliases (:data:`ALIASES`) of search ``name``'s registered model that point at it."""
    found: dict[int, list[str]] = {}
    for alias in ALIASES:
        try:
            version = client.get_model_version_by_alias(name, alias)
        except Exception:  # no such model or alias: nothing registered under it
            continue
        trial = (version.tags or {}).get("trial")
        if trial is not None and str(trial).isdigit():
            found.setdefault(int(trial), []).append(alias)
    return found


def front_pictures(client: Any, name: str, parent: Any, children: list[Any], folder: Path, report: Any) -> None:
    """Draw :func:`front_figure` for each goal of size of a search of several goals (its run's ``goals``
    tag) into ``folder``; a one-goal search has none."""
    from search._goal import goal_named
    from search.report._files import save as _save

    goals = [g for g in parent.data.tags.get("goals", "").split(",") if g]
    if len(goals) < 2:
        return
    limits = json.loads(parent.data.tags.get("constraints") or "{}")
    chance = float(parent.data.tags["val_chance"]) if "val_chance" in parent.data.tags else None
    aliases = registered_trials(client, name)
    for i, metric in enumerate(goals[1:]):
        goal = goal_named(metric)
        points = [
            FrontPoint(int(r.data.tags["trial"]), r.data.metrics[GOAL.best_metric], r.data.metrics[goal.mlflow_metric],
                       r.data.tags.get("pareto_front") == "true",
                       at_chance(r.data.metrics[GOAL.best_metric], chance))
            for r in children
            if r.data.tags.get("state") == "complete" and {GOAL.best_metric, goal.mlflow_metric} <= set(r.data.metrics)
        ]  # fmt: skip
        picture = "pareto_front.png" if i == 0 else f"pareto_front_{goal.mlflow_metric}.png"
        if not points:
            report.missing[picture] = f"no complete trial with {metric}"
            continue
        figure = front_figure(points, metric, limit=limits.get(metric), chance=chance, aliases=aliases)
        useless = sum(p.at_chance for p in points)
        report.captions[picture] = (
            f"Validation accuracy against {metric} ({goal.measured}); the Pareto front strong, dominated trials "
            "faded" + (f"; the constraint: {metric} at most {limits[metric]:g}" if metric in limits else "")
            + (f"; {useless} trial(s) at chance left off the front" if useless else "")
            + ("; ringed: the registered models (" + ", ".join(
                f"{'/'.join(a)} = trial {t}" for t, a in sorted(aliases.items())) + ")" if aliases else "") + "."
        )  # fmt: skip
        _save(figure, folder / picture, report)
