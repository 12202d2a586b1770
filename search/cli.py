"""The ``cnn-search`` command line.

Heavy libraries (TensorFlow, Keras, MLflow, Optuna) are imported inside the commands that need
them, never at module level: ``cnn-search --help`` and ``cnn-search spaces ...`` stay fast
(``benchmarks/cli_startup.py`` measures it).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from search._errors import SearchError as SearchError_
from search._errors import SpaceError, cli_spelling
from search._goal import GOAL
from search._quiet import quiet_libraries
from search._version import __version__
from search.data._cli import data_command

if TYPE_CHECKING:
    from rich.console import Console

    from search._errors import InfeasibleError
    from search.data import DataBundle
    from search.runtime._session import SearchResult
    from search.space import Space

app = typer.Typer(
    name="cnn-search",
    help="Search for the best convolutional network for an image-classification problem.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
spaces_app = typer.Typer(help="List, show, validate search spaces; print their JSON Schema.", no_args_is_help=True)
app.add_typer(spaces_app, name="spaces")
app.command("data")(data_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnn-search {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Search for the best convolutional network for an image-classification problem."""


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _size_line(space: object) -> str:
    from search.space import Space

    assert isinstance(space, Space)
    size = space.size()
    text = f"{size.parameters} searchable parameters; {size.combinations:,} discrete combinations"
    if size.continuous:
        text += f" x {len(size.continuous)} continuous ({', '.join(size.continuous)})"
    if space.start:
        text += f"; {len(space.start)} start point(s) tried first"
    return text


