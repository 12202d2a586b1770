"""What `cnn-search run` shows while it searches (issue 14): plain per-epoch lines when not a terminal,
a resume line, --quiet, and no TensorFlow start-up noise; the callback protocol behind it."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from search._progress import PlainLines
from search.runtime._session import EpochEvent, TrialEvent, TrialStarted, dispatch

from .helpers import cnn_search

NAME = "tiny-digits"
NOISE = ("oneDNN", "cuda drivers", "absl::InitializeLog", "cuInit")


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One search run three times: 2 trials, continued to 3, then to 4 with --quiet; TensorFlow's
    log level left as a new user has it (not set)."""
    runs = tmp_path_factory.mktemp("progress") / "runs"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    args = ["run", "tiny", "--epochs", "2", "--seed", "0", "--runs-dir", str(runs)]
    outs = []
    for extra in (["--trials", "2"], ["--trials", "3"], ["--trials", "4", "--quiet"]):
        out = cnn_search(*args, *extra, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        outs.append(out)
    return outs


@pytest.mark.slow
def test_piped_output_has_a_line_per_trial_start_epoch_and_end(searched):
    stderr = searched[0].stderr
    assert f"search {NAME} (optuna): 2 trials of up to 2 epochs" in stderr
    for n in (0, 1):
        assert f"trial {n} started (up to 2 epochs): conv" in stderr
        for epoch in (1, 2):
            assert f"trial {n} epoch {epoch}/2: accuracy " in stderr
        assert f"trial {n} complete: val_accuracy" in stderr
    lines = stderr.splitlines()
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("trial 0 epoch 1/2"))
    assert lines.index(next(line for line in lines if line.startswith("trial 0 complete"))) > first_epoch
    assert "\r" not in stderr and "\x1b[" not in stderr  # no redrawn bars in a log


@pytest.mark.slow
def test_no_tensorflow_start_up_noise(searched):
    for out in searched:
        assert not [word for word in NOISE if word in out.stderr], out.stderr[:2000]


@pytest.mark.slow
def test_a_resumed_search_says_what_it_continues(searched):
    assert f"continuing search {NAME} (optuna): 2 of 3 trials done" in searched[1].stderr
    assert "trial 2 epoch 1/2" in searched[1].stderr and "trial 0 epoch" not in searched[1].stderr


@pytest.mark.slow
def test_quiet_prints_the_table_only(searched):
    quiet = searched[2]
    assert "epoch" not in quiet.stderr and "complete:" not in quiet.stderr and "continuing" not in quiet.stderr
    assert "trials, best first" in quiet.stdout and "best: trial" in quiet.stdout


def test_quiet_and_verbose_together_are_refused():
    out = cnn_search("run", "tiny", "--quiet", "--verbose", timeout=60)
    assert out.returncode == 1 and "--quiet and --verbose: expected one of them, received both" in out.stderr


def test_callbacks_get_the_methods_they_have_and_functions_get_trial_events():
    seen: list[str] = []

    class Epochs:
        def on_epoch_end(self, event: EpochEvent) -> None:
            seen.append(f"epoch {event.epoch}")

    def after_trial(event: TrialEvent) -> None:
        seen.append(f"trial {event.number}")

    callbacks = (Epochs(), after_trial)
    dispatch(callbacks, "on_trial_begin", TrialStarted(0, 2, "conv"))
    dispatch(callbacks, "on_epoch_end", EpochEvent(0, 1, 2, {"val_accuracy": 0.5}, 1.0))
    dispatch(callbacks, "on_trial_end", TrialEvent(0, "complete", 0.5, None, "conv", 1.0, 0.5, 0, 1, 2))
    assert seen == ["epoch 1", "trial 0"]


def test_plain_lines_read_like_keras_verbose_2():
    stream = io.StringIO()
    lines = PlainLines(stream)
    lines.on_trial_begin(TrialStarted(3, 5, "conv3x3·8·relu → softmax10"))
    lines.on_epoch_end(EpochEvent(3, 2, 5, {"accuracy": 0.8, "val_accuracy": 0.9, "loss": 0.5, "val_loss": 0.4}, 4.25))
    assert stream.getvalue().splitlines() == [
        "trial 3 started (up to 5 epochs): conv3x3·8·relu → softmax10",
        "trial 3 epoch 2/5: accuracy 0.8000, val_accuracy 0.9000, loss 0.5000, val_loss 0.4000 (4.2 s)",
    ]


