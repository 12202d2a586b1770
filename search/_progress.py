"""What ``cnn-search run`` shows while it searches, the way Keras and Optuna users expect it.

* In a terminal: a live display, one bar for the search (trials done of the target, the best
  validation accuracy so far, elapsed time and ETA) and one bar per running trial (epoch e of E and,
  for a trial training in this process, the step within it, a few times a second; its latest
  validation accuracy, elapsed time and ETA); one line per finished trial above it. The ETAs are
  computed here from what is done (:func:`eta`), not by rich from its speed samples: those keep 30 s,
  so a trial whose epochs take longer never had two and showed ``-:--:--`` throughout. A trial's ETA
  is known from its first steps (its first epoch in a worker process), the search's from its first
  trial this session.
* Not a terminal (a log file, CI, a notebook): plain lines, never redrawn or wrapped: one when a
  trial starts, one per epoch (like Keras's ``verbose=2``), one per finished trial with the best so far.
* ``--quiet``: warnings, errors and the final table only. ``--verbose``: the epoch lines in a
  terminal too, and TensorFlow's own start-up log lines (silenced otherwise).

It is a progress callback of :func:`search.run_search` (Keras-style ``on_*`` methods).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from search._goal import ACCURACY, GOAL, LOSS, VAL_ACCURACY, VAL_LOSS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from search.runtime._session import EpochEvent, SearchStarted, StepEvent, TrialEvent, TrialStarted

UNKNOWN = "-:--:--"


def eta(seconds: float, done: float, total: float) -> str:
    """The time left at the pace so far, ``H:MM:SS``: ``seconds`` spent on ``done`` of ``total`` units.

    >>> eta(30.0, 1, 4), eta(10.0, 0.25, 1), eta(5.0, 0, 3), eta(9.0, 3, 3)
    ('0:01:30', '0:00:30', '-:--:--', '0:00:00')
    """
    if done <= 0:
        return UNKNOWN
    left = max(0, round(seconds / done * (total - done)))
    return f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"


def _metrics(metrics: dict[str, float]) -> str:
    keys = (ACCURACY, VAL_ACCURACY, LOSS, VAL_LOSS)
    return ", ".join(f"{key} {metrics[key]:.4f}" for key in keys if key in metrics)


class PlainLines:
    """One line per trial start and per epoch, for output that is not a terminal."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_trial_begin(self, event: TrialStarted) -> None:
        self._say(f"trial {event.number} started (up to {event.epochs} epochs): {event.summary}")

    def on_epoch_end(self, event: EpochEvent) -> None:
        self._say(
            f"trial {event.number} epoch {event.epoch}/{event.epochs}: {_metrics(event.metrics)} "
            f"({event.seconds:.1f} s)"
        )


class LiveDisplay:
    """The terminal's live display (rich): the search's bar and one bar per running trial."""

    def __init__(self, console: Console, *, name: str, target: int, epoch_lines: bool = False) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.epoch_lines = epoch_lines
        self.progress: Progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("{task.fields[note]}"),
            console=console,
            transient=True,
        )
        self.search: TaskID = self.progress.add_task(
            name, total=target, count=f"0/{target} trials", note="", eta=UNKNOWN
        )
        self.started, self.done_before = time.monotonic(), 0  # this session's start, the trials done before it
        self.trials: dict[int, TaskID] = {}
        self.best: float | None = None
        self.best_trial: int | None = None

    def __enter__(self) -> LiveDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def _best(self) -> str:
        return f"best {GOAL.metric} {self.best:.4f} (trial {self.best_trial})" if self.best is not None else ""

    def on_search_begin(self, event: SearchStarted) -> None:
        self.progress.reset(  # a resumed search: the trials done before do not count in the speed (ETA)
            self.search,
            total=event.target,
            completed=event.done,
            description=f"search {event.name}",
            count=f"{event.done}/{event.target} trials",
            note="continuing" if event.done else "",
            eta=UNKNOWN,
        )
        self.started, self.done_before = time.monotonic(), event.done

    def _trial(self, number: int, epochs: int) -> TaskID:
        task = self.trials.get(number)
        if task is None:  # a trial seen first at an epoch's end (in a worker process)
            task = self.trials[number] = self.progress.add_task(
                f"  trial {number}", total=epochs, count=f"epoch 1/{epochs}", note="", eta=UNKNOWN
            )
        return task

    def on_trial_begin(self, event: TrialStarted) -> None:
        self._trial(event.number, event.epochs)

    def on_step(self, event: StepEvent) -> None:
        """Within an epoch: the bar moves by the steps done, ``epoch e/E · step s/S``, the ETA from the pace."""
        done = event.epoch - 1 + (event.step / event.steps if event.steps else 0.0)
        of = f"/{event.steps}" if event.steps else ""
        self.progress.update(
            self._trial(event.number, event.epochs),
            completed=done,
            count=f"epoch {event.epoch}/{event.epochs} · step {event.step}{of}",
            eta=eta(event.seconds, done, event.epochs),
        )

    def on_epoch_end(self, event: EpochEvent) -> None:
        value = event.metrics.get(GOAL.metric)
        last = event.epoch >= event.epochs
        self.progress.update(
            self._trial(event.number, event.epochs),
            completed=event.epoch,
            count=f"epoch {event.epoch}/{event.epochs}" if last else f"epoch {event.epoch + 1}/{event.epochs}",
            note=f"{GOAL.metric} {value:.4f}" if value is not None else "",
            eta=eta(event.seconds, event.epoch, event.epochs),
        )
        if self.epoch_lines:
            self.console.print(
                f"trial {event.number} epoch {event.epoch}/{event.epochs}: {_metrics(event.metrics)} "
                f"({event.seconds:.1f} s)",
                highlight=False,
            )

    def on_trial_end(self, event: TrialEvent) -> None:
        task = self.trials.pop(event.number, None)
        if task is not None:
            self.progress.remove_task(task)
        if event.best_value is not None:
            self.best, self.best_trial = event.best_value, event.best_trial
        self.progress.update(
            self.search,
            completed=event.done,
            total=event.target,
            count=f"{event.done}/{event.target} trials",
            note=self._best(),
            eta=eta(time.monotonic() - self.started, event.done - self.done_before, event.target - self.done_before),
        )


def log_handler(console: Console, *, live: bool) -> logging.Handler:
    """Log lines above the live display in a terminal; plain, unwrapped lines otherwise."""
    if live:
        from rich.logging import RichHandler

        return RichHandler(console=console, show_time=False, show_path=False, show_level=False, markup=False)
    handler = logging.StreamHandler(console.file)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
