"""What searching paid: the winner against the space's own start points (issue 32, item 5).

A space's start points are hand-designed architectures tried first; a search whose winner is one of them
added nothing over its defaults. So when the winner is registered, the search's MLflow run gets:

* ``best_start_point_val_accuracy``: the best validation accuracy (at its best epoch) of any start point;
* ``gain_over_start_points``: the winner's validation accuracy minus that, in points (0 when a start point
  won; negative only where the champion rule is not the best validation accuracy, e.g. a re-check);
* tag ``winner_from``: ``start point N`` (also when a sampled trial drew exactly a start point's parameters:
  that is the start point trained again, whatever its seed made of it) or ``search``;

and ``run`` says it beside the winner: "trial 14 won, +5.7 points of validation accuracy over the best start
point" or "a start point won (start point 0): more trials or epochs may find better". Validation, never test:
the test split is evaluated once, for the winner only. Nothing is said for a space without start points.

The same line names the runner-up and what differs (issue 34, item 1): "; runner-up trial 3 (0.8556,
8.5 points behind): it differs in block_0/filters 16 (8), blocks/depth 2 (1)"; the run gets tag
``runner_up`` and metric ``lead_over_runner_up`` (points of validation accuracy), and the whole line as
tag ``winner_why`` (shown by the report beside the winner).
"""

from __future__ import annotations

import logging
from typing import Any

from search._goal import GOAL

log = logging.getLogger("search")


def search_paid(client: Any, parent_run_id: str, winner: int) -> tuple[dict[str, float], dict[str, str], str] | None:
    """(metrics, tags, the line to say) for the search under ``parent_run_id`` whose winner is trial
    ``winner``; None when it has no start point with a validation accuracy, or the winner has none."""
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=50_000
    )
    values: dict[int, float] = {}
    params: dict[int, dict[str, str]] = {}
    starts: dict[int, int] = {}  # trial -> start point index
    for run in runs:
        tags = run.data.tags
        if tags.get("phase") == "recheck" or "trial" not in tags or GOAL.best_metric not in run.data.metrics:
            continue
        trial = int(tags["trial"])
        values[trial], params[trial] = float(run.data.metrics[GOAL.best_metric]), dict(run.data.params)
        if "start_point" in tags:
            starts[trial] = int(tags["start_point"])
    if not starts or winner not in values:
        return None
    best_start = max(starts, key=lambda t: (values[t], -t))
    base, won = values[best_start], values[winner]
    gain = 100 * (won - base)
    # a sampled trial that drew a start point's very parameters is that start point trained again
    same = starts.get(winner, next((starts[t] for t in starts if params[t] == params[winner]), None))
    if same is not None:
        again = "" if winner in starts else f", its parameters drawn again in trial {winner}"
        source = f"start point {same}"
        line = (
            f"a start point won (start point {same}{again}): the search found nothing better than the space's "
            f"own defaults in {len(values)} trials; more trials or epochs may help"
        )
        gain = 0.0 if winner in starts else gain
    else:
        source = "search"
        line = (
            f"trial {winner} won, {gain:+.1f} points of validation accuracy over the best start point "
            f"(start point {starts[best_start]}, trial {best_start}: {base:.4f})"
        )
    metrics = {"best_start_point_val_accuracy": base, "gain_over_start_points": gain}
    tags = {"winner_from": source}
    runner = runner_up(values, params, winner)
    if runner is not None:
        trial, said = runner
        metrics["lead_over_runner_up"], tags["runner_up"] = 100 * (won - values[trial]), str(trial)
        line += f"; {said}"
    tags["winner_why"] = line  # the same words on the report's page and the model card
    return metrics, tags, line


def runner_up(values: dict[int, float], params: dict[int, dict[str, str]], winner: int) -> tuple[int, str] | None:
    """(the runner-up trial, what to say of it): the next best validation accuracy after ``winner``'s, by
    how many points it trails and the parameters that differ (the winner's value, then the runner-up's in
    brackets; "-" where one network lacks the parameter, e.g. a block beyond its depth). None: no other
    trial. A runner-up with the winner's very parameters is the same network trained again: said so."""
    others = [t for t in values if t != winner]
    if not others:
        return None
    trial = max(others, key=lambda t: (values[t], -t))
    won, theirs = params[winner], params[trial]
    differ = [k for k in sorted({*won, *theirs}) if won.get(k) != theirs.get(k)]
    shown = ", ".join(f"{k} {_values(won.get(k, '-'), theirs.get(k, '-'))}" for k in differ[:RUNNER_UP_SHOWN])
    more = f" and {len(differ) - RUNNER_UP_SHOWN} more" if len(differ) > RUNNER_UP_SHOWN else ""
    what = f"it differs in {shown}{more}" if differ else "the same parameters, another training run"
    lead = 100 * (values[winner] - values[trial])
    return trial, f"runner-up trial {trial} ({values[trial]:.4f}, {lead:.1f} points behind): {what}"


def _values(mine: str, theirs: str) -> str:
    """``mine (theirs)``, a fraction such as a learning rate to 3 significant digits, or as many more (up to
    8) as it takes to tell the two apart.

    >>> _values("0.0075529643771195505", "0.007553400339169638"), _values("16", "8"), _values("0.003", "-")
    ('0.0075530 (0.0075534)', '16 (8)', '0.003 (-)')
    """

    def number(text: str) -> float | None:
        try:
            return float(text) if not text.lstrip("-").isdigit() else None
        except ValueError:
            return None

    a, b = number(mine), number(theirs)
    for digits in range(3, 9):
        said = [f"{x:.{digits}g}" if x is not None else text for x, text in ((a, mine), (b, theirs))]
        if said[0] != said[1] or mine == theirs:
            break
    if a is not None and b is not None and digits > 3:  # the same number of decimals on both
        decimals = max(len(f"{x:.{digits}g}".partition(".")[2]) for x in (a, b))
        said = [f"{a:.{decimals}f}", f"{b:.{decimals}f}"]
    return f"{said[0]} ({said[1]})"


#: How many of the parameters in which the runner-up differs ``run`` names (the rest are counted).
RUNNER_UP_SHOWN = 4
