"""One declaration per option (search/_options.py): the CLI's flags, the Python keywords and their errors,
the workers' record and the MLflow parameters all come from it; an engine's own options are refused on
another engine. The last test adds an option from outside the package, in one place, and finds it in
``cnn-search run --help``, in ``run_search``, in the search's worker processes and in MLflow."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import pytest

from search._errors import SearchError, cli_spelling
from search.engines import ENGINES, SearchOptions
from search.engines._base import SHARED, every_option, split_keywords

from .helpers import ENV


def test_every_field_of_the_options_is_a_declared_option():
    fields = {f.name for f in dataclasses.fields(SearchOptions)} - {"own"}
    assert fields == {o.name for o in SHARED}
    assert all(o.help.strip() for o in every_option().values())
    # every engine's own options are declared the same way, and no name is declared twice with two meanings
    own = [f.name for e in ENGINES.values() if e.options for f in dataclasses.fields(e.options)]
    assert set(own) == {"sampler", "pruner", "local_after"} and not set(own) & fields


def test_run_help_lists_every_option_a_user_can_give():
    out = subprocess.run(
        [sys.executable, "-m", "search", "run", "--help"], capture_output=True, text=True, env={**ENV, "COLUMNS": "200"}
    )
    assert out.returncode == 0, out.stderr
    flags = {o.flag for o in every_option().values() if o.cli}
    missing = [flag for flag in flags if f" {flag} " not in out.stdout]
    assert len(flags) > 25 and missing == []
    assert "--callbacks" not in out.stdout and "--gpus" not in out.stdout  # Python-only, and filled in


def test_an_engines_own_option_is_refused_on_another_engine_naming_the_one_that_takes_it():
    with pytest.raises(
        SearchError,
        match=r"^sampler: taken by the optuna engine, not by keras-tuner; received sampler 'gp' with engine keras-tuner$",
    ):
        split_keywords(None, {"engine": "keras-tuner", "sampler": "gp"}).checked()
    with cli_spelling(), pytest.raises(SearchError, match=r"^--pruner: taken by the optuna engine, not by autokeras"):
        split_keywords(None, {"engine": "autokeras", "pruner": "none"}).checked()
    # its default, as the command line passes every flag, asks nothing of the engine
    assert split_keywords(None, {"engine": "keras-tuner", "sampler": "tpe"}).checked().engine == "keras-tuner"


def test_a_misspelt_keyword_is_refused_with_the_close_one():
    with pytest.raises(
        SearchError, match=r"^samplr: not an option of a search; expected one of .*sampler.*Did you mean 'sampler'"
    ):
        split_keywords(None, {"samplr": "gp"}).checked()


def test_the_command_line_refuses_another_engines_option_before_anything_starts(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "search", "run", "tiny", "--engine", "keras-tuner", "--sampler", "gp"],
        capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.strip().endswith(
        "error: --sampler: taken by the optuna engine, not by keras-tuner; received --sampler 'gp' with --engine "
        "keras-tuner"
    ), out.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything was created


def test_the_record_a_worker_reads_back_is_the_options_given():
    given = split_keywords(
        None, {"trials": 7, "sampler": "tpe-local", "local_after": 3, "goals": "val_accuracy,params", "xla": True}
    ).checked()
    record = given.record()
    assert record["sampler"] == "tpe-local" and record["goals"] == ["val_accuracy", "params"]
    back = SearchOptions.from_record(record)
    assert back == given
    # a record written before an option existed: that option keeps its default
    older = {k: v for k, v in record.items() if k not in ("local_after", "recheck_within")}
    assert SearchOptions.from_record(older).own.get("local_after") is None
    assert SearchOptions.from_record(older).recheck_within == 2.0


def test_errors_name_the_keyword_in_python_and_the_flag_on_the_command_line():
    with pytest.raises(SearchError, match=r"^max_worker_rss_mb: expected MiB > 0, received -1$"):
        SearchOptions(max_worker_rss_mb=-1).checked()
    with cli_spelling(), pytest.raises(SearchError, match=r"^--max-worker-rss: expected MiB > 0, received -1$"):
        SearchOptions(max_worker_rss_mb=-1).checked()
    with pytest.raises(SearchError, match=r"^local_after: expected a whole number of trials >= 0, received True$"):
        split_keywords(None, {"local_after": True}).checked()


PLUGIN = '''
"""An engine from outside cnn-search: Optuna's, with one more option declared in one place."""
import dataclasses, os
from pathlib import Path

from search._options import declare
from search.engines import register_engine
from search.engines._optuna import OptunaEngine
from search.engines._optuna._options import OptunaOptions


def _word(value):
    return None if isinstance(value, str) and value.isalpha() else "expected one word of letters"


@dataclasses.dataclass(frozen=True)
class NotedOptions(OptunaOptions):
    note: str = declare("none", "A word every worker of the search reads back.", check=_word)


@register_engine
class NotedEngine(OptunaEngine):
    name = "optuna-noted"
    options = NotedOptions

    def worker(self, name, **kw):
        options = self.recorded_options(name, runs_dir=kw["runs_dir"], storage=kw["storage"])
        Path(kw["runs_dir"], f"note-{os.getpid()}.txt").write_text(options.own["note"])
        return super().worker(name, **kw)
'''


@pytest.mark.slow
def test_an_option_added_in_one_place_reaches_the_help_python_the_workers_and_mlflow(tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "noted_engine.py").write_text(textwrap.dedent(PLUGIN))
    (plugin / "sitecustomize.py").write_text("import noted_engine  # every process: run, its workers\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin), ENV.get("PYTHONPATH", "")]))}

    def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=600)  # fmt: skip

    helped = subprocess.run([sys.executable, "-m", "search", "run", "--help"], capture_output=True, text=True,
                            env={**env, "COLUMNS": "200"}, cwd=tmp_path)  # fmt: skip
    assert (
        "--note" in helped.stdout
        and "A word every worker of the search reads back. (optuna-noted only)" in helped.stdout
    )

    refused = python("from search import run_search; run_search('tiny', note='x')")
    assert (
        "note: taken by the optuna-noted engine, not by optuna; received note 'x' with engine optuna" in refused.stderr
    )
    checked = python("from search import run_search; run_search('tiny', engine='optuna-noted', note='two words')")
    assert "note: expected one word of letters, received 'two words'" in checked.stderr

    ran = python(
        "import sys; from search import run_search\n"
        "r = run_search('tiny', engine='optuna-noted', note='hello', trials=3, epochs=1, workers=2, seed=0, report=False)\n"
        "print(r.parent_run_id, r.tracking_uri)"
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    parent, uri = ran.stdout.split()[-2:]
    notes = {p.name: p.read_text() for p in (tmp_path / "runs").glob("note-*.txt")}
    assert len(notes) >= 2 and set(notes.values()) == {"hello"}, notes  # read back by each worker process

    import mlflow

    params = mlflow.MlflowClient(uri).get_run(parent).data.params
    assert params["option/note"] == "hello" and params["option/engine"] == "optuna-noted"
    assert params["option/trials"] == "3" and params["option/sampler"] == "tpe"
