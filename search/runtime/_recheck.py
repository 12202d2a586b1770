"""Re-checking the top candidates: the champion is the best mean of fresh runs, not the luckiest single run.

Selecting the maximum of many noisy validation scores picks luck as much as architecture, and the score it
reports is biased upwards (the winner's curse): on ``digits`` one validation image is 0.37 points. So after
the search, the top ``k`` distinct architectures (by validation accuracy at their best epoch; two trials of
the same architecture count once) are trained again ``runs`` times each:

- with a fresh seed each time (weights, batch order, dropout);
- on small data (a validation split under :data:`SMALL_VALIDATION` images, in memory), each re-run also holds
  out another validation fold: the training and validation images are pooled, shuffled once (stratified by
  class, a fixed seed) and cut into folds the size of the validation split; re-run ``i`` validates on fold
  ``i`` and trains on the rest. The test split is never touched.

Only candidates the validation split cannot tell apart from the best are re-checked: those whose search value
is within :data:`NOISE_SE` (2; ``recheck_within``) binomial standard errors of the best's, ``sqrt(p(1 - p) / n)``
for the best's accuracy ``p`` on ``n`` validation images (at least ``1 / n``). When the best leads every other
candidate by more than that, nothing is re-trained (its cost is nil) and the best single run stays the
champion, with that reason recorded as the champion's rule.

The champion is the candidate with the best mean over its re-runs; the search's own run of each candidate is
left out of the mean (it was selected for being high). A tie keeps the better-ranked candidate. Every
re-run is a child run of the search in MLflow, ``recheck-<trial>-<i>``, tagged ``phase=recheck``,
``recheck_of`` (the trial), ``recheck`` (i), ``seed`` and ``fold``; each candidate's trial run gets
``recheck_mean``, ``recheck_std`` and ``recheck_runs``. A resumed search reads finished re-runs back from
MLflow and does not train them again. ``recheck=0`` keeps the single-run champion.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from search._goal import GOAL

if TYPE_CHECKING:
    from search.data import DataBundle
    from search.runtime._record import SearchRecord
    from search.runtime._session import Session

log = logging.getLogger("search")

#: A validation split smaller than this (images) is re-checked on other folds too.
SMALL_VALIDATION = 500
#: Re-runs per candidate (``--recheck-runs``).
DEFAULT_RUNS = 2
#: Candidates further than this many standard errors below the best are not re-checked (the split separates them).
NOISE_SE = 2.0
#: The fixed seed that shuffles the pooled images into folds (the same folds for every candidate).
FOLD_SEED = 20_161


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A trial to re-check: its number, its search value, what rebuilds it, and its architecture's hash."""

    trial: int
    value: float
    params: Mapping[str, Any]
    architecture_hash: str


@dataclasses.dataclass
class Rechecked:
    """A candidate's re-runs: their validation accuracies (None: the re-run failed) and the kept model path."""

    candidate: Candidate
    values: list[float | None] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def scored(self) -> list[float]:
        return [v for v in self.values if v is not None]

    @property
    def mean(self) -> float | None:
        return sum(self.scored) / len(self.scored) if self.scored else None

    @property
    def std(self) -> float | None:
        """The sample standard deviation of the re-runs (0 for one)."""
        s = self.scored
        if not s:
            return None
        if len(s) == 1:
            return 0.0
        m = sum(s) / len(s)
        return math.sqrt(sum((v - m) ** 2 for v in s) / (len(s) - 1))


def top_candidates(rows: Sequence[Mapping[str, Any]], k: int) -> list[Candidate]:
    """The ``k`` best complete trials of distinct architectures, best first (a tie: the earlier trial).

    >>> rows = [{"trial": 0, "value": 0.9, "params": {}, "architecture_hash": "a"},
    ...         {"trial": 1, "value": 0.95, "params": {}, "architecture_hash": "b"},
    ...         {"trial": 2, "value": 0.95, "params": {}, "architecture_hash": "b"},
    ...         {"trial": 3, "value": 0.5, "params": {}, "architecture_hash": "c"}]
    >>> [c.trial for c in top_candidates(rows, 2)]
    [1, 0]
    """
    ranked = sorted(rows, key=lambda r: GOAL.sort_key(r["value"], r["trial"]))
    chosen: list[Candidate] = []
    seen: set[str] = set()
    for r in ranked:
        if r["value"] is None or r["architecture_hash"] in seen:
            continue
        seen.add(r["architecture_hash"])
        chosen.append(Candidate(r["trial"], float(r["value"]), dict(r["params"]), r["architecture_hash"]))
        if len(chosen) == k:
            break
    return chosen


def noise_band(best: float, images: int, within: float = NOISE_SE) -> float:
    """How far below the best a candidate can score and still be the best's equal on this validation split:
    ``within`` binomial standard errors of the best's accuracy on ``images`` images.

    >>> round(noise_band(0.98, 270), 4)  # digits: 0.0170, about 4.6 images
    0.017
    >>> round(noise_band(1.0, 600), 4)  # a perfect score still has the error of one image: 2 of 600 images
    0.0033
    """
    n = max(1, images)
    return within * math.sqrt(max(best * (1.0 - best), 1.0 / n) / n)


