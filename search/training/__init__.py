"""The Objective shared by every engine: feasibility, training, per-epoch reporting."""

from search.training._objective import MONITOR, Objective, Reporter, TrialResult

__all__ = ["MONITOR", "Objective", "Reporter", "TrialResult"]
