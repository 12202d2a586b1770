"""The Objective shared by every engine: feasibility, training, per-epoch reporting."""

from search.training._objective import Objective, Reporter, TrialResult, refit, retrain, retrain_epochs

__all__ = ["Objective", "Reporter", "TrialResult", "refit", "retrain", "retrain_epochs"]