def _hooked(before_import: str = "", after_import: str = "") -> subprocess.CompletedProcess[str]:
    """A fresh interpreter that installs the hook, runs ``before_import``, imports TensorFlow, writes
    ``after the import`` to descriptor 2, then runs ``after_import`` (TF_CPP_MIN_LOG_LEVEL unset)."""
    code = (
        "import importlib.util, os, sys\n"
        "from search._quiet import silence_tensorflow_import\n"
        "silence_tensorflow_import()\n"
        f"{before_import}"
        "import tensorflow\n"
        "os.write(2, b'after the import\\n')\n"
        f"{after_import}"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_the_tensorflow_hook_silences_only_the_import_and_only_once():
    out = _hooked(after_import="print(any(type(f).__name__ == '_QuietTensorFlow' for f in sys.meta_path))\n")
    assert out.stderr == "after the import\n"  # descriptor 2 is back after the import, and was quiet during it
    assert out.stdout.strip() == "False"  # the hook removed itself


def test_a_probe_of_what_is_installed_does_not_use_the_hook_up():
    """``importlib.util.find_spec("tensorflow")`` (how cnn-search asks which backends are installed)
    imports nothing; the import after it is still silenced. Before, the probe removed the hook and
    ``export`` printed TensorFlow's C++ lines twice."""
    out = _hooked(before_import="assert importlib.util.find_spec('tensorflow') is not None\n")
    assert out.stderr == "after the import\n"


def test_the_live_display_shows_steps_within_an_epoch_and_an_eta_from_the_pace():
    """A trial's bar says the epoch in progress and the step within it, with an ETA from the pace so far
    (before, rich's own ETA needed two speed samples within 30 s and showed -:--:-- for every trial whose
    epochs took longer); the search's ETA is known after its first trial."""
    import io

    from rich.console import Console

    from search._progress import LiveDisplay
    from search.runtime._session import EpochEvent, SearchStarted, StepEvent, TrialEvent, TrialStarted

    def shown(display: LiveDisplay) -> list[str]:
        screen = Console(file=io.StringIO(), width=160, record=True)
        screen.print(display.progress.get_renderable())
        return [" ".join(line.split()) for line in screen.export_text().splitlines() if line.strip()]

    display = LiveDisplay(Console(file=io.StringIO(), force_terminal=True, width=160), name="s", target=4)
    display.on_search_begin(SearchStarted("s", "optuna", 0, 4, 4))
    display.on_trial_begin(TrialStarted(0, 4, "conv"))
    assert "epoch 1/4" in shown(display)[1] and "ETA -:--:--" in shown(display)[1]
    display.on_step(StepEvent(0, 1, 4, 5, 10, 10.0))  # half an epoch in 10 s: 3.5 epochs left, 70 s
    assert "epoch 1/4 · step 5/10" in shown(display)[1] and "ETA 0:01:10" in shown(display)[1]
    display.on_epoch_end(EpochEvent(0, 1, 4, {"val_accuracy": 0.5}, 20.0))  # 1 epoch in 20 s: 60 s left
    assert (
        "epoch 2/4" in shown(display)[1]
        and "ETA 0:01:00" in shown(display)[1]
        and "val_accuracy 0.5000" in shown(display)[1]
    )
    assert "ETA -:--:--" in shown(display)[0]  # no trial of the search done yet
    display.on_trial_end(TrialEvent(0, "complete", 0.5, None, "conv", 20.0, 0.5, 0, 1, 4))
    assert len(shown(display)) == 1 and "ETA -:--:--" not in shown(display)[0], shown(display)


def test_a_search_reports_its_steps_to_a_python_callback(tmp_path):
    """Real training: on_step reaches a callback of run_search with the epoch (from 1), the step within it
    (never past the epoch's steps, though Keras calls once per 32 steps) and the steps of an epoch."""
    from search import run_search

    seen = []

    class Steps:
        def on_step(self, event):
            seen.append(event)

    run_search("tiny", "digits", trials=1, epochs=2, workers=1, runs_dir=tmp_path / "runs", report=False,
               callbacks=[Steps()], verbose=0)  # fmt: skip
    assert seen, "no step was reported"
    assert all(e.number == 0 and 1 <= e.epoch <= 2 and e.epochs == 2 for e in seen)
    from search.data import load_dataset

    train = len(load_dataset("digits", seed=0).labels("train"))
    assert {e.steps for e in seen} == {-(-train // 64)}  # the tiny space's batch of 64
    assert all(0 < e.step <= e.steps for e in seen)
