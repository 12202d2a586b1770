"""``cnn-search export``: the winning CNN in every format, each proven to answer like the winner.

Every format is made from the same Keras model and loaded back with its own runtime
(:mod:`search.export._runtimes`); on every validation image its probabilities are compared with
the Keras model's. A float format is accepted only when it agrees on the top-1 class for at least
99.9% of the images and within 1e-4 everywhere; otherwise the export fails and nothing is published.
A quantized TFLite file (``--quantize float16|int8``, in addition to the float one) reports its
test-accuracy change instead. ONNX needs the ``export`` extra; when it is missing the default format
list leaves ONNX out and says why, and an explicit ``--format onnx`` fails.

The bundle (default ``runs/exports/NAME/``)::

    model.keras  savedmodel/  model.tflite  [model_float16.tflite | model_int8.tflite]  model.onnx
    labels.json  input.json  model_card.json  MODEL_CARD.md  SHA256SUMS

``input.json`` is the input contract: the model takes raw images (height x width x channels, pixel
values 0-255 as float32; rescaling and resizing are inside the model). The model card has the
architecture, parameters, FLOPs, validation and test accuracy (measured on the exported model),
the data fingerprint, the search and trial, package versions, and each format's file size,
SHA-256, parity and batch-1 latency measured on this machine.

The ``--out`` folder is checked first, before any model is loaded or converted, and the bundle is
built beside it and moved in so that nothing a user owns is lost and a kill leaves the previous
bundle as it was (:mod:`search.export._out`: a new folder, an earlier bundle replaced atomically, an
empty folder or, with ``force``, one holding other files written into). Then the bundle is logged on
the search's MLflow run (artifacts under ``export/``, file hashes as ``export.sha256.<file>`` tags)
and an alias of the registered model is pointed at the exported trial's version (registering it first
if needed): ``champion`` for the winner, ``picked`` for ``--pick``, ``exported`` for ``--trial``
(:mod:`search.export._logged`), so exporting another trial never moves the winner's alias.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search import hooks
from search._errors import SearchError
from search._goal import CHAMPION_RULE, GOAL, Goal, dominates, parse_goals, pick_on_front
from search.export._logged import export_alias, record_export
from search.export._out import check_out, partial_folder, publish, sha256
from search.export._out import verify_bundle as verify_bundle  # where it was before search.export._out
from search.export._runtimes import (
    FILES,
    FORMATS,
    TABLE,
    InvalidModelError,
    file_size,
    latency_ms,
    load_runner,
    missing_tools,
    write,
)

log = logging.getLogger("search")

QUANTIZE = ("none", "float16", "int8")
MIN_AGREEMENT = 0.999
MAX_ABS_DIFF = 1e-4


@dataclass
class ExportResult:
    """What :func:`export_search` wrote and measured."""

    bundle: Path
    trial: int
    card: dict[str, Any]
    not_produced: dict[str, str] = field(default_factory=dict)
    #: The registered model's alias now on the exported version (:func:`search.export._logged.export_alias`).
    alias: str = "champion"


# -- the search, read back from MLflow -----------------------------------------------------------
@dataclass
class _Search:
    name: str
    client: Any
    tracking_uri: str
    parent: Any
    trial: int
    child: Any
    #: The search's trial runs, and how the exported trial was chosen (in words, for the model card).
    runs: list[Any] = field(default_factory=list)
    chosen_by: str = ""

    @property
    def goals(self) -> tuple[Goal, ...]:
        """The search's goals (its run's ``goals`` tag; accuracy alone for a search of one goal)."""
        return parse_goals(self.parent.data.tags.get("goals") or None)

    def goal_rows(self) -> list[dict[str, Any]]:
        """``{"trial": n, <goal>: value...}`` of every complete trial with every goal recorded, and whether
        it is on the Pareto front (its run's ``pareto_front`` tag)."""
        rows, goals = [], self.goals
        for run in self.runs:
            tags, metrics = run.data.tags, run.data.metrics
            if tags.get("state") != "complete" or not all(g.mlflow_metric in metrics for g in goals):
                continue
            row: dict[str, Any] = {"trial": int(tags["trial"]), "pareto_front": tags.get("pareto_front") == "true"}
            rows.append(row | {g.metric: metrics[g.mlflow_metric] for g in goals})
        return sorted(rows, key=lambda r: r["trial"])


def _find(name: str, trial: int | None, tracking_uri: str, pick: str | None = None) -> _Search:
    from search.tracking import find_search

    client, parent, runs = find_search(name, tracking_uri)
    chosen_by = f"--trial {trial}"
    if pick is not None:
        if trial is not None:
            raise SearchError(f"--pick and --trial: pass one of them; received --trial {trial} and --pick {pick!r}")
        trial, chosen_by = _picked(_Search(name, client, tracking_uri, parent, -1, None, runs), pick), f"--pick {pick}"
    if trial is None:
        best: str | None = parent.data.tags.get("best_trial")
        if best is None:
            raise SearchError(f"search {name!r} has no winner yet (no trial completed): nothing to export")
        trial = int(best)
        several = len(parse_goals(parent.data.tags.get("goals") or None)) > 1
        rule = parent.data.tags.get("champion_rule")  # re-checked: the best mean of fresh runs
        chosen_by = f"the search's champion: {rule or (CHAMPION_RULE if several else 'the most accurate trial')}"
    children: dict[str, Any] = {r.data.tags["trial"]: r for r in runs if "trial" in r.data.tags}
    child = children.get(str(trial))
    if child is None or child.data.tags.get("state") != "complete":
        complete = sorted(int(t) for t, r in children.items() if r.data.tags.get("state") == "complete")
        raise SearchError(
            f"--trial: search {name!r} has no completed trial {trial}; expected one of {complete}, received {trial}"
        )
    return _Search(name, client, tracking_uri, parent, trial, child, runs, chosen_by)


def _picked(s: _Search, rule: str) -> int:
    """The trial of the search's Pareto front that ``--pick RULE`` takes (:func:`search._goal.pick_on_front`)."""
    goals = s.goals
    if len(goals) < 2:
        raise SearchError(
            f"--pick: search {s.name!r} has one goal ({GOAL.metric}), so no Pareto front to pick from; expected a "
            f"search run with --goals (val_accuracy,params...); received --pick {rule!r}. --trial N exports any trial"
        )
    front = [r for r in s.goal_rows() if r["pareto_front"]]
    if not front:
        raise SearchError(f"--pick: search {s.name!r} has no trial on its Pareto front yet: nothing to pick")
    return int(pick_on_front(front, goals, rule, what="--pick")["trial"])


def _architecture(s: _Search) -> Any:
    from search.model import Architecture

    path = s.client.download_artifacts(s.child.info.run_id, "architecture.json")
    return Architecture.from_dict(json.loads(Path(path).read_text()))


def _data(s: _Search, data: str | None) -> Any:
    from search.data import reload_recorded

    tags = s.parent.data.tags
    source = data or tags.get("data", "digits")
    seed = int(tags.get("data_seed", "0"))
    fix = "Pass --data with the search's data."
    return reload_recorded(source, seed, tags.get("data_fingerprint"), search=s.name, fix=fix)


def _model(s: _Search, runs_dir: Path, arch: Any, bundle: Any) -> tuple[Any, str]:
    """The trial's Keras model and where it came from: the registry, the kept file, or retraining."""
    import keras

    for version in s.client.search_model_versions(f"name='{s.name}'"):
        if version.tags.get("trial") == str(s.trial):
            import mlflow

            mlflow.set_tracking_uri(s.tracking_uri)
            model = mlflow.keras.load_model(f"models:/{s.name}/{version.version}")
            return model, f"models:/{s.name}/{version.version}"
    kept = runs_dir / "models" / s.name / f"trial-{s.trial}.keras"
    if kept.is_file():
        return keras.saving.load_model(kept, safe_mode=True), str(kept)
    from search.space import Space
    from search.training import retrain, retrain_epochs

    space_file = Path(s.client.download_artifacts(s.parent.info.run_id, "space.json"))
    space = Space.from_dict(json.loads(space_file.read_text()))
    best_epoch = s.child.data.metrics.get("best_epoch")
    best_epoch = int(best_epoch) if best_epoch is not None else None
    model = retrain(space, bundle, arch, trial=s.trial, best_epoch=best_epoch)
    return model, f"retrained for {retrain_epochs(arch, best_epoch)} epochs"


# -- measuring -----------------------------------------------------------------------------------
def _parity(reference: Any, probabilities: Any) -> dict[str, float]:
    import numpy as np

    return {
        "top1_agreement": float(np.mean(reference.argmax(1) == probabilities.argmax(1))),
        "max_abs_diff": float(np.max(np.abs(reference - probabilities))),
        "images": len(reference),
    }


def _accuracy(probabilities: Any, labels: Any) -> float:
    import numpy as np

    return float(np.mean(probabilities.argmax(1) == labels))


# -- writing ---------------------------------------------------------------------------------------
def _write_format(fmt: str, model: Any, folder: Path, quantize: str = "none", calibration: Any = None) -> Path:
    """Write one format into ``folder`` (a row of :data:`~search.export._runtimes.TABLE`, or a quantized
    TFLite file); returns its path."""
    if fmt not in TABLE:
        raise SearchError(f"--format: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    why = missing_tools(fmt)
    if why:
        raise SearchError(why)
    if fmt == "tflite" and quantize != "none":
        return _write_quantized_tflite(model, folder, quantize, calibration)
    return write(fmt, model, folder)


def _write_quantized_tflite(model: Any, folder: Path, quantize: str, calibration: Any) -> Path:
    import tensorflow as tf

    saved = folder / ".quantize-savedmodel"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    else:  # int8 weights and activations, calibrated on training images; float32 in and out
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
    path = folder / f"model_{quantize}.tflite"
    path.write_bytes(converter.convert())
    shutil.rmtree(saved)
    return path


def _first_line(exc: BaseException) -> str:
    """The line of an error that says what went wrong (converters print long multi-line errors)."""
    import re

    text = str(exc)
    op = re.search(r"No Op registered for (\w+)", text)
    if op:  # onnxruntime cannot run what tf2onnx wrote (e.g. GELU's Erfc)
        node = re.search(r'In Node, \("([^"]+)"', text)
        where = f" in {node.group(1).rsplit('/', 1)[0]}" if node else ""
        return f"the ONNX model needs an op onnxruntime does not have: {op.group(1)}{where}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if "Error" in line or "not supported" in line or "No Op" in line]
    return (useful or lines or [repr(exc)])[-1][:300]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    packages = ("cnn-search", "keras", "tensorflow", "jax", "jaxlib", "torch", "numpy", "mlflow", "onnx", "tf2onnx")
    for package in (*packages, "jax2onnx", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def _card_markdown(card: dict[str, Any]) -> str:
    m = card["metrics"]
    lines = [
        f"# Model card: {card['search']} (trial {card['trial']})",
        "",
        f"- Architecture: `{card['architecture']['summary']}`",
        f"- Parameters: {card['architecture']['params']:,}; FLOPs per image: {card['architecture']['flops']:,}",
        f"- Validation accuracy: {m['validation_accuracy']:.4f}; test accuracy: {m['test_accuracy']:.4f} "
        f"(measured on the exported model; the test split never guided the search)"
        + (f"; chance {card['chance_accuracy']:.4f}" if card.get("chance_accuracy") is not None else ""),
        *([f"- Why it won: {card['winner_why']}"] if card.get("winner_why") else []),
        f"- Data: {card['data']['source']} (fingerprint {card['data']['fingerprint']}), "
        f"{card['data']['num_classes']} classes: {', '.join(card['data']['class_names'])}",
        f"- Input: {card['input']['description']}",
        f"- Search: {card['search']}, engine {card['engine']}, trial {card['trial']}; "
        f"model from {card['model_source']}",
        f"- Keras backend: trained on {card['backend']['search'] or 'not recorded'}, exported on "
        f"{card['backend']['export']}",
        f"- Exported: {card['exported_at']} with " + ", ".join(f"{k} {v}" for k, v in card["versions"].items()),
        "",
        "| format | file | size (bytes) | top-1 agreement | max abs diff | latency, batch 1 (ms) | test accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for fmt, f in card["formats"].items():
        lines.append(
            f"| {fmt} | `{f['file']}` | {f['bytes']:,} | {f['parity']['top1_agreement']:.4f} | "
            f"{f['parity']['max_abs_diff']:.2e} | {f['latency_ms']:.3f} | {f['test_accuracy']:.4f} |"
        )
    for fmt, why in card["not_produced"].items():
        lines.append(f"| {fmt} | not produced: {why} | | | | | |")
    lines += ["", f"Latency measured on: {card['machine']}. SHA-256 of every file: `SHA256SUMS`.", ""]
    return "\n".join(lines + _goals_markdown(card["goals"], card["trial"]))


def _goals_card(s: _Search) -> dict[str, Any]:
    """The model card's ``goals``: the search's goals with this trial's value on each, how the trial was
    chosen, and for a search of several goals where it lies on the Pareto front (its rank by accuracy on
    the front, or the trials that dominate it), the front's points and the constraints."""
    goals, rows = s.goals, s.goal_rows()
    mine = next((r for r in rows if r["trial"] == s.trial), {})
    card: dict[str, Any] = {
        "goals": [
            {"metric": g.metric, "direction": g.direction, "measured": g.measured, "value": mine.get(g.metric)}
            for g in goals
        ],
        "chosen_by": s.chosen_by,
    }
    rechecked = json.loads(s.parent.data.tags.get("recheck") or "{}")
    if rechecked:  # the champion was crowned by the best mean of fresh runs: every candidate's figures
        card["recheck"] = rechecked
    if len(goals) < 2:
        return card
    front = GOAL.best_first(r for r in rows if r["pareto_front"])
    on = [r["trial"] for r in front]
    card["pareto_front"] = {
        "champion_rule": CHAMPION_RULE,
        "on_front": s.trial in on,
        "rank_by_accuracy": on.index(s.trial) + 1 if s.trial in on else None,
        "dominated_by": [] if s.trial in on or not mine else [r["trial"] for r in rows if dominates(r, mine, goals)],
        "points": [{k: v for k, v in r.items() if k != "pareto_front"} for r in front],
        "constraints": json.loads(s.parent.data.tags.get("constraints") or "{}"),
    }
    return card


def _goals_markdown(card: dict[str, Any], trial: int) -> list[str]:
    """The model card's section on goals (see :func:`_goals_card`) for the exported ``trial``."""

    def value(metric: str, v: Any) -> str:
        if v is None:
            return ""
        if metric == GOAL.metric:
            return f"{v:.4f}"
        return f"{int(v):,}" if float(v).is_integer() else f"{v:.4g}"

    lines = ["## Goals", "", f"- Chosen by: {card['chosen_by']}"]
    for g in card["goals"]:
        lines.append(f"- {g['metric']} ({g['direction']}; {g['measured']}): {value(g['metric'], g['value'])}")
    if card.get("recheck"):
        lines += ["", "Re-checked candidates (validation accuracy; the search's own run is not in the mean):", ""]
        lines += ["| trial | in the search | re-runs | mean ± std | |", "|---|---|---|---|---|"]
        for t, f in sorted(card["recheck"].items(), key=lambda item: -(item[1]["mean"] or 0)):
            runs = ", ".join("failed" if v is None else f"{v:.4f}" for v in f["runs"])
            mean = "" if f["mean"] is None else f"{f['mean']:.4f} ± {f['std'] or 0:.4f}"
            lines.append(f"| {t} | {f['search']:.4f} | {runs} | {mean} | {'this model' if int(t) == trial else ''} |")
    front = card.get("pareto_front")
    if front is None:
        return [*lines, ""]
    n = len(front["points"])
    if front["on_front"]:
        lines.append(f"- On the Pareto front of {n} trial(s): number {front['rank_by_accuracy']} by accuracy")
    else:
        by = ", ".join(map(str, front["dominated_by"])) or "none recorded"
        lines.append(f"- Not on the Pareto front of {n} trial(s): better on every goal: trial(s) {by}")
    if front["constraints"]:
        lines.append("- Constraints: " + ", ".join(f"{k} at most {v:,g}" for k, v in front["constraints"].items()))
    names = [g["metric"] for g in card["goals"]]
    lines += ["", "| trial | " + " | ".join(names) + " | |", "|---" * (len(names) + 2) + "|"]
    for p in front["points"]:
        mark = "this model" if p["trial"] == trial else ""
        lines.append(f"| {p['trial']} | " + " | ".join(value(m, p[m]) for m in names) + f" | {mark} |")
    return [*lines, ""]


# -- the command -------------------------------------------------------------------------------------
def _choose_formats(formats: Sequence[str] | None, quantize: str) -> tuple[list[str], dict[str, str]]:
    """(formats to write, {format: why not} for those left out). No ``formats``: every format this
    installation can produce (the others said); asked-for formats that cannot be produced are refused."""
    if quantize not in QUANTIZE:
        raise SearchError(f"--quantize: expected one of {', '.join(QUANTIZE)}, received {quantize!r}")
    not_produced: dict[str, str] = {}
    if formats is None:
        chosen = []
        for fmt in FORMATS:
            why = missing_tools(fmt)
            if why:
                not_produced[fmt] = why
                log.warning("not exporting %s: %s", fmt, why)
            else:
                chosen.append(fmt)
    else:
        chosen = list(dict.fromkeys(formats))
        unknown = [f for f in chosen if f not in FORMATS]
        if unknown or not chosen:
            raise SearchError(
                f"--format: expected a comma-separated list of {', '.join(FORMATS)}, received {','.join(formats)!r}"
            )
        for fmt in chosen:
            why = missing_tools(fmt)
            if why:
                raise SearchError(f"--format {fmt}: {why}")
    if quantize != "none" and "tflite" not in chosen:
        raise SearchError(f"--quantize {quantize} applies to TFLite: add tflite to --format")
    return chosen, not_produced


def _checked(
    fmt: str,
    quantize: str,
    path: Path,
    runner: Callable[[Any], Any],
    reference: Any,
    arrays: tuple[Any, Any, Any],
    reference_test: Any,
) -> dict[str, Any]:
    """What the model card says of one written format: its file, size, parity with the Keras model on
    the validation images (refused below :data:`MIN_AGREEMENT` / above :data:`MAX_ABS_DIFF` unless
    quantized), latency and test accuracy (and, quantized, how much the test accuracy changed)."""
    import numpy as np

    x_val, x_test, y_test = arrays
    parity = _parity(reference, np.asarray(runner(x_val)))
    test_accuracy = _accuracy(np.asarray(runner(x_test)), y_test)
    if quantize == "none" and (parity["top1_agreement"] < MIN_AGREEMENT or parity["max_abs_diff"] > MAX_ABS_DIFF):
        raise SearchError(
            f"{fmt}: the exported model does not answer like the Keras model on {parity['images']} "
            f"validation images: top-1 agreement {parity['top1_agreement']:.4f} (expected >= {MIN_AGREEMENT}), "
            f"max abs difference {parity['max_abs_diff']:.2e} (expected <= {MAX_ABS_DIFF:g}); nothing published"
        )
    produced = {
        "file": path.name,
        "bytes": file_size(path),
        "parity": parity,
        "latency_ms": latency_ms(runner, x_val[:1]),
        "test_accuracy": test_accuracy,
        "quantize": quantize,
    }
    if quantize != "none":
        produced["test_accuracy_change"] = test_accuracy - _accuracy(reference_test, y_test)
    return produced


def input_contract(bundle: Any) -> dict[str, Any]:
    """What the exported model takes and returns (``input.json``, the model card's ``input``)."""
    h, w, c = bundle.input_shape
    return {
        "shape": [h, w, c],
        "channels": {1: "grayscale", 3: "rgb"}.get(c, f"{c} channels"),
        "dtype": "float32",
        "value_range": [0, 255],
        "layout": "NHWC (batch, height, width, channels)",
        "description": f"{h}x{w}x{c} raw images, float32 pixel values 0-255 (rescaling is inside the model)",
        "output": f"{bundle.num_classes} softmax probabilities, in the order of labels.json",
    }


def _model_card(
    name: str, s: Any, source: str, arch: Any, model: Any, flops: int, bundle: Any, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The model card (``model_card.json``, ``MODEL_CARD.md``) but its ``formats`` and ``not_produced``."""
    import platform

    from search._backend import name as backend

    tags = s.parent.data.tags
    return {
        "search": name,
        "trial": s.trial,
        "engine": s.parent.data.tags.get("engine"),
        # what the search trained on (None: a search from before backends were recorded) and what exported it
        "backend": {"search": s.parent.data.tags.get("backend"), "export": backend()},
        "model_source": source,
        "architecture": {
            "summary": arch.summary(bundle.num_classes),
            "params": int(model.count_params()),
            "flops": int(flops),
            "definition": arch.to_dict(),
        },
        "metrics": metrics,
        "chance_accuracy": s.parent.data.metrics.get("chance_accuracy"),  # the largest class's share of the test split
        # why the search's winner won (search.tracking._paid); None for another trial, or a search before it
        "winner_why": tags.get("winner_why") if str(s.trial) == tags.get("best_trial") else None,
        "goals": _goals_card(s),
        "data": {
            "source": bundle.source,
            "fingerprint": bundle.fingerprint,
            "num_classes": bundle.num_classes,
            "class_names": list(bundle.class_names),
            "counts": bundle.counts,
        },
        "input": input_contract(bundle),
        "versions": _versions(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def export_search(
    name: str,
    *,
    trial: int | None = None,
    formats: Sequence[str] | None = None,
    out: str | Path | None = None,
    quantize: str = "none",
    runs_dir: str | Path = "runs",
    tracking_uri: str | None = None,
    data: str | None = None,
    pick: str | None = None,
    force: bool = False,
) -> ExportResult:
    """Export trial ``trial`` (default: the winner) of search ``name``; see the module docstring. ``pick``
        takes another point of a search's Pareto front by a rule (:data:`search._goal.PICK_RULES`:
        ``"params<=50k"``, ``"latency_ms:tflite"``...) instead of a trial number. ``force``: write into an ``out``
    that holds other files, beside them (:mod:`search.export._out`)."""
    import numpy as np

    from search.model import make_plan
    from search.tracking import default_tracking_uri

    chosen, not_produced = _choose_formats(formats, quantize)
    runs = Path(runs_dir)
    # before any work: an --out that cannot be written, or holds a user's files, fails now, not after the conversions
    out_dir, mode = check_out(Path(out) if out is not None else runs / "exports" / name, force=force)
    s = _find(name, trial, tracking_uri or default_tracking_uri(runs), pick)
    arch = _architecture(s)
    bundle = _data(s, data)
    model, source = _model(s, runs, arch, bundle)
    plan = make_plan(arch, bundle.input_shape, bundle.num_classes)
    (x_val, y_val), (x_test, y_test) = bundle.arrays("validation"), bundle.arrays("test")
    x_val, x_test = x_val.astype("float32"), x_test.astype("float32")
    reference, reference_test = (np.asarray(model.predict(x, verbose=0, batch_size=256)) for x in (x_val, x_test))

    tmp = partial_folder(out_dir)
    try:
        produced: dict[str, dict[str, Any]] = {}
        asked = formats is not None  # an asked-for format that cannot be converted fails the export
        for label, fmt, q, path, runner in _converted(chosen, quantize, asked, model, tmp, bundle, not_produced):
            produced[label] = _checked(fmt, q, path, runner, reference, (x_val, x_test, y_test), reference_test)
        (tmp / "labels.json").write_text(json.dumps(list(bundle.class_names), indent=2))
        (tmp / "input.json").write_text(json.dumps(input_contract(bundle), indent=2))
        metrics = {
            "validation_accuracy": _accuracy(reference, y_val),
            "test_accuracy": _accuracy(reference_test, y_test),
            "search_validation_accuracy": s.child.data.metrics.get(GOAL.best_metric),  # at its best epoch
        }
        card = _model_card(name, s, source, arch, model, plan.flops, bundle, metrics)
        card.update(formats=produced, not_produced=not_produced)
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
        (tmp / "MODEL_CARD.md").write_text(_card_markdown(card))
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        (tmp / "SHA256SUMS").write_text("".join(f"{sha256(p)}  {p.relative_to(tmp).as_posix()}\n" for p in files))
        publish(tmp, out_dir, mode)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    alias = record_export(s, out_dir, model, x_val[:5], alias=export_alias(trial, pick))
    return ExportResult(out_dir, s.trial, card, not_produced, alias)


def _converted(
    chosen: list[str], quantize: str, asked: bool, model: Any, tmp: Path, bundle: Any, not_produced: dict[str, str]
) -> Iterator[tuple[str, str, str, Path, Callable[[Any], Any]]]:
    """Write each format into ``tmp`` and load it back, one at a time: (label, format, quantize, path, runner)."""
    jobs = [(fmt, "none") for fmt in chosen] + ([("tflite", quantize)] if quantize != "none" else [])
    calibration = bundle.arrays("train")[0][:200].astype("float32")
    for fmt, q in jobs:
        label = fmt if q == "none" else f"{fmt}_{q}"
        try:
            path = _write_format(fmt, model, tmp, q, calibration=calibration)
            if hooks.registered():
                hooks.call("export_written", format=label, path=path)
            runner = load_runner(fmt, path)
        except Exception as exc:  # a converter that cannot take this model (an op it lacks...)
            if isinstance(exc, SearchError) and not isinstance(exc, InvalidModelError):
                raise
            failure = exc.__cause__ if isinstance(exc, InvalidModelError) and exc.__cause__ else exc
            why = f"the converter failed: {type(failure).__name__}: {_first_line(failure)}"
            if asked:
                raise SearchError(f"--format {fmt}: {why}; nothing published") from None
            not_produced[label] = why
            log.warning("not exporting %s: %s", label, why)
            for leftover in tmp.glob(f"{FILES.get(fmt, fmt)}*"):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            continue
        yield label, fmt, q, path, runner
