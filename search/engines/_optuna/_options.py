"""The Optuna engine's own options (:attr:`search.engines.Engine.options`): ``--sampler``, ``--pruner``,
``--local-after``. Declared here once (:mod:`search._options`); another engine given one is refused."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from search._options import declare, own_of, whole
from search.engines._optuna._factories import LOCAL_AFTER

if TYPE_CHECKING:
    from search.engines._base import SearchOptions


@dataclasses.dataclass(frozen=True)
class OptunaOptions:
    """What only the Optuna engine takes (its choices are checked by the engine: the error names them). The
    engines that take an option are those whose :attr:`~search.engines.Engine.options` declare it
    (:func:`search.engines._base.every_option`), so an engine built on this one takes them too."""

    sampler: str = declare(
        "tpe",
        "tpe, tpe-local (TPE, and local moves around the best trial after --local-after), random, qmc, gp or nsga2.",
    )
    pruner: str = declare(
        "median",
        "median, median-noise (allows for the validation split's noise), hyperband or none.",
    )
    local_after: int = declare(
        LOCAL_AFTER,
        "--sampler tpe-local: trials before local moves around the best trial start.",
        check=whole(0, "a whole number of trials"),
    )


def own_options(options: SearchOptions) -> OptunaOptions:
    """The Optuna engine's own options of a search, from ``options.own``."""
    return own_of(OptunaOptions, options.own)
