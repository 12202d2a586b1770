"""The Optuna adapter of ParamSource: an Optuna trial answers the space's four calls."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from search.space import ParamSource

if TYPE_CHECKING:
    import optuna


class OptunaParams(ParamSource):
    """Ask an Optuna trial (``suggest_*``) for each parameter, under the space's path-like names.

    Booleans are categorical ``[False, True]``; choices keep their Python values (Optuna stores
    ``None``, bool, int, float and str choices as they are).
    """

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial

    def _choice(self, name: str, options: tuple[Any, ...]) -> Any:
        return self.trial.suggest_categorical(name, list(options))

    def _int(self, name: str, low: builtins.int, high: builtins.int, step: builtins.int, log: bool) -> builtins.int:
        return self.trial.suggest_int(name, low, high, step=step, log=log)

    def _float(self, name: str, low: builtins.float, high: builtins.float, log: bool) -> builtins.float:
        return self.trial.suggest_float(name, low, high, log=log)