def within_noise(candidates: Sequence[Candidate], images: int, within: float = NOISE_SE) -> list[Candidate]:
    """The candidates (best first) within ``within`` standard errors of the best on ``images`` validation images
    (``inf``: all of them).

    >>> a, b, c = Candidate(0, 0.98, {}, "a"), Candidate(1, 0.97, {}, "b"), Candidate(2, 0.90, {}, "c")
    >>> [x.trial for x in within_noise([a, b, c], 270)]
    [0, 1]
    >>> [x.trial for x in within_noise([a, b, c], 100_000)]
    [0]
    >>> [x.trial for x in within_noise([a, b, c], 100_000, float("inf"))]
    [0, 1, 2]
    """
    if not candidates:
        return []
    if math.isinf(within):
        return list(candidates)
    band = noise_band(candidates[0].value, images, within)
    return [c for c in candidates if c.value >= candidates[0].value - band]


def best_mean(rechecked: Sequence[Rechecked]) -> Rechecked | None:
    """The re-checked candidate with the best mean (the better-ranked one of a tie), or None if none scored.

    >>> a, b = Candidate(4, 0.97, {}, "a"), Candidate(2, 0.95, {}, "b")
    >>> best_mean([Rechecked(a, [0.90, 0.92]), Rechecked(b, [0.94, 0.93])]).candidate.trial
    2
    """
    scored = [r for r in rechecked if r.mean is not None]
    return max(scored, key=lambda r: r.mean or 0.0, default=None)  # max keeps the first of a tie


def uses_folds(data: DataBundle) -> bool:
    """Whether re-runs also hold out other validation folds: a small validation split held in memory."""
    return data.in_memory and len(data.labels("validation")) < SMALL_VALIDATION


def fold_data(data: DataBundle, fold: int) -> DataBundle:
    """``data`` with its training and validation images pooled and fold ``fold`` (of as many as fit the
    validation split's size, at least 2) held out for validation; the test split as it was."""
    import numpy as np

    from search.training._objective import pooled, resplit

    x, y = pooled(data).arrays("train")  # training then validation images
    folds = max(2, round(len(y) / max(1, len(data.labels("validation")))))
    rng = np.random.default_rng(FOLD_SEED)
    assignment = np.empty(len(y), dtype=int)
    for label in np.unique(y):  # stratified: each class dealt round the folds in a shuffled order
        where = rng.permutation(np.flatnonzero(y == label))
        assignment[where] = (np.arange(len(where)) + rng.integers(folds)) % folds
    held = assignment == fold % folds
    return resplit(data, (x[~held], y[~held]), (x[held], y[held]), f"fold{fold % folds}of{folds}")


def annotate(
    rows: list[dict[str, Any]], summary: Mapping[str, Any] | None, champion: int | None
) -> list[dict[str, Any]]:
    """Trial rows with the re-check's figures (``recheck_mean``, ``recheck_std``, ``champion``) when the search
    was re-checked (``summary``: trial -> figures, as :func:`crown` returns them); unchanged otherwise."""
    if not summary:
        return rows
    for row in rows:
        figures = summary.get(str(row["trial"]))
        row["recheck_mean"] = figures["mean"] if figures else None
        row["recheck_std"] = figures["std"] if figures else None
        row["champion"] = row["trial"] == champion
    return rows


def recheck_seed(search_seed: int | None, index: int) -> int:
    """The seed of re-run ``index``: fresh (none of the search's trials used it), and repeatable."""
    return (search_seed or 0) * 7 + 1_000 * (index + 1)


def recheck(
    session: Session,
    candidates: Sequence[Candidate],
    runs: int,
    *,
    done: Mapping[tuple[int, int], float | None] | None = None,
    record: Callable[..., None] | None = None,
) -> list[Rechecked]:
    """Train each candidate ``runs`` more times (see the module docstring) and record each re-run; ``done``
    holds re-runs already recorded (``(trial, i) -> value``), which are read, not trained again."""
    from search.space import FixedParams
    from search.training import Objective

    done = dict(done or {})
    folds = uses_folds(session.data)
    results = []
    for candidate in candidates:
        arch = session.space.sample(FixedParams(dict(candidate.params)))
        rechecked = Rechecked(candidate)
        for i in range(runs):
            if (candidate.trial, i) in done:
                rechecked.values.append(done[(candidate.trial, i)])
                continue
            seed = recheck_seed(session.objective.seed, i)
            data = fold_data(session.data, i + 1) if folds else session.data
            objective = Objective(
                session.space,
                data,
                epochs=session.objective.epochs,
                seed=seed,
                jit_compile=session.objective.jit_compile,
            )
            t0 = time.perf_counter()
            result = objective(arch, lambda epoch, value: False, trial_number=candidate.trial)
            seconds = time.perf_counter() - t0
            rechecked.seconds += seconds
            value = result.value if result.state == "complete" else None
            rechecked.values.append(value)
            if record is not None:
                record(candidate, i, seed, data.fingerprint if folds else None, result, seconds)
            result.model = None
        results.append(rechecked)
        log.info(
            "re-checked trial %d (search: %.4f): %s",
            candidate.trial,
            candidate.value,
            ", ".join("failed" if v is None else f"{v:.4f}" for v in rechecked.values),
        )
    return results