@spaces_app.command("list")
def spaces_list() -> None:
    """List the ready-made spaces shipped with cnn-search, each with its whole description."""
    import shutil
    import textwrap

    from search.space import list_spaces, load_space

    width = max(shutil.get_terminal_size().columns, 40)  # COLUMNS, the terminal, or 80 when piped
    for name in list_spaces():
        space = load_space(name)
        text = " ".join(space.description.split()) or "(no description)"
        # folded between words under the name, never cut: the continuation lines are indented
        typer.echo(
            textwrap.fill(
                text,
                width=width - 1,
                initial_indent=f"{name:<10} ",
                subsequent_indent=" " * 11,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )


@spaces_app.command("show")
def spaces_show(space: Annotated[str, typer.Argument(help="A shipped space name (vgg) or a YAML file.")]) -> None:
    """Show a space (every key, defaults filled in) and its size."""
    import yaml

    from search.space import load_space

    try:
        loaded = load_space(space)
    except SpaceError as exc:
        raise _fail(exc) from None
    typer.echo(f"# {loaded.source}")
    typer.echo(f"# size: {_size_line(loaded)}")
    typer.echo(yaml.safe_dump(loaded.to_dict(), sort_keys=False, width=100, default_flow_style=None).rstrip())


@spaces_app.command("validate")
def spaces_validate(
    files: Annotated[list[Path], typer.Argument(help="YAML files to check.", show_default=False)],
    data: Annotated[
        str | None,
        typer.Option(
            "--data", help="Also check the space fits these images: digits, shapes, a folder or an .npz (as run)."
        ),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", help="With --data: architectures sampled (seeded).")] = 20,
) -> None:
    """Check space files; exit 0 when all are valid, 1 otherwise. With --data, also sample architectures
    (seeded, the same every time) and say how many fit those images, and why the others do not."""
    from search.space import Space

    bundle = None
    if data is not None:
        from search.data import load_dataset

        try:
            bundle = load_dataset(data)
        except SearchError_ as exc:
            raise _fail(exc) from None
        if samples < 1:
            raise _fail(SearchError_(f"--samples: expected a whole number >= 1, received {samples}"))

    failed = 0
    for path in files:
        try:
            space = Space.from_file(path)
        except SpaceError as exc:
            failed += 1
            typer.echo(str(exc), err=True)
            continue
        if bundle is None:
            typer.echo(f"ok {path}: {_size_line(space)}")
            continue
        fits, lines = _fit_report(space, "ok", bundle, samples)
        if fits:
            typer.echo(f"ok {path}: {_size_line(space)}")
            typer.echo("\n".join("  " + line for line in lines))
        else:
            failed += 1
            typer.echo(f"{path}: " + "\n".join(lines), err=True)
    if failed:
        typer.echo(f"{failed} of {len(files)} file(s) invalid", err=True)
        raise typer.Exit(1)


def _advice(exc: InfeasibleError) -> str:
    """What to change in a space whose sampled architecture did not fit (:func:`spaces_validate`)."""
    text = str(exc)
    if exc.reason == "collapse" and "pooling" in text:
        return "lower blocks.depth, or use pooling: none (or a smaller pool_size) in the later blocks"
    if exc.reason == "collapse":
        return "use padding: same, a smaller kernel_size or strides 1, or lower blocks.depth"
    if exc.reason == "residual_shape":
        return "use padding: same in residual blocks"
    if exc.reason.startswith("max_"):
        return f"raise budget.{exc.reason}, or narrow filters, units or blocks.depth"
    return "see the reason above"


def _fit_report(space: Space, label: str, bundle: DataBundle, samples: int) -> tuple[bool, list[str]]:
    """(whether any architecture fits, lines): how many of `samples` seeded samples fit, and why not."""
    import re
    from collections import Counter

    from search._errors import InfeasibleError
    from search.space import RandomParams

    h, w, c = bundle.input_shape
    images = f"{h}x{w}x{c} images ({bundle.source})"
    source = RandomParams(0)
    causes: dict[str, Counter[int | None]] = {}  # cause -> the blocks where it happened, counted
    fixes: dict[str, str] = {}
    largest: dict[str, int] = {}  # over a budget: the largest value met
    for _ in range(samples):
        try:
            space.check(space.sample(source), bundle.input_shape, bundle.num_classes)
        except InfeasibleError as exc:
            text = str(exc)
            if exc.reason == "collapse" and " on a " in text:  # one cause per layer, in whichever block
                layer = text.split(" on a ")[0].removeprefix(f"block {exc.block}: ")
                cause = f"the feature map collapses to 0x0 at {layer}"
            elif budget := re.fullmatch(r"over budget: (\w+) ([\d,]+) > (\w+ [\d,]+)", text):  # one per budget
                cause = f"over budget: {budget[1]} > {budget[3]}"
                value = int(budget[2].replace(",", ""))
                largest[cause] = max(largest.get(cause, value), value)
            else:
                cause = text.removeprefix(f"block {exc.block}: ")
            causes.setdefault(cause, Counter())[exc.block] += 1
            fixes[cause] = _advice(exc)
    fit = samples - sum(sum(c.values()) for c in causes.values())
    lines = [f"{label}: {fit}/{samples} sampled architectures fit {images}"]
    for cause, blocks in sorted(causes.items(), key=lambda item: -sum(item[1].values())):
        where = ", ".join(f"block {b} ({n})" for b, n in sorted(blocks.items()) if b is not None)
        shown = f"{cause} (up to {largest[cause]:,})" if cause in largest else cause
        shown += f" in {where}" if where else ""
        lines.append(f"  {sum(blocks.values())} of {samples}: {shown}: {fixes[cause]}")
    if causes and fit:
        lines.append("  (those are refused before training, in milliseconds; the search samples again)")
    if fit:
        return True, lines
    try:  # none of these fit: does any? (the check run makes before it starts)
        space.check_input(bundle.input_shape)
    except SpaceError:
        return False, [f"no sampled architecture fits {images}; cnn-search run would refuse this space", *lines[1:]]
    lines.append(f"  a few architectures fit, but most trials of a search would be refused on {images}")
    return True, lines


@spaces_app.command("schema")
def spaces_schema() -> None:
    """Print the JSON Schema of the space format (for editors)."""
    from search.space import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


# -- run, trials, ui --------------------------------------------------------------------------------
def _reached(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """--storage and --tracking-uri: a server they name (MLflow's, PostgreSQL, MySQL) reached once before the
    command starts, or one line (search/tracking/_reach.py); every command that takes them passes here."""
    if value is not None and not ctx.resilient_parsing:
        from search.tracking._reach import reach

        try:
            reach(value, what=(param.opts or ["--storage"])[0])
        except SearchError_ as exc:
            raise _fail(exc) from None
    return value


RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where the local store lives (MLflow, Optuna, models).")]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Optuna storage URL (default: RUNS_DIR/optuna.journal; postgresql://... for many machines).",
        callback=_reached,
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri", help="MLflow tracking URI (default: sqlite:///RUNS_DIR/mlflow.db).", callback=_reached
    ),
]


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
        raise _fail(SearchError_("--quiet and --verbose: expected one of them, received both"))
    quiet_libraries(tensorflow_log=verbose)
    try:
        limits = _count(max_params, "--max-params"), _count(max_flops, "--max-flops")
    except SearchError_ as exc:
        raise _fail(exc) from None
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
        raise _fail(exc) from None
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


def _stdout_console() -> Console:
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _print_trials(rows: list[dict], *, console: Console, fixed: dict | None = None) -> None:
    """``fixed``: the training parameters the space fixes (:func:`_fixed_training`), shown where a
    trial's sampled ones (``hyperparameters``) lack them."""
    from rich.table import Table

    fronted = any("pareto_front" in r for r in rows)  # a search of several goals: its front is marked
    table = Table(title="trials, best first" + ("; * on the Pareto front" if fronted else ""))
    for header in ("trial", "state", GOAL.metric, "epochs", "params", "seconds", *_TRAINING_COLUMNS):
        table.add_column(header, overflow="fold")  # narrow: the architecture wraps first, then these fold
    if fronted:
        table.add_column("front")
    rechecked = any("recheck_mean" in r for r in rows)  # re-checked: mean ± spread of the candidates' re-runs
    if rechecked:
        table.add_column("re-checked", overflow="fold")
    table.add_column("architecture / reason", overflow="fold")
    for r in rows:
        value = f"{r[GOAL.metric]:.4f}" if r[GOAL.metric] is not None else ""
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else ""
        params = f"{r['params']:,}" if r["params"] is not None else ""
        text = r["architecture"] + (f"  [{r['reason']}]" if r["reason"] else "")
        sampled = {**(fixed or {}), **(r.get("hyperparameters") or {})}
        training = [_training_text(sampled.get(key)) for key in _TRAINING_COLUMNS.values()]
        front = ["*" if r.get("pareto_front") else ""] if fronted else []
        mean, spread = r.get("recheck_mean"), r.get("recheck_std") or 0.0
        if rechecked:
            front.append(
                "" if mean is None else f"{mean:.4f} ± {spread:.4f}" + (" champion" if r.get("champion") else "")
            )
        if "start_point" in r:  # the space's own defaults, tried first: where the search began
            text = f"start point {r['start_point']}: {text}"
        elif "local_of" in r:  # a local move around the incumbent then (search.engines._local)
            text = f"near {r['local_of']}: {text}"
        table.add_row(
            str(r["trial"]), r["state"], value, str(r["epochs_run"] or ""), params, seconds, *training, *front, text
        )
    if not console.is_terminal:  # piped: one line per trial, however long its architecture
        from rich.measure import Measurement

        needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
        console.width = max(console.width, needed)
    console.print(table)


#: The training parameters shown beside the architecture: column -> parameter name (as in MLflow).
_TRAINING_COLUMNS = {"lr": "training/learning_rate", "optimizer": "training/optimizer", "batch": "training/batch_size"}


def _training_text(value: object) -> str:
    """A learning rate as ``2.03e-3`` (3 significant digits), other values as they are, '-' if unknown."""
    if value is None:
        return "-"
    if isinstance(value, float):
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return str(value)


def _fixed_training(definition: dict | None) -> dict:
    """The values of :data:`_TRAINING_COLUMNS` a space definition (``Space.to_dict()``) fixes: not
    sampled, so in no trial's parameters."""
    fixed = {}
    for key, name in ((name.split("/")[1], name) for name in _TRAINING_COLUMNS.values()):
        value = ((definition or {}).get("training") or {}).get(key)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        elif isinstance(value, dict) and value.get("low") is not None and value.get("low") == value.get("high"):
            value = value["low"]
        if value is not None and not isinstance(value, list | dict):
            fixed[name] = float(value) if key == "learning_rate" else value
    return fixed


def _space_training(space: str) -> dict:
    """:func:`_fixed_training` of a shipped space or a YAML file; {} if it cannot be read (now)."""
    from search.space import load_space

    try:
        return _fixed_training(load_space(space).to_dict())
    except (SpaceError, OSError):
        return {}


def _say_result(result: SearchResult, *, trials: int, space: str, runs_dir: Path) -> None:
    """What ``run`` prints when the search is over: the best trials, the winner, where to look; exit 1 when
    no trial completed (a search that found nothing did not succeed: scripts see it)."""
    if result.nothing_to_do:
        typer.echo(
            f"nothing to do: search {result.name!r} already has {len(result.trials)} trials for a target of {trials} "
            "(raise --trials to add more)",
            err=True,
        )
    out = _stdout_console()
    _print_trials(result.trials[:10], console=out, fixed=_space_training(space))
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
        raise _fail(exc) from None
    typer.echo(f"[worker {index}] ran {ran} trial(s)", err=True)


@app.command("trials")
def trials_command(
    name: Annotated[
        str | None, typer.Argument(help="The search name (none: every search, as cnn-search searches).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """The trials of a search, best first, read back from the store (no NAME: the list of searches)."""
    import csv
    import io
    import sys

    import optuna

    if format not in ("table", "csv", "json"):
        raise _fail(SearchError_(f"--format: expected table, csv or json, received {format!r}"))
    if name is None:
        searches_command(format=format, runs_dir=runs_dir, tracking_uri=tracking_uri)
        return
    from search.engines import get_engine
    from search.engines._base import DEFAULT_ENGINE, engine_of
    from search.tracking import default_tracking_uri

    uri = tracking_uri or default_tracking_uri(runs_dir)
    # the engine recorded with the search (runs/searches/NAME.json, else its MLflow run); with --storage: Optuna
    recorded_engine = None if storage is not None else engine_of(name, runs_dir=runs_dir, tracking_uri=uri)
    try:
        rows, recorded = get_engine(recorded_engine or DEFAULT_ENGINE).trial_rows(
            name, runs_dir=runs_dir, storage=storage
        )
    except KeyError:
        from search.runtime._storage import default_storage_url, get_storage
        from search.tracking._searches import names_in, unknown_search

        quiet_libraries()
        known = names_in(uri) + optuna.get_all_study_names(get_storage(storage or default_storage_url(runs_dir)))
        raise _fail(unknown_search(name, known, str(storage or runs_dir))) from None
    except SearchError_ as exc:
        raise _fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif format == "csv":
        buffer = io.StringIO()
        columns = dict.fromkeys(k for r in rows for k in r)  # every row's keys (start_point: the start points')
        writer = csv.DictWriter(buffer, fieldnames=[k for k in columns if k != "hyperparameters"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: v for k, v in r.items() if k != "hyperparameters"})
        sys.stdout.write(buffer.getvalue())
    else:
        _print_trials(rows, console=_stdout_console(), fixed=_fixed_training(recorded.get("space_definition")))


@app.command("searches")
def searches_command(
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Every search in the store, most recently active first: engine, space, data, trials by state, best accuracy."""
    import csv
    import sys

    from search.tracking import default_tracking_uri
    from search.tracking._searches import STATES, list_searches

    quiet_libraries()
    if format not in ("table", "csv", "json"):
        raise _fail(SearchError_(f"--format: expected table, csv or json, received {format!r}"))
    try:
        rows = list_searches(tracking_uri or default_tracking_uri(runs_dir))
    except SearchError_ as exc:
        raise _fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if format == "csv":
        fields = ["name", "engine", "space", "data", "trials", *STATES, GOAL.best_metric, "test_accuracy"]
        writer = csv.DictWriter(sys.stdout, fieldnames=[*fields, "last_activity"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, **{s: r["states"].get(s, 0) for s in STATES}} for r in rows)
        return
    if not rows:
        own_dir = tracking_uri is None and str(runs_dir) != "runs"
        start = "cnn-search run tiny" + (f" --runs-dir {runs_dir}" if own_dir else "")
        typer.echo(f"no searches in {tracking_uri or runs_dir} yet; start one with {start}")
        return
    from rich.console import Console

    # piped: as wide as the table, so that no name, path or header is ever cut or folded
    _print_searches(rows, console=_stdout_console() if sys.stdout.isatty() else Console(width=10_000))


def _print_searches(rows: list[dict], *, console: Console) -> None:
    from rich.table import Table

    table = Table(title="searches, most recently active first")
    # a terminal too narrow for the table: every column but the names folds (nothing is cut)
    table.add_column("search", no_wrap=True, min_width=max(len(r["name"]) for r in rows))
    for header in ("engine", "space", "data", "trials", "by state", f"best {GOAL.metric}", "test_accuracy"):
        numeric = "accuracy" in header or header == "trials"
        table.add_column(header, overflow="fold", justify="right" if numeric else "left")
    table.add_column("last activity", overflow="fold")
    for r in rows:
        states = ", ".join(f"{n} {state}" for state, n in r["states"].items()) or "-"
        best, test = (f"{v:.4f}" if v is not None else "" for v in (r[GOAL.best_metric], r["test_accuracy"]))
        described = (r["engine"] or "", r["space"] or "", r["data"] or "")
        table.add_row(r["name"], *described, str(r["trials"]), states, best, test, r["last_activity"])
    console.print(table)


@app.command("compare")
def compare(
    names: Annotated[list[str], typer.Argument(help="Search names (any engine).", show_default=False)],
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Searches side by side: engine, trials by state, best accuracies, running time, trials per hour.

    Times count running time only (the union of the trials' start-to-end intervals): the idle gap
    before a search was resumed does not count. Searches run on different data splits are warned
    about on stderr (their test accuracies are not comparable). csv and json rows also carry the data,
    its seed and fingerprint, and the MLflow experiment and run ids."""
    import csv
    import sys

    from search.tracking import default_tracking_uri
    from search.tracking._compare import COLUMNS, TABLE_COLUMNS, compare_runs_url, compare_searches, split_warnings

    quiet_libraries()
    if format not in ("table", "csv", "json"):
        raise _fail(SearchError_(f"--format: expected table, csv or json, received {format!r}"))
    uri = tracking_uri or default_tracking_uri(runs_dir)
    try:
        rows = compare_searches(names, uri)
    except SearchError_ as exc:
        raise _fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.measure import Measurement
        from rich.table import Table

        cells = [
            [
                ""
                if row[c] is None
                else f"{row[c]:.4f}"
                if isinstance(row[c], float) and c.endswith("accuracy")
                else str(row[c])
                for c in TABLE_COLUMNS
            ]
            for row in rows
        ]
        console = _stdout_console()
        table = Table(title="searches side by side")
        for c in TABLE_COLUMNS:  # fold, never cut: names and headers are shown whole at any width
            table.add_column(c.replace("_", " "), overflow="fold", justify="left" if c == "search" else "right")
        for r in cells:
            table.add_row(*r)
        needed = Measurement.get(console, console.options.update_width(10_000), table)  # unclamped
        if not console.is_terminal:  # piped: as wide as the table needs, so nothing folds in a file
            console.width = max(console.width, needed.maximum)
        elif needed.minimum > console.width:
            # a narrow terminal: one column per search, one row per figure, so numbers are not folded
            table = Table("", title="searches side by side")
            for r in cells:
                table.add_column(r[0], overflow="fold", justify="right")
            for i, c in enumerate(TABLE_COLUMNS[1:], 1):
                table.add_row(c.replace("_", " "), *(r[i] for r in cells))
        console.print(table)
        url = compare_runs_url(rows, uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000")
        if url:
            where = "" if uri.startswith(("http://", "https://")) else " (cnn-search ui, on its default port)"
            typer.echo(f"the searches' runs side by side in the MLflow UI{where}: {url}")
    for line in split_warnings(rows):
        typer.echo(f"warning: {line}", err=True)


@app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Search name.", show_default=False)],
    trial: Annotated[int | None, typer.Option("--trial", help="Trial to export (default: the winner).")] = None,
    pick: Annotated[
        str | None,
        typer.Option(
            "--pick",
            help="Another point of a search's Pareto front (--goals): accuracy, a goal of size (params: the "
            "smallest), GOAL<=LIMIT (params<=50k, latency_ms:tflite<=0.5: the most accurate within it) or "
            "val_accuracy>=LIMIT (the smallest at least that accurate).",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option("--format", help="Comma-separated: keras,savedmodel,tflite,onnx (default: all available)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Bundle folder (default: RUNS_DIR/exports/NAME).")] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Write into an --out folder that holds other files, beside them (files of the bundle's names "
            "are replaced). Without it such a folder is refused; a new or empty folder or an earlier bundle is not.",
        ),
    ] = False,
    quantize: Annotated[
        str, typer.Option("--quantize", help="none, float16 or int8: also write a quantized TFLite file.")
    ] = "none",
    data: Annotated[
        str | None, typer.Option("--data", help="The search's data, if it cannot be found as recorded.")
    ] = None,
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Export a search's winner to every format, each checked against the Keras model; write a model card."""
    import logging

    quiet_libraries()
    logging.getLogger("search").setLevel(logging.INFO)
    logging.basicConfig(format="%(message)s")
    from search.export import export_search

    formats = [f.strip() for f in format.split(",") if f.strip()] if format is not None else None
    try:
        result = export_search(
            name,
            trial=trial,
            formats=formats,
            out=out,
            quantize=quantize,
            runs_dir=runs_dir,
            tracking_uri=tracking_uri,
            data=data,
            pick=pick,
            force=force,
        )
    except SearchError_ as exc:
        raise _fail(exc) from None
    from rich.table import Table

    card = result.card
    table = Table("format", "file", "bytes", "top-1 agreement", "max abs diff", "ms/image", "test accuracy")
    for fmt, f in card["formats"].items():
        table.add_row(
            fmt,
            f["file"],
            f"{f['bytes']:,}",
            f"{f['parity']['top1_agreement']:.4f}",
            f"{f['parity']['max_abs_diff']:.1e}",
            f"{f['latency_ms']:.3f}",
            f"{f['test_accuracy']:.4f}",
        )
    for fmt, why in result.not_produced.items():
        table.add_row(fmt, f"not produced: {why}", "", "", "", "", "")
    console = _stdout_console()
    console.print(table)
    console.print(
        f"trial {result.trial}: {card['architecture']['summary']}; validation accuracy "
        f"{card['metrics']['validation_accuracy']:.4f}, test accuracy {card['metrics']['test_accuracy']:.4f}"
    )
    goals = card["goals"]
    console.print(f"chosen by: {goals['chosen_by']}")
    front = goals.get("pareto_front")
    if front is not None:
        n, values = (
            len(front["points"]),
            "; ".join(f"{g['metric']} {g['value']:.4g}" for g in goals["goals"] if g["value"] is not None),
        )
        where = (
            f"number {front['rank_by_accuracy']} by accuracy of the {n} trial(s) on the Pareto front"
            if front["on_front"]
            else f"not on the Pareto front of {n} trial(s)"
        )
        console.print(f"goals: {values}; {where}")
    console.print(f"bundle: {result.bundle}  (model card: {result.bundle / 'MODEL_CARD.md'})")
    console.print(f"registered: models:/{name}@champion -> trial {result.trial}")


@app.command("predict")
def predict(
    model: Annotated[str, typer.Argument(help="An export bundle, or a .keras, .tflite or .onnx file.")],
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG...).", show_default=False)],
    top_k: Annotated[int, typer.Option("--top-k", help="Classes to print per image.")] = 3,
    runtime: Annotated[
        str | None, typer.Option("--runtime", help="keras, tflite or onnx (default: keras for a bundle).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The top classes of each image, with their probabilities."""
    quiet_libraries()
    from search.export import predict as predict_images

    if format not in ("table", "json"):
        raise _fail(SearchError_(f"--format: expected table or json, received {format!r}"))
    try:
        results = predict_images(model, images, top_k=top_k, runtime=runtime)
    except SearchError_ as exc:
        raise _fail(exc) from None
    if format == "json":
        typer.echo(json.dumps(results, indent=2))
        return
    for r in results:
        note = f"  ({r['note']})" if r["note"] else ""
        typer.echo(f"{r['image']}  [{r['runtime']}]{note}")
        for rank, t in enumerate(r["top"], 1):
            typer.echo(f"  {rank}. {t['label']:<20} {t['probability']:.4f}")


@app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="Search name (any engine).", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help="Folder (default: RUNS_DIR/reports/NAME).")] = None,
    runs_dir: RunsDir = Path("runs"),
    tracking_uri: TrackingUri = None,
) -> None:
    """Draw a search's pictures (history, importances, architecture, filters, confusion...) and an HTML page."""
    quiet_libraries()
    from search.report import make_report

    try:
        made = make_report(name, runs_dir=runs_dir, tracking_uri=tracking_uri, out=out)
    except SearchError_ as exc:
        raise _fail(exc) from None
    for picture in made.pictures:
        typer.echo(str(picture))
    for file, why in made.missing.items():
        typer.echo(f"not drawn: {file}: {why}", err=True)
    typer.echo(f"open {made.html}", err=True)


AllowedHosts = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-hosts",
        help="More Host names the UI answers to (comma-separated or repeated; MLflow's * patterns), besides "
        "localhost and, beyond 127.0.0.1, this machine's names: the one people type, a reverse proxy's.",
    ),
]
AllowWrites = Annotated[
    bool,
    typer.Option(
        "--allow-writes",
        help="Let the UI change the store (runs, tags, experiments, artifact uploads into RUNS_DIR/mlartifacts); "
        "read-only without it. No authentication: anyone who reaches the port could.",
    ),
]


@app.command("ui")
def ui(
    port: Annotated[int, typer.Option("--port", help="Port of the MLflow UI.")] = 5000,
    host: Annotated[
        str, typer.Option("--host", help="Listen address; 127.0.0.1 unless you ask otherwise.")
    ] = "127.0.0.1",
    runs_dir: RunsDir = Path("runs"),
    storage: Storage = None,
    tracking_uri: TrackingUri = None,
    optuna: Annotated[
        bool,
        typer.Option(
            "--optuna",
            help="Also serve Optuna's own dashboard (optuna-dashboard: pip install 'cnn-search[dashboard]') on the "
            "searches' Optuna storage, at --port + 1.",
        ),
    ] = False,
    allowed_hosts: AllowedHosts = None,
    allow_writes: AllowWrites = False,
) -> None:
    """Start the MLflow UI on the search store (127.0.0.1 only and read-only by default) and print each
    search's runs address; Ctrl+C or SIGTERM stops it. Beyond 127.0.0.1 it warns: no authentication."""
    from collections.abc import Callable

    from search.runtime._storage import default_storage_url
    from search.tracking import default_tracking_uri
    from search.tracking._ui import UIError, search_addresses, serve_ui, study_addresses

    uri = tracking_uri or default_tracking_uri(runs_dir)
    optuna_storage = (storage or default_storage_url(runs_dir)) if optuna else None

    def listing(found: Callable[[], list[tuple[str, str]]], empty: str) -> None:
        try:
            rows = found()
        except Exception as exc:  # the server runs all the same
            typer.echo(f"  (could not list them: {exc})")
            return
        for name, address in rows:
            typer.echo(f"  {name}: {address}")
        if not rows:
            typer.echo(f"  ({empty})")

    def banner(url: str) -> None:
        typer.echo(f"MLflow UI on {url.rstrip('/')}  (each search's trials by {GOAL.best_metric}:); Ctrl+C stops it")
        listing(lambda: search_addresses(uri, url), "no search in this store yet")

    def dashboard(url: str) -> None:
        typer.echo(f"Optuna dashboard on {url}  (each search's study:)")
        assert optuna_storage is not None
        listing(lambda: study_addresses(optuna_storage, url), "no Optuna study in this storage yet")

    try:
        code = serve_ui(
            uri,
            host,
            port,
            on_ready=banner,
            optuna=optuna_storage,
            on_dashboard=dashboard,
            artifacts=runs_dir / "mlartifacts",
            allowed_hosts=allowed_hosts or (),
            allow_writes=allow_writes,
            warn=lambda text: typer.echo(text, err=True),
        )
    except UIError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except SearchError_ as exc:  # a store that cannot be used
        raise _fail(exc) from None
    raise typer.Exit(code)


def main() -> None:
    """The console entry point (``cnn-search``, ``python -m search``).

    A process that imported TensorFlow or MLflow ends without the interpreter's module teardown, which
    spends 1.4-1.9 s in TensorFlow's destructors after a search and 1 s after MLflow alone (measured;
    a search's worker processes pay it too): every stream is flushed, cnn-search's own threads joined,
    ``atexit`` handlers and logging shut down first, so nothing written is lost. Other libraries'
    idle threads (thread pools waiting for work, MLflow's telemetry) are not waited for. mypy ends its runs the
    same way. Called in-process (tests, ``app`` with typer's runner) nothing changes."""
    try:
        app()
    except SystemExit as exc:
        if not _HEAVY.intersection(sys.modules):
            raise
        _fast_exit(exc.code)
    except Exception as exc:  # a full disk, a server gone mid-command: one line (search/tracking/_disk.py, _reach.py)
        from search.tracking._disk import disk_full
        from search.tracking._reach import unreachable

        said = disk_full(exc) or unreachable(exc)
        if said is None:
            raise
        typer.echo(f"error: {said}", err=True)
        _fast_exit(1)
    if _HEAVY.intersection(sys.modules):
        _fast_exit(0)


#: Libraries whose teardown at exit is slow (see :func:`main`).
_HEAVY = frozenset({"tensorflow", "mlflow"})


def _fast_exit(code: object) -> NoReturn:
    import atexit
    import contextlib
    import logging
    import threading

    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    status = code if isinstance(code, int) else (0 if code is None else 1)
    for thread in threading.enumerate():  # cnn-search's own unfinished work (MLflow's start-up), if any
        if thread.name.startswith("cnn-search") and thread is not threading.current_thread() and not thread.daemon:
            # after a signal, not for long: what is left is a wait on a server that does not answer (_signals.py)
            thread.join(timeout=2 if status in (130, 143) else 60)
    atexit._run_exitfuncs()  # what Py_Finalize runs first (MLflow's, tempfile's finalizers...)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can reach it
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
