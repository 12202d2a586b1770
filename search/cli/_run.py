"""``cnn-search run`` (one search, its progress and final table) and ``cnn-search worker`` (one of its
worker processes)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from search._errors import SearchError as SearchError_
from search._errors import SpaceError, cli_spelling
from search._goal import GOAL
from search._quiet import quiet_libraries

if TYPE_CHECKING:
    from search.runtime._session import SearchResult

from search.cli._app import RunsDir, Storage, TrackingUri, app, fail, stdout_console
from search.cli._read import print_trials, space_training


@app.command("run")
def run(
    space: Annotated[str, typer.Argument(help="A shipped space name (tiny, vgg...) or a YAML file.")],
    data: Annotated[str, typer.Option("--data", help="digits, shapes, mnist..., a folder or an .npz.")] = "digits",
    name: Annotated[str | None, typer.Option("--name", help="Search name (default: SPACE-DATA).")] = None,
    trials: Annotated[int, typer.Option("--trials", help="Total trials to reach (a rerun continues).")] = 20,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds after which no new trial starts.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs per trial (overrides the space).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="optuna, keras-tuner or autokeras.")] = "optuna",
    tuner: Annotated[
        str | None,
        typer.Option(
            "--tuner",
            help="keras-tuner: random (default), bayesian, hyperband or grid; "
            "autokeras: greedy (default), random, bayesian or hyperband.",
        ),
    ] = None,
    sampler: Annotated[
        str,
        typer.Option(
            "--sampler",
            help="optuna only: tpe, tpe-local (TPE, and local moves around the best trial after --local-after), "
            "random, qmc, gp or nsga2.",
        ),
    ] = "tpe",
    goals: Annotated[
        str | None,
        typer.Option(
            "--goals",
            help="val_accuracy alone (default), or with params, flops, model_bytes:RUNTIME, latency_ms:RUNTIME "
            "(RUNTIME keras, tflite or onnx; optuna): a Pareto front, e.g. val_accuracy,latency_ms:tflite.",
        ),
    ] = None,
    max_params: Annotated[
        str | None, typer.Option("--max-params", help="Constraint: most parameters a trial may have (100k, 2M).")
    ] = None,
    max_flops: Annotated[
        str | None, typer.Option("--max-flops", help="Constraint: most FLOPs per image a trial may take (50M).")
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(
            "--max-latency-ms",
            help="Constraint: most ms per image (batch 1) on the runtime of --goals' latency_ms, else TFLite; "
            "measured before training.",
        ),
    ] = None,
    max_model_kb: Annotated[
        float | None,
        typer.Option(
            "--max-model-kb",
            help="Constraint: most KiB of the model file (format of --goals' model_bytes, else TFLite).",
        ),
    ] = None,
    pruner: Annotated[
        str,
        typer.Option(
            "--pruner", help="median, median-noise (allows for the validation split's noise), hyperband or none."
        ),
    ] = "median",
    local_after: Annotated[
        int,
        typer.Option(
            "--local-after",
            help="optuna, --sampler tpe-local: trials before local moves around the best trial start.",
        ),
    ] = 20,
    recheck: Annotated[
        int,
        typer.Option(
            "--recheck",
            help="After the search, train the top K distinct architectures again (fresh seeds; other validation "
            "folds under 500 validation images) and crown the best mean; 0: the best single run.",
        ),
    ] = 0,
    recheck_runs: Annotated[int, typer.Option("--recheck-runs", help="Re-runs of each re-checked architecture.")] = 2,
    recheck_within: Annotated[
        float,
        typer.Option(
            "--recheck-within",
            help="Re-check only candidates within this many standard errors of the best's validation accuracy "
            "(inf: the top K whatever their gap).",
        ),
    ] = 2.0,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit",
            help="Train the champion afresh on training + validation images for its best epoch count and register "
            "that model; the searched model's test accuracy is shown beside it.",
        ),
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed: same architectures and metrics on CPU.")] = None,
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Worker processes (optuna; default: one per visible GPU; on a CPU, 2 for a search of 40+ "
            "trial-epochs and no --timeout under 15 s, else 1 in this process). --seed repeats a search exactly "
            "with --workers 1.",
        ),
    ] = None,
    recycle_after: Annotated[
        int | None, typer.Option("--recycle-after", help="Start a fresh worker process after this many trials.")
    ] = None,
    max_worker_rss: Annotated[
        float | None, typer.Option("--max-worker-rss", help="Start a fresh worker process above this RSS (MiB).")
    ] = None,
    mixed_precision: Annotated[
        bool, typer.Option("--mixed-precision", help="mixed_float16 (for GPUs; untested on GPU here).")
    ] = False,
    xla: Annotated[bool, typer.Option("--xla", help="XLA-compile training steps (for GPUs).")] = False,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Skip the pictures logged on the search's run.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings, errors and the final table only.")] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Epoch lines in a terminal too, and TensorFlow's own start-up log."),
    ] = False,
) -> None:
    """Search SPACE on DATA (Optuna, KerasTuner or AutoKeras); every trial lands in MLflow; the winner is registered.

    In a terminal a live display shows the search and each running trial (epoch, validation accuracy,
    ETA); piped or in a log, one plain line per trial start, epoch and trial end."""
    import contextlib
    import logging

    if quiet and verbose:
        raise fail(SearchError_("--quiet and --verbose: expected one of them, received both"))
    quiet_libraries(tensorflow_log=verbose)
    try:
        limits = _count(max_params, "--max-params"), _count(max_flops, "--max-flops")
    except SearchError_ as exc:
        raise fail(exc) from None
    from rich.console import Console

    from search._progress import LiveDisplay, PlainLines, log_handler
    from search._run import run_search
    from search.runtime._session import SearchInterrupted

    console = Console(stderr=True)
    live = console.is_terminal and not quiet
    handler = log_handler(console, live=live)
    logger = logging.getLogger("search")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    display: LiveDisplay | PlainLines | None = None
    if live:
        display = LiveDisplay(console, name=name or "search", target=trials, epoch_lines=verbose)
    elif not quiet:
        display = PlainLines(console.file)
    shown = display if isinstance(display, LiveDisplay) else contextlib.nullcontext()

    try:
        with shown, cli_spelling():  # errors name the flags (--workers), not run_search's keywords
            result = run_search(
                space,
                data,
                engine=engine,
                tuner=tuner,
                name=name,
                trials=trials,
                timeout=timeout,
                epochs=epochs,
                sampler=sampler,
                pruner=pruner,
                seed=seed,
                runs_dir=runs_dir,
                storage=storage,
                tracking_uri=tracking_uri,
                callbacks=[display] if display is not None else [],
                workers=workers,
                recycle_after=recycle_after,
                max_worker_rss_mb=max_worker_rss,
                mixed_precision=mixed_precision,
                xla=xla,
                report=not no_report,
                goals=goals,
                max_params=limits[0],
                max_flops=limits[1],
                max_latency_ms=max_latency_ms,
                max_model_kb=max_model_kb,
                local_after=local_after,
                recheck=recheck,
                recheck_runs=recheck_runs,
                recheck_within=recheck_within,
                refit=refit,
            )
    except SearchInterrupted as exc:
        typer.echo(
            f"interrupted ({exc}): completed trials are kept, a running one is marked failed; "
            "run the same command to resume",
            err=True,
        )
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: completed trials are kept, a running one is marked failed; run the same command to resume",
            err=True,
        )
        raise typer.Exit(130) from None
    except (SearchError_, SpaceError) as exc:
        raise fail(exc) from None
    finally:
        logger.removeHandler(handler)
    _say_result(result, trials=trials, space=space, runs_dir=runs_dir)


def _count(text: str | None, flag: str) -> int | None:
    """A count as a user writes it: ``100000``, ``100_000``, ``100k``, ``2M``, ``1.5G`` (powers of 1000).

    >>> _count("100k", "--max-params"), _count("2M", "--max-params"), _count("1_500", "--max-params")
    (100000, 2000000, 1500)
    >>> _count("lots", "--max-params")
    Traceback (most recent call last):
    ...
    search._errors.SearchError: --max-params: expected a whole number >= 1 (100000, 100k, 2M), received 'lots'
    """
    if text is None:
        return None
    from search._errors import SearchError

    cleaned = text.strip().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(cleaned[-1:].lower(), 1)
    number = cleaned[:-1] if scale > 1 else cleaned
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value)):
        raise SearchError(f"{flag}: expected a whole number >= 1 (100000, 100k, 2M), received {text!r}")
    return int(value)


def _say_result(result: SearchResult, *, trials: int, space: str, runs_dir: Path) -> None:
    """What ``run`` prints when the search is over: the best trials, the winner, where to look; exit 1 when
    no trial completed (a search that found nothing did not succeed: scripts see it)."""
    if result.nothing_to_do:
        typer.echo(
            f"nothing to do: search {result.name!r} already has {len(result.trials)} trials for a target of {trials} "
            "(raise --trials to add more)",
            err=True,
        )
    out = stdout_console()
    print_trials(result.trials[:10], console=out, fixed=space_training(space))
    if result.best_trial is not None:
        test = result.test_metrics.get("test_accuracy")
        out.print(
            f"best: trial {result.best_trial}, {GOAL.metric} {result.best_value:.4f}"
            + (f", test_accuracy {test:.4f} (test split, evaluated once)" if test is not None else "")
        )
        beside = {
            "unrefitted_test_accuracy": "refitted on training + validation images; without the refit it tested",
            "single_run_test_accuracy": "re-checked champion; the best single run would have tested",
        }
        for key, words in beside.items():
            if key in result.test_metrics:
                out.print(f"{words} {result.test_metrics[key]:.4f}")
        front = [r["trial"] for r in result.trials if r.get("pareto_front")]
        if front:  # several goals: the champion is one point of the front
            from search._goal import CHAMPION_RULE

            out.print(
                f"Pareto front: trial(s) {', '.join(map(str, sorted(front)))}; the champion is {CHAMPION_RULE}",
                soft_wrap=True,
            )
        out.print(f"model: {result.model_uri}  (tracking URI {result.tracking_uri})")
    ui = "cnn-search ui" + (f" --runs-dir {runs_dir}" if str(runs_dir) != "runs" else "")
    from search.tracking._ui import runs_address

    look = runs_address("http://127.0.0.1:5000", result.experiment_id)
    out.print(f"look: {ui}  then open {look}", soft_wrap=True)
    if result.best_trial is None:  # a search that found nothing did not succeed (scripts see it)
        states = ", ".join(f"{n} {state}" for state, n in sorted(result.states.items())) or "no trial ran"
        typer.echo(
            f"error: no trial completed ({states}): nothing registered; the reasons are in the table above and "
            "in MLflow",
            err=True,
        )
        raise typer.Exit(1)


@app.command("worker")
def worker(
    name: Annotated[str, typer.Argument(help="The search to join (started by cnn-search run).", show_default=False)],
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    index: Annotated[int, typer.Option("--index", help="Worker number (seeds and GPU pinning).")] = 0,
    recycle_after: Annotated[int | None, typer.Option("--recycle-after", help="Exit after this many trials.")] = None,
    max_worker_rss: Annotated[
        float | None, typer.Option("--max-worker-rss", help="Exit once resident memory passes this (MiB).")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="optuna, or keras-tuner (started by run --workers N only).")
    ] = "optuna",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
    relay: Annotated[
        bool,
        typer.Option(
            "--relay",
            help="Leave MLflow to the cnn-search run process of this machine that started the search "
            "(how run starts its workers): records go through runs/spool/NAME.",
        ),
    ] = False,
) -> None:
    """Join a running search as one more worker (this machine or another: same --storage and --tracking-uri)."""
    import logging

    quiet_libraries()
    logging.basicConfig(format=f"[worker {index}] %(message)s")
    logging.getLogger("search").setLevel(logging.WARNING if quiet else logging.INFO)
    from search.engines import get_engine
    from search.runtime._session import SearchInterrupted

    try:
        ran = get_engine(engine).worker(
            name,
            runs_dir=runs_dir,
            storage=storage,
            tracking_uri=tracking_uri,
            index=index,
            recycle_after=recycle_after,
            max_rss_mb=max_worker_rss,
            relay=relay,
        )
    except SearchInterrupted as exc:
        typer.echo(f"[worker {index}] interrupted ({exc}): its running trial is marked killed", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (SearchError_, SpaceError) as exc:
        raise fail(exc) from None
    typer.echo(f"[worker {index}] ran {ran} trial(s)", err=True)
