"""The goal of a search: the metric a trial is judged by, which way is better, and how it is measured.

Every search has the accuracy goal, :data:`GOAL`: validation accuracy at the trial's best epoch, higher
is better. Everything that judges trials reads it rather than spelling the metric itself: the training
callback (which epoch is best, which weights are kept), the value reported to the pruner, the model
kept on disk, the best-first order of every table, Optuna's study direction, KerasTuner's
``Objective``, the progress lines and the report.

A search may add goals of size (:data:`GOALS`, ``--goals val_accuracy,params``): then it has several
objectives, and its result is a Pareto front (:func:`pareto_front`), not one number. Every goal of size
is known before training: ``params`` and ``flops`` from the layer plan; ``model_bytes:FORMAT`` and
``latency_ms:RUNTIME`` measured on the model written in that format right after it is built
(:mod:`search.training._measure`). ``val_accuracy`` is always the first goal, and the champion is chosen
on the front by a stated rule (:data:`CHAMPION_RULE`).

>>> GOAL.metric, GOAL.direction
('val_accuracy', 'maximize')
>>> GOAL.better(0.9, than=0.8), GOAL.better(0.8, than=0.8), GOAL.better(0.5, than=None)
(True, False, True)
>>> GOAL.best_metric, GOAL.reached_perfect(1.0), GOAL.reached_perfect(0.99)
('best_val_accuracy', True, False)
>>> [r["trial"] for r in GOAL.best_first([{"trial": 0, "val_accuracy": 0.5}, {"trial": 1, "val_accuracy": None},
...                                        {"trial": 2, "val_accuracy": 0.9}, {"trial": 3, "val_accuracy": 0.9}])]
[2, 3, 0, 1]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

#: The metric names a trial's training records (Keras's names, ``val_`` for the validation split).
ACCURACY, LOSS = "accuracy", "loss"
VAL_ACCURACY, VAL_LOSS = "val_accuracy", "val_loss"

Row = TypeVar("Row", bound=Mapping[str, Any])


@dataclass(frozen=True)
class Goal:
    """One metric and its direction. ``measured`` says how, in words for tables and model cards."""

    metric: str
    direction: Literal["maximize", "minimize"]
    measured: str
    #: A value no epoch can beat (accuracy 1.0): a trial that reaches it stops (no later epoch can do better).
    perfect: float | None = None
    #: The name of the trial's MLflow metric that carries it (``best_val_accuracy``, ``num_params``...).
    mlflow_metric: str = ""
    #: Measured on the built model written in a format (``model_bytes:tflite``, ``latency_ms:onnx``), not planned.
    measured_on: str | None = None

    @property
    def best_metric(self) -> str:
        """The MLflow metric of a trial's value at its best epoch (``best_val_accuracy``)."""
        return f"best_{self.metric}"

    def reached_perfect(self, value: float) -> bool:
        return self.perfect is not None and not self.better(self.perfect, than=value)

    @property
    def worst(self) -> float:
        """A value every real value beats (the start of a running best)."""
        return -math.inf if self.direction == "maximize" else math.inf

    def better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` beats ``than`` (``None``: nothing yet). A tie is not better: the earlier trial stays."""
        if than is None:
            return True
        return value > than if self.direction == "maximize" else value < than

    def sort_key(self, value: float | None, trial: int) -> tuple[bool, float, int]:
        """Best first, trials without a value last, ties in trial order."""
        if value is None:
            return (True, 0.0, trial)
        return (False, -value if self.direction == "maximize" else value, trial)

    def best_first(self, rows: Iterable[Row]) -> list[Row]:
        """Rows (``{"trial": n, <metric>: value, ...}``) in best-first order (see :meth:`sort_key`)."""
        return sorted(rows, key=lambda r: self.sort_key(r[self.metric], r["trial"]))

    def best_of(self, rows: Iterable[Row]) -> Row | None:
        """The best row with a value (the earliest trial of a tie), or ``None``."""
        ranked = self.best_first(r for r in rows if r[self.metric] is not None)
        return ranked[0] if ranked else None

    @property
    def keras_tuner_direction(self) -> str:
        return "max" if self.direction == "maximize" else "min"


#: The goal of every search: the first of its goals.
GOAL = Goal(
    VAL_ACCURACY,
    "maximize",
    "validation accuracy at the trial's best epoch",
    perfect=1.0,
    mlflow_metric=f"best_{VAL_ACCURACY}",
)

#: The goals a search may name (``--goals``), by name.
GOALS: dict[str, Goal] = {
    GOAL.metric: GOAL,
    "params": Goal(
        "params", "minimize", "parameters of the model (from its layer plan)", mlflow_metric="num_params",
    ),
    "flops": Goal(
        "flops", "minimize", "FLOPs per image, 2 x multiply-adds (from its layer plan)", mlflow_metric="flops",
    ),
}  # fmt: skip

#: The runtimes (formats) a goal or constraint can be measured on: ``latency_ms:tflite``.
RUNTIMES = ("keras", "tflite", "onnx")
#: The measured families, and the runtime a constraint is measured on when no goal names one.
MEASURED = {
    "latency_ms": "median latency in ms of one image (batch 1) on {runtime}, on this machine's cores",
    "model_bytes": "bytes of the model written as {runtime}",
}
DEFAULT_RUNTIME = "tflite"


def measured_goal(family: str, runtime: str) -> Goal:
    """The goal ``FAMILY:RUNTIME`` (``latency_ms:tflite``).

    >>> measured_goal("latency_ms", "onnx").mlflow_metric
    'latency_ms_onnx'
    """
    return Goal(
        f"{family}:{runtime}",
        "minimize",
        MEASURED[family].format(runtime=runtime),
        mlflow_metric=f"{family}_{runtime}",
        measured_on=runtime,
    )


def goal_named(name: str, *, what: str = "goals") -> Goal:
    """The goal called ``name`` (:data:`GOALS`, or ``latency_ms:RUNTIME`` / ``model_bytes:RUNTIME``)."""
    from search._errors import SearchError

    if name in GOALS:
        return GOALS[name]
    family, _, runtime = name.partition(":")
    if family in MEASURED:
        if runtime in RUNTIMES:
            return measured_goal(family, runtime)
        raise SearchError(
            f"{what}: {family} is measured on a runtime: expected "
            + ", ".join(f"{family}:{r}" for r in RUNTIMES)
            + f"; received {name!r}"
        )
    known = [*GOALS, *(f"{f}:RUNTIME" for f in MEASURED)]
    raise SearchError(f"{what}: unknown goal {name!r}; expected names from {', '.join(known)}")


#: How the champion is chosen among several goals (said in the README and on the model card).
CHAMPION_RULE = "the most accurate trial on the Pareto front (every trial that ran met the constraints)"


def parse_goals(goals: str | Sequence[str] | None, *, what: str = "goals") -> tuple[Goal, ...]:
    """The goals named in ``goals`` (``"val_accuracy,params"`` or a sequence of names), accuracy first;
    ``None`` or empty: accuracy alone. Unknown names, a repeated name and goals without ``val_accuracy``
    are refused, naming what was expected and what was received.

    >>> [g.metric for g in parse_goals("params, val_accuracy")]
    ['val_accuracy', 'params']
    >>> parse_goals(None) == (GOAL,)
    True
    >>> [g.metric for g in parse_goals("val_accuracy,latency_ms:tflite")]
    ['val_accuracy', 'latency_ms:tflite']
    >>> parse_goals("val_accuracy,latency")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    search._errors.SearchError: goals: unknown goal 'latency'; expected names from val_accuracy, params, ...
    >>> parse_goals("val_accuracy,latency_ms")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    search._errors.SearchError: goals: latency_ms is measured on a runtime: expected latency_ms:keras, ...
    >>> parse_goals("params")
    Traceback (most recent call last):
    ...
    search._errors.SearchError: goals: val_accuracy must be one of them (trials are judged by it); received params
    """
    from search._errors import SearchError

    names = [n.strip() for n in goals.split(",")] if isinstance(goals, str) else list(goals or [])
    names = [n for n in names if n]
    if not names:
        return (GOAL,)
    named = [goal_named(n, what=what) for n in names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SearchError(f"{what}: each goal once; received {', '.join(repeated)} more than once")
    if GOAL.metric not in names:
        raise SearchError(
            f"{what}: {GOAL.metric} must be one of them (trials are judged by it); received {', '.join(names)}"
        )
    return (GOAL, *(g for g in named if g is not GOAL))


def dominates(a: Mapping[str, Any], b: Mapping[str, Any], goals: Sequence[Goal]) -> bool:
    """Whether row ``a`` is at least as good as ``b`` on every goal and better on one.

    >>> g = parse_goals("val_accuracy,params")
    >>> dominates({"val_accuracy": 0.9, "params": 100}, {"val_accuracy": 0.8, "params": 100}, g)
    True
    >>> dominates({"val_accuracy": 0.9, "params": 200}, {"val_accuracy": 0.8, "params": 100}, g)
    False
    """
    at_least = all(not goal.better(b[goal.metric], than=a[goal.metric]) for goal in goals)
    return at_least and any(goal.better(a[goal.metric], than=b[goal.metric]) for goal in goals)


#: "At chance": an accuracy within this fraction of the way from chance (the largest class's share) to 1.
NEAR_CHANCE = 0.05


def chance_floor(chance: float) -> float:
    """The accuracy at or below which a model is at chance: ``chance + NEAR_CHANCE * (1 - chance)``
    (0.145 for ten balanced classes, 0.2875 for four).

    >>> round(chance_floor(0.1), 4), round(chance_floor(0.25), 4)
    (0.145, 0.2875)
    """
    return chance + NEAR_CHANCE * (1 - chance)


def at_chance(accuracy: float | None, chance: float | None) -> bool:
    """Whether ``accuracy`` is at or below :func:`chance_floor` of ``chance``; False when either is unknown.

    >>> at_chance(0.14, 0.1), at_chance(0.15, 0.1), at_chance(None, 0.1), at_chance(0.05, None)
    (True, False, False, False)
    """
    return accuracy is not None and chance is not None and accuracy <= chance_floor(chance)


def pareto_front(rows: Iterable[Row], goals: Sequence[Goal], *, chance: float | None = None) -> list[int]:
    """The trial numbers of the rows no other row dominates, among those with a value for every goal
    (complete trials), in trial order. Equal rows are all on the front. With ``chance`` (the validation
    split's largest class share) a row at chance (:func:`chance_floor`) is left out: however small, a
    model that learnt nothing is no point of a trade-off, and ``export --pick params`` would take it.

    >>> g = parse_goals("val_accuracy,params")
    >>> rows = [{"trial": 0, "val_accuracy": 0.9, "params": 500}, {"trial": 1, "val_accuracy": 0.8, "params": 100},
    ...         {"trial": 2, "val_accuracy": 0.7, "params": 300}, {"trial": 3, "val_accuracy": None, "params": 50},
    ...         {"trial": 4, "val_accuracy": 0.11, "params": 20}]
    >>> pareto_front(rows, g), pareto_front(rows, g, chance=0.1)
    ([0, 1, 4], [0, 1])
    """
    valued = [
        r
        for r in rows
        if all(r.get(goal.metric) is not None for goal in goals) and not at_chance(r[GOAL.metric], chance)
    ]
    front = [r["trial"] for r in valued if not any(dominates(o, r, goals) for o in valued if o is not r)]
    return sorted(front)


#: What ``--pick`` takes, in words (its help, its errors).
PICK_RULES = (
    "accuracy (the most accurate point: the champion), a goal of size (params, latency_ms:tflite...: the point best "
    "on it), GOAL<=LIMIT (the most accurate point within it: params<=50k, latency_ms:tflite<=0.5) or "
    "val_accuracy>=LIMIT (the point best on the first goal of size among those at least that accurate)"
)


def _limit(text: str) -> float | None:
    """A number as a user writes it, with ``k``/``M``/``G`` for thousands, millions, billions; None if not one."""
    cleaned = text.strip().replace("_", "")
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(cleaned[-1:].lower(), 1.0)
    try:
        value = float(cleaned[:-1] if scale > 1 else cleaned) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def pick_on_front(rows: Sequence[Row], goals: Sequence[Goal], rule: str, *, what: str = "pick") -> Row:
    """The point of the Pareto front (``rows``: the front's trials, ``{"trial": n, <goal metric>: value}``)
    that ``rule`` (:data:`PICK_RULES`) takes. Refused with the rule, what was expected and the front when
    the rule names no goal of the search or no point meets it.

    >>> g = parse_goals("val_accuracy,params")
    >>> front = [{"trial": 0, "val_accuracy": 0.95, "params": 9000}, {"trial": 4, "val_accuracy": 0.9, "params": 2000},
    ...          {"trial": 7, "val_accuracy": 0.8, "params": 500}]
    >>> [pick_on_front(front, g, r)["trial"] for r in ("accuracy", "params", "params<=2k", "val_accuracy>=0.85")]
    [0, 7, 4, 4]
    >>> pick_on_front(front, g, "params<=100")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    search._errors.SearchError: pick: no trial on the Pareto front has params <= 100; the front: trial 0 ...
    >>> pick_on_front(front, g, "flops")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    search._errors.SearchError: pick: 'flops' is not a goal of this search (its goals: val_accuracy, params); ...
    """
    from search._errors import SearchError

    by_name = {g.metric: g for g in goals}
    by_name.setdefault("accuracy", GOAL)
    text = rule.replace(" ", "")
    name, op, bound = text, "", ""
    for sign in ("<=", ">="):
        if sign in text:
            name, _, bound = text.partition(sign)
            op = sign
    goal = by_name.get(name)
    if goal is None:
        raise SearchError(
            f"{what}: {name or rule!r} is not a goal of this search (its goals: {', '.join(g.metric for g in goals)}); "
            f"expected {PICK_RULES}; received {rule!r}"
        )
    limit = _limit(bound) if op else None
    wrong_way = op and (op == "<=") != (goal.direction == "minimize")
    if op and (limit is None or wrong_way):
        expected = f"{goal.metric}{'>=' if goal.direction == 'maximize' else '<='}NUMBER"
        raise SearchError(f"{what}: expected {expected} (a limit on {goal.measured}); received {rule!r}")

    def shown(row: Row) -> str:
        return f"trial {row['trial']} (" + ", ".join(f"{g.metric} {row[g.metric]:,.4g}" for g in goals) + ")"

    sizes = [g for g in goals if g is not GOAL]
    if limit is None:  # best on the goal named, the more accurate of a tie
        return min(rows, key=lambda r: (goal.sort_key(r[goal.metric], r["trial"])[1], -r[GOAL.metric], r["trial"]))
    within = [r for r in rows if not goal.better(limit, than=r[goal.metric])]
    if not within:
        raise SearchError(
            f"{what}: no trial on the Pareto front has {goal.metric} {op} {limit:,g}; the front: "
            + "; ".join(shown(r) for r in rows)
        )
    then = GOAL if goal is not GOAL else (sizes[0] if sizes else GOAL)
    return min(within, key=lambda r: then.sort_key(r[then.metric], r["trial"]))
