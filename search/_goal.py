"""The goal of a search: the metric a trial is judged by, which way is better, and how it is measured.

Every search has one goal today, :data:`GOAL`: validation accuracy at the trial's best epoch, higher is
better. Everything that judges trials reads it rather than spelling the metric itself: the training
callback (which epoch is best, which weights are kept), the value reported to the pruner, the model
kept on disk, the best-first order of every table, Optuna's study direction, KerasTuner's
``Objective``, the progress lines and the report. A search with another goal, or several (accuracy
against size or latency), is built on this type.

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
from collections.abc import Iterable, Mapping
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


#: The goal of every search today.
GOAL = Goal(VAL_ACCURACY, "maximize", "validation accuracy at the trial's best epoch", perfect=1.0)