def _told_apart(best: Candidate, runner_up: Candidate, images: int, within: float) -> str:
    """The champion rule when the validation split already tells the best from the next: nothing re-checked."""
    return (
        f"the best single run: trial {best.trial} leads the next distinct architecture (trial {runner_up.trial}) "
        f"by {best.value - runner_up.value:.4f}, more than {within:g} standard errors "
        f"({noise_band(best.value, images, within):.4f}) of its {images}-image validation split, "
        "so nothing was re-checked"
    )


def _recorder(record: SearchRecord) -> Callable[..., None]:
    """What records each re-run: a child run of the search's run."""

    def recorded(candidate: Candidate, index: int, seed: int, fold: str | None, result: Any, seconds: float) -> None:
        record.tracker.record_recheck(
            record.experiment_id, record.parent_run_id, trial=candidate.trial, index=index, seed=seed, fold=fold,
            state=result.state, history=result.history, final=result.final_metrics(),
            started_ms=int((time.time() - seconds) * 1000),
        )  # fmt: skip

    return recorded


def _log_means(record: SearchRecord, results: Sequence[Rechecked]) -> None:
    """Each candidate's ``recheck_mean``/``recheck_std``/``recheck_runs`` on its trial's run."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    for r in results:
        run_id = record.tracker.trial_run(record.experiment_id, record.parent_run_id, r.candidate.trial)
        if run_id and r.mean is not None:
            figures = {"recheck_mean": r.mean, "recheck_std": r.std or 0.0, "recheck_runs": len(r.scored)}
            record.tracker.log(run_id, metrics=[Metric(key, float(v), now, 0) for key, v in figures.items()])


def _mean_rule(runs: int, candidates: int, data: DataBundle, images: int, within: float) -> str:
    """The champion rule when the close candidates were re-checked."""
    folds = " and other validation folds" if uses_folds(data) else ""
    band = "" if math.isinf(within) else f" within {within:g} standard errors of the best on {images} validation images"
    return (
        f"the best mean validation accuracy of {runs} re-runs (fresh seeds{folds}) among the top {candidates} "
        f"distinct architectures{band}"
    )


def crown(
    session: Session, rows: Sequence[Mapping[str, Any]], k: int, runs: int, *, within: float = NOISE_SE
) -> tuple[int, dict[str, Any], str] | None:
    """Re-check the top ``k`` of ``rows`` (``{"trial", "value", "params", "architecture_hash"}``, the complete
    trials) ``runs`` times each and record it all in MLflow: each re-run as a child run, each candidate's
    ``recheck_mean``/``recheck_std``/``recheck_runs`` on its trial's run, the rule and the figures on the
    search's run. Returns (the champion's trial, the figures by trial, the rule), or None when fewer than two
    candidates completed (nothing to choose between) or no re-run completed. Any engine calls it."""
    import json

    candidates = top_candidates(rows, k)
    if len(candidates) < 2:
        return None
    record = session.record
    images = session.data.counts["validation"]
    close = within_noise(candidates, images, within)
    if len(close) < 2:  # the split tells the best apart: nothing to re-check, nothing spent
        rule = _told_apart(candidates[0], candidates[1], images, within)
        record.tracker.log(record.parent_run_id, tags={"champion_rule": rule, "recheck_seconds": "0.0"})
        log.info("%s", rule)
        return None
    done = record.tracker.recheck_runs(record.experiment_id, record.parent_run_id)
    t0 = time.perf_counter()
    results = recheck(session, close, runs, done=done, record=_recorder(record))
    chosen = best_mean(results)
    if chosen is None:
        return None
    _log_means(record, results)
    rule = _mean_rule(runs, len(close), session.data, images, within)
    summary = {
        str(r.candidate.trial): {"search": r.candidate.value, "runs": r.values, "mean": r.mean, "std": r.std}
        for r in results
    }
    seconds = time.perf_counter() - t0
    record.tracker.log(
        record.parent_run_id,
        tags={"champion_rule": rule, "recheck": json.dumps(summary), "recheck_seconds": f"{seconds:.1f}"},
    )
    log.info(
        "re-checked the top %d (%d runs each, %.0f s): the champion is trial %d, mean %.4f ± %.4f (%s)",
        len(close), runs, seconds, chosen.candidate.trial, chosen.mean or 0.0, chosen.std or 0.0, rule,
    )  # fmt: skip
    return chosen.candidate.trial, summary, rule
