"""``cnn-search run`` (one search, its progress and final table) and ``cnn-search worker`` (one of its
worker processes)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from search._errors import SearchError as SearchError_
from search._errors import SpaceError, cli_spelling
from search._goal import GOAL
from search._quiet import quiet_libraries

if TYPE_CHECKING:
    from search._options import Option
    from search.runtime._session import SearchResult

from search.cli._app import RunsDir, Storage, TrackingUri, app, fail, flag_of, inverted, stdout_console
from search.cli._read import print_trials, space_training

#: ``run``'s own flags, besides the search's options: what the terminal shows.
QUIET = Annotated[bool, typer.Option("--quiet", "-q", help="Warnings, errors and the final table only.")]
VERBOSE = Annotated[
    bool, typer.Option("--verbose", "-v", help="Epoch lines in a terminal too, and TensorFlow's own start-up log.")
]


def run_options() -> list[Option]:
    """The options ``cnn-search run`` takes, in ``--help``'s order: the shared ones, then each engine's own
    (:func:`search.engines._base.every_option`), those not for Python only."""
    from search.engines._base import every_option

    return [o for o in every_option().values() if o.cli]


def run_signature() -> inspect.Signature:
    """``run``'s parameters as Typer reads them: SPACE, ``--data``, every option (:func:`run_options`), then
    ``--quiet`` and ``--verbose``; built from the declarations, so an option added there is a flag here."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter(
            "space",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[str, typer.Argument(help="A shipped space name (tiny, vgg...) or a YAML file.")],
        ),
        inspect.Parameter(
            "data",
            keyword,
            default="digits",
            annotation=Annotated[str, typer.Option("--data", help="digits, shapes, mnist..., a folder or an .npz.")],
        ),
    ]
    params += [
        inspect.Parameter(f"no_{o.name}", keyword, default=False, annotation=flag_of(o))
        if inverted(o)
        else inspect.Parameter(o.name, keyword, default=o.default, annotation=flag_of(o))
        for o in run_options()
    ]
    params += [
        inspect.Parameter("quiet", keyword, default=False, annotation=QUIET),
        inspect.Parameter("verbose", keyword, default=False, annotation=VERBOSE),
    ]
    return inspect.Signature(params)


def run(space: str, data: str = "digits", *, quiet: bool = False, verbose: bool = False, **given: Any) -> None:
    """Search SPACE on DATA (Optuna, KerasTuner or AutoKeras); every trial lands in MLflow; the winner is registered.

    In a terminal a live display shows the search and each running trial (epoch, validation accuracy,
    ETA); piped or in a log, one plain line per trial start, epoch and trial end."""
    if quiet and verbose:
        raise fail(SearchError_("--quiet and --verbose: expected one of them, received both"))
    quiet_libraries(tensorflow_log=verbose)
    try:
        keywords = {o.name: _parsed(o, given) for o in run_options()}
    except SearchError_ as exc:
        raise fail(exc) from None
    from search._run import run_search

    with _shown(keywords, quiet=quiet, verbose=verbose) as callbacks:
        result = run_search(space, data, **keywords, callbacks=callbacks)
    _say_result(result, trials=keywords.get("trials", 20), space=space, runs_dir=keywords.get("runs_dir", Path("runs")))


run.__signature__ = run_signature()  # type: ignore[attr-defined]
run.__annotations__ = {}  # Typer reads the signature's annotations, not the function's
app.command("run")(run)


def _parsed(o: Option, given: dict[str, Any]) -> Any:
    """Option ``o``'s value from the flags given, as the option takes it (``--max-params 100k`` -> 100000,
    ``--no-report`` -> ``report=False``)."""
    if inverted(o):
        return not given[f"no_{o.name}"]
    value = given[o.name]
    return o.parse(value, o.flag) if o.parse is not None and value is not None else value


@contextlib.contextmanager
def _shown(keywords: dict[str, Any], *, quiet: bool, verbose: bool) -> Iterator[list[Any]]:
    """The search's progress shown while it runs (the live display in a terminal, else plain lines), and
    its ending said: an interruption (completed trials kept) or a refusal in one line."""
    import logging

    from rich.console import Console

    from search._progress import LiveDisplay, PlainLines, log_handler
    from search.runtime._session import SearchInterrupted

    console = Console(stderr=True, markup=False)  # messages as written: brackets stay
    live = console.is_terminal and not quiet
    handler = log_handler(console, live=live)
    logger = logging.getLogger("search")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    display: LiveDisplay | PlainLines | None = None
    if live:
        name, target = keywords.get("name") or "search", keywords.get("trials", 20)
        display = LiveDisplay(console, name=name, target=target, epoch_lines=verbose)
    elif not quiet:
        display = PlainLines(console.file)
    shown = display if isinstance(display, LiveDisplay) else contextlib.nullcontext()
    resume = "completed trials are kept, a running one is marked failed; run the same command to resume"
    try:
        with shown, cli_spelling():  # errors name the flags (--workers), not run_search's keywords
            yield [display] if display is not None else []
    except SearchInterrupted as exc:
        typer.echo(f"interrupted ({exc}): {resume}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo(f"interrupted: {resume}", err=True)
        raise typer.Exit(130) from None
    except (SearchError_, SpaceError) as exc:
        raise fail(exc) from None
    finally:
        logger.removeHandler(handler)


def _chance(result: SearchResult) -> str:
    """``; chance 0.2500``: what answering the largest class alone scores on the test split, beside its accuracy."""
    chance = result.test_metrics.get("chance_accuracy")
    return f"; chance {chance:.4f}" if chance is not None else ""


#: How many trials ``run`` lists when it is over (best first); ``cnn-search trials NAME`` lists every one.
SHOWN = 10


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
    print_trials(result.trials[:SHOWN], console=out, fixed=space_training(space))
    where = f" --runs-dir {runs_dir}" if str(runs_dir) != "runs" else ""
    if len(result.trials) > SHOWN:  # the best few; the store has them all
        listed = f"cnn-search trials {result.name}{where}"
        out.print(f"the best {SHOWN} of {len(result.trials)} trials; all of them: {listed}", soft_wrap=True)
    if result.best_trial is not None:
        test = result.test_metrics.get("test_accuracy")
        out.print(
            f"best: trial {result.best_trial}, {GOAL.metric} {result.best_value:.4f}"
            + (f", test_accuracy {test:.4f} (test split, evaluated once{_chance(result)})" if test is not None else "")
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
    ui = "cnn-search ui" + where
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
