"""The pictures that explain a search, made from its MLflow record (so any engine's search has them).

Written as PNG files plus ``index.html`` that ties them together, and logged on the search's run
under ``report/``:

* ``optimization_history.png`` — each trial's validation accuracy and the best so far;
* ``param_importances.png`` — which parameters mattered (Optuna's fANOVA over the trials), drawn
  only from :data:`MIN_TRIALS_FOR_IMPORTANCES` completed trials on (fewer: the page says how many are needed);
* ``parallel_coordinates.png`` — every completed trial as a line through its most important parameters;
* ``intermediate_values.png`` — validation accuracy per epoch (from 1) of every trial;
* ``architecture.png`` — the winner drawn layer by layer with output shapes and parameters;
* ``first_layer_filters.png`` — the winner's first convolution kernels (in colour for RGB input);
* ``feature_maps.png`` — what that convolution makes of validation images, with their true and
  predicted classes and the channel of each panel;
* ``filter_patches.png`` — what each first-layer filter responds to: the validation patches that
  excite it most (search/report/_inside.py);
* ``pooling.png`` — what the first pooling layer keeps: a feature map before and after it;
* ``confusion_matrix.png`` — the winner on the test split (evaluated once, at the end of the search).

The four search pictures are drawn with matplotlib from the MLflow trial runs (parameters, final and
per-epoch validation accuracy), labelled in the search's words ("validation accuracy", "epoch" from 1);
their interactive versions are Optuna's plotly plots over an in-memory study rebuilt from the same runs,
shown in ``index.html`` and sharing one ``plotly.min.js`` beside it, so the page works offline (on
disk, ``runs/reports/NAME``; the copy logged on the search's MLflow run leaves the 4.8 MB
``plotly.min.js`` out, so there the PNGs are the pictures and the interactive files need it beside them). The
captions are computed from the search (pruning is mentioned only when trials were pruned), and each
PNG's metadata ("Description") and alt text say its titles and axis names. A picture that cannot be
made (too few completed trials for importances, no convolution in the winner) is listed on
the page with the reason instead.
"""

from __future__ import annotations

import html
import json
import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search._goal import GOAL
from search.report import _interactive as interactive
from search.report._files import save as _save
from search.report._front import front_pictures
from search.report._inside import inside_pictures
from search.report._interactive import INTERACTIVE, plotly_missing
from search.report._plots import (
    MIN_TRIALS_FOR_IMPORTANCES,
    Curve,
    describe_counts,
    describe_stops,
    feature_maps_figure,
    filters_figure,
    history_figure,
    importances_figure,
    learning_curves_figure,
    parallel_figure,
    pick_images,
)

log = logging.getLogger("search")

#: Every picture and what it shows in general; the page's captions are computed from the search.
PICTURES = {
    "optimization_history.png": "Validation accuracy of each trial, and the best so far.",
    "param_importances.png": "How much each parameter explains the validation accuracy (fANOVA).",
    "parallel_coordinates.png": "Every completed trial as a line through its 6 most important parameters, by accuracy.",
    "intermediate_values.png": "Validation accuracy after each epoch (counted from 1) of every trial.",
    "architecture.png": "The winning CNN, layer by layer: output shape and parameters.",
    "first_layer_filters.png": "The winner's first-layer kernels (in colour when they read RGB images).",
    "feature_maps.png": "What the first convolution (after its activation) makes of a few validation images.",
    "filter_patches.png": "What each first-layer filter responds to: the validation patches that excite it most.",
    "pooling.png": "What pooling keeps: one feature map before and after the winner's first pooling layer.",
    "confusion_matrix.png": "The winner on the test split: rows are true classes, columns predictions.",
}


@dataclass
class Report:
    """What :func:`make_report` wrote."""

    folder: Path
    pictures: list[Path] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)  # picture -> caption computed from the search
    descriptions: dict[str, str] = field(default_factory=dict)  # picture -> its titles and axis names
    interactive: dict[str, Path] = field(default_factory=dict)  # picture -> its interactive HTML

    @property
    def html(self) -> Path:
        return self.folder / "index.html"


def _value(text: str) -> Any:
    """MLflow params are strings: back to int, float or bool where they were."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _trials(client: Any, children: list[Any]) -> tuple[list[Curve], dict[str, int]]:
    """The trials that trained (complete and pruned), whatever engine ran them, and how many trials
    ended in each state (infeasible and failed ones included)."""
    counts: Counter[str] = Counter()
    curves = []
    for run in children:
        state = run.data.tags.get("state", "unknown")
        counts[state] += 1
        if state not in ("complete", "pruned"):
            continue
        params = {k: _value(v) for k, v in run.data.params.items()}
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, GOAL.metric)}
        value = run.data.metrics.get(GOAL.best_metric)
        complete = state == "complete" and value is not None
        curves.append(
            Curve(
                int(run.data.tags["trial"]),
                "complete" if complete else "pruned",
                history,
                value if complete else None,
                params,
                run.data.tags.get("reason", ""),
                int(run.data.tags["start_point"]) if run.data.tags.get("start_point", "").isdigit() else None,
            )
        )
    order = ["complete", "pruned"]
    ordered = {state: counts[state] for state in order if counts[state]}
    ordered.update({state: n for state, n in sorted(counts.items()) if state not in order})
    return sorted(curves, key=lambda c: c.trial), ordered


def _study(curves: list[Curve]) -> Any:
    """An in-memory Optuna study of the trials, numbered as in the search (a failed placeholder fills
    the number of a trial that never trained), for Optuna's importances and plotly plots."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    values: dict[str, list[Any]] = {}
    for curve in curves:
        for k, v in (curve.params or {}).items():
            values.setdefault(k, []).append(v)
    distributions: dict[str, Any] = {}
    for k, vs in values.items():
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs) and min(vs) < max(vs):
            distributions[k] = FloatDistribution(float(min(vs)), float(max(vs)))
        else:
            distributions[k] = CategoricalDistribution(sorted(set(vs), key=str))
    study = optuna.create_study(direction=GOAL.direction)
    for curve in curves:
        while len(study.trials) < curve.trial:
            study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
        params = curve.params or {}
        study.add_trial(
            optuna.trial.create_trial(
                params={
                    k: float(v) if isinstance(distributions[k], FloatDistribution) else v for k, v in params.items()
                },
                distributions={k: distributions[k] for k in params},
                value=curve.value,
                state=optuna.trial.TrialState.COMPLETE if curve.state == "complete" else optuna.trial.TrialState.PRUNED,
                intermediate_values=curve.history,
                user_attrs={"trial": curve.trial},
            )
        )
    return study


def _captions(curves: list[Curve], counts: dict[str, int], shown: list[str], ranked: bool) -> dict[str, str]:
    """The search pictures' captions, true to this search: pruning is named only when a trial was pruned."""
    complete = counts.get("complete", 0)
    pruned = counts.get("pruned", 0)
    untrained = {s: n for s, n in counts.items() if s not in ("complete", "pruned")}
    epochs = max((max(c.history) + 1 for c in curves if c.history), default=0)
    history = f"Validation accuracy of each of the {complete} completed trials (its best epoch), and the best so far"
    if pruned:
        history += f"; pruned trials ({pruned}) are grey ×, at their best epoch before they stopped early"
    if untrained:
        history += "; not shown: " + ", ".join(f"{n} {s}" for s, n in untrained.items())
    importances = f"How much each parameter explains the validation accuracy (fANOVA over {complete} completed trials)."
    curves_text = f"Validation accuracy after each epoch (1 to {epochs}) of the {len(curves)} trials that trained"
    if pruned:
        why = describe_stops([c.reason for c in curves if c.state == "pruned"])
        ends = "the dashed grey lines of pruned trials end at the last epoch they ran"
        curves_text += f"; {pruned} of them {'was' if pruned == 1 else 'were'} pruned, stopped early ({why}): {ends}."
    else:
        ran = {len(c.history) for c in curves if c.history} or {0}
        each = f"; each ran {epochs} epoch{'s' if epochs != 1 else ''}."
        curves_text += each if len(ran) == 1 else f"; they ran {min(ran)} to {max(ran)} epochs."
    which = (
        f"the {len(shown)} parameters that matter most (by the importances)" if ranked else f"{len(shown)} parameters"
    )
    colours = "coloured by validation accuracy: dark purple low, yellow high"
    parallel = f"Each completed trial as a line through {which}, {colours}."
    if any(p not in (c.params or {}) for c in curves if c.state == "complete" for p in shown):
        parallel += " 'unused': a parameter the trial's network did not have (a block beyond its depth, for instance)."
    return {
        "optimization_history.png": history + ".",
        "param_importances.png": importances,
        "parallel_coordinates.png": parallel,
        "intermediate_values.png": curves_text,
    }


#: Why the importances are not drawn: below that many completed trials a few more reorder the ranking.
_TOO_FEW = (
    "needs at least {need} completed trials to mean something (fewer: a few more trials reorder it);"
    " this search has {has}"
)


def _search_pictures(study: Any, curves: list[Curve], counts: dict[str, int], folder: Path, report: Report) -> None:
    import optuna

    complete = [c for c in curves if c.state == "complete"]
    params = sorted({k for c in complete for k in (c.params or {})})
    importances: dict[str, float] = {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)  # the same ranking in every picture
    if len(complete) >= MIN_TRIALS_FOR_IMPORTANCES:  # fewer: a ranking a few more trials reorder, not drawn
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importances = dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
        except (ValueError, RuntimeError) as exc:
            report.missing["param_importances.png"] = str(exc)
    top = list(importances)[:6] or params[:6]  # the parallel coordinates keep the 6 that matter most (readable)
    report.captions.update(_captions(curves, counts, top, bool(importances)))
    title = f"Validation accuracy of each trial: {describe_counts(counts)}"
    ranked = f"the {len(top)} most important parameters" if importances else f"{len(top)} parameters"
    if complete:
        _save(history_figure(curves, counts), folder / "optimization_history.png", report)
    else:
        report.missing["optimization_history.png"] = "no trial completed"
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCES:
        report.missing["param_importances.png"] = _TOO_FEW.format(need=MIN_TRIALS_FOR_IMPORTANCES, has=len(complete))
    elif importances:
        _save(importances_figure(importances, len(complete)), folder / "param_importances.png", report)
    if complete and top:
        _save(parallel_figure(curves, top), folder / "parallel_coordinates.png", report)
    else:
        report.missing["parallel_coordinates.png"] = "no completed trial with parameters"
    if any(c.history for c in curves):
        _save(learning_curves_figure(curves), folder / "intermediate_values.png", report)
    else:
        report.missing["intermediate_values.png"] = "no trial recorded a validation accuracy per epoch"
    why = plotly_missing()
    if why is not None:
        report.missing["interactive pictures"] = why
        return
    makers = {
        "optimization_history.png": lambda: interactive.history(study, title),
        "param_importances.png": lambda: interactive.importances(study, evaluator, len(complete)),
        "parallel_coordinates.png": lambda: interactive.parallel(
            study, top, f"{len(complete)} completed trials through {ranked}"
        ),
        "intermediate_values.png": lambda: interactive.learning_curves(
            study, f"Validation accuracy after each epoch, {sum(1 for c in curves if c.history)} trials"
        ),
    }
    drawn = {p.name for p in report.pictures}
    for picture, make in makers.items():
        if picture not in drawn:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's "experimental" warnings
                report.interactive[picture] = interactive.write(make(), folder / INTERACTIVE[picture])
        except (ValueError, RuntimeError) as exc:
            report.missing[INTERACTIVE[picture]] = str(exc)


def _architecture_picture(arch: Any, input_shape: Any, num_classes: int, path: Path, report: Report) -> Path:
    import matplotlib.pyplot as plt

    from search.model import make_plan

    plan = make_plan(arch, tuple(input_shape), num_classes)
    rows = [("input", "x".join(map(str, plan.input_shape)), 0)] + [
        (f"{s.layer} ({s.name})", "x".join(map(str, s.shape)), s.params) for s in plan.steps
    ]
    height = 0.42 * len(rows) + 0.8
    figure, ax = plt.subplots(figsize=(7.5, height))
    ax.set_xlim(0, 10)
    ax.set_ylim(-len(rows), 1)
    ax.axis("off")
    colours = {"Conv2D": "#9ecae1", "SeparableConv2D": "#a1d99b", "DepthwiseConv2D": "#a1d99b", "Dense": "#fdae6b"}
    for i, (label, shape, params) in enumerate(rows):
        y = -i
        layer = label.split(" ")[0]
        ax.add_patch(
            plt.Rectangle((0.2, y - 0.35), 5.6, 0.7, facecolor=colours.get(layer, "#e0e0e0"), edgecolor="#555555")
        )
        ax.text(0.4, y, label, va="center", fontsize=8)
        ax.text(6.1, y, shape, va="center", fontsize=8, family="monospace")
        ax.text(8.4, y, f"{params:,}" if params else "", va="center", fontsize=8, family="monospace")
        if i:
            ax.annotate("", xy=(3.0, y + 0.35), xytext=(3.0, y + 0.65), arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.text(6.1, 0.8, "output shape", fontsize=8, weight="bold")
    ax.text(8.4, 0.8, "params", fontsize=8, weight="bold")
    ax.set_title(f"{arch.summary(num_classes)}\n{plan.params:,} parameters, {plan.flops:,} FLOPs per image", fontsize=9)
    return _save(figure, path, report)


def _first_convolution(model: Any) -> Any:
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
    return next((layer for layer in model.layers if isinstance(layer, kinds)), None)


def _filters_picture(layer: Any, path: Path, report: Report) -> Path:
    figure, how = filters_figure(layer)
    report.captions[path.name] = f"The winner's first-layer kernels ({layer.name}), {how}."
    return _save(figure, path, report)


def _feature_maps_picture(model: Any, layer: Any, data: Any, path: Path, report: Report) -> Path:
    import keras
    import numpy as np

    names = {lyr.name: lyr for lyr in model.layers}
    layer = names.get(f"{layer.name}_act", layer)  # after the activation when it is a layer of its own
    x, y = data.arrays("validation")
    chosen = pick_images(y)
    images = x[chosen]
    probe = keras.Model(model.inputs[0], [layer.output, model.outputs[0]])
    maps, probabilities = (np.asarray(t) for t in probe(images.astype("float32"), training=False))
    classes = list(data.class_names)
    truth = [classes[int(y[i])] for i in chosen]
    predicted = [classes[int(k)] for k in probabilities.argmax(axis=-1)]
    figure, channels = feature_maps_figure(images, maps, truth, predicted, layer.name)
    right = sum(t == p for t, p in zip(truth, predicted, strict=True))
    report.captions[path.name] = (
        f"What {layer.name} makes of {len(images)} validation images ({', '.join(truth)}): each row is titled with"
        f" the true class and the winner's prediction ({right} of {len(images)} right), each panel with its channel"
        + (f" (the {len(channels)} most active of {maps.shape[-1]})." if len(channels) < maps.shape[-1] else ".")
    )
    return _save(figure, path, report)


def _confusion_picture(confusion: dict[str, Any], path: Path, report: Report) -> Path:
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(confusion["matrix"])
    names = confusion["class_names"]
    size = max(4.0, 0.5 * len(names) + 1.5)
    figure, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 10 else 0, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(
                j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > matrix.max() / 2 else "black"
            )
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    ax.set_title(f"test split: accuracy {accuracy:.4f} on {matrix.sum()} images", fontsize=9)
    return _save(figure, path, report)


_STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
    "img{max-width:100%;border:1px solid #ddd}td{padding:2px 12px 2px 0}figure{margin:2.5em 0}"
    "iframe{width:100%;height:480px;border:1px solid #ddd}figcaption{margin-top:.4em}"
    ".links{font-size:.85em;color:#555}"
)


def _figure(picture: Path, report: Report) -> str:
    """One picture on the page: the interactive plot when there is one (its static PNG linked), else the PNG."""
    caption = report.captions.get(picture.name) or PICTURES.get(picture.name, "")
    alt = html.escape(report.descriptions.get(picture.name) or caption)
    name = html.escape(picture.name)
    text = html.escape(caption)
    if picture.name in report.interactive:
        page = html.escape(report.interactive[picture.name].name)
        return (
            f"<figure><iframe src='{page}' title='{alt}'></iframe><figcaption>{text}"
            f"<br><span class='links'>static picture (as logged in MLflow): <a href='{name}'>{name}</a>;"
            f" full page: <a href='{page}'>{page}</a></span></figcaption></figure>"
        )
    return f"<figure><img src='{name}' alt='{alt}'><figcaption>{text}</figcaption></figure>"


def _page(name: str, parent: Any, report: Report, counts: dict[str, int]) -> str:
    tags, metrics = parent.data.tags, parent.data.metrics
    rows = [
        ("search", name),
        ("engine", tags.get("engine", "")),
        ("space", tags.get("space", "")),
        ("data", f"{tags.get('data', '')} (fingerprint {tags.get('data_fingerprint', '')})"),
        ("trials", describe_counts(counts) if counts else "none"),
        ("best trial", tags.get("best_trial", "none")),
        ("best architecture", tags.get("best_architecture", "")),
        ("test accuracy", f"{metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else "not evaluated"),
    ]
    if "chance_accuracy" in metrics:  # what answering the largest class alone scores on the test split
        rows.append(("chance level", f"{metrics['chance_accuracy']:.4f} (the largest class's share of the test split)"))
    if "winner_why" in tags:  # search.tracking._paid: start point or searched, the gain, the runner-up
        rows.append(("why it won", tags["winner_why"]))
    if "champion_rule" in tags:
        rows.append(("champion chosen by", tags["champion_rule"]))
    beside = {
        "single_run_test_accuracy": "test accuracy of the best single run (re-checked away; for the record)",
        "unrefitted_test_accuracy": "test accuracy without the refit",
    }
    rows += [(words, f"{metrics[key]:.4f}") for key, words in beside.items() if key in metrics]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>cnn-search report: {html.escape(name)}</title>",
        f"<style>{_STYLE}</style>",
        f"</head><body><h1>cnn-search report: {html.escape(name)}</h1><table>",
        *(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>" for k, v in rows),
        "</table>",
    ]
    rechecked = json.loads(tags.get("recheck") or "{}")
    if rechecked:  # every re-checked candidate: its search value, re-runs, mean ± std
        parts.append("<h2>Re-checked candidates</h2><table><tr><th>trial</th><th>in the search</th><th>re-runs</th>"
                     "<th>mean ± std</th></tr>")  # fmt: skip
        for trial, f in sorted(rechecked.items(), key=lambda item: -(item[1]["mean"] or 0)):
            runs = ", ".join("failed" if v is None else f"{v:.4f}" for v in f["runs"])
            mean = "" if f["mean"] is None else f"{f['mean']:.4f} ± {f['std'] or 0:.4f}"
            mark = " (champion)" if trial == tags.get("best_trial") else ""
            parts.append(f"<tr><td>{trial}{mark}</td><td>{f['search']:.4f}</td><td>{runs}</td><td>{mean}</td></tr>")
        parts.append("</table>")
    parts += [_figure(picture, report) for picture in report.pictures]
    if report.missing:
        parts.append("<h2>Not drawn</h2><ul>")
        parts += [f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in report.missing.items()]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def make_report(
    name: str,
    *,
    runs_dir: str | Path = "runs",
    tracking_uri: str | None = None,
    out: str | Path | None = None,
    data: Any = None,
    model: Any = None,
    log_to_mlflow: bool = True,
) -> Report:
    """Write the pictures of search ``name`` and ``index.html`` into ``out`` (default
    ``runs/reports/NAME``) and log them on the search's run. ``data`` and ``model`` (the winner)
    may be passed when already loaded; otherwise they are loaded from the record."""
    import matplotlib

    matplotlib.use("Agg")
    from search.tracking import default_tracking_uri, find_search

    runs = Path(runs_dir)
    client, parent, children = find_search(name, tracking_uri or default_tracking_uri(runs))
    folder = Path(out) if out is not None else runs / "reports" / name
    folder.mkdir(parents=True, exist_ok=True)
    report = Report(folder)
    curves, counts = _trials(client, children)
    _search_pictures(_study(curves), curves, counts, folder, report)
    front_pictures(client, name, parent, children, folder, report)
    best = parent.data.tags.get("best_trial")
    if best is None:
        for file in list(PICTURES)[4:]:
            report.missing[file] = "no trial completed: there is no winner to draw"
    else:
        _winner_pictures(client, parent, runs, name, int(best), data, model, folder, report)
    report.html.write_text(_page(name, parent, report, counts))
    if log_to_mlflow:  # every file but the 4.8 MB plotly.js: it would be stored again on every (re)run
        from search.report._interactive import PLOTLY_JS

        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name != PLOTLY_JS:
                client.log_artifact(parent.info.run_id, str(path), artifact_path="report")
    return report


def _winner_pictures(
    client: Any, parent: Any, runs: Path, name: str, best: int, data: Any, model: Any, folder: Path, report: Report
) -> None:
    import keras

    from search.model import Architecture

    run_id = parent.info.run_id
    arch = Architecture.from_dict(
        json.loads(Path(client.download_artifacts(run_id, "best_architecture.json")).read_text())
    )
    shape = tuple(int(d) for d in parent.data.params.get("input_shape", "8x8x1").split("x"))
    classes = int(parent.data.params.get("num_classes", "10"))
    _architecture_picture(arch, shape, classes, folder / "architecture.png", report)
    if model is None:
        kept = runs / "models" / name / f"trial-{best}.keras"
        if kept.is_file():
            model = keras.saving.load_model(kept, safe_mode=True)
        else:
            import mlflow

            mlflow.set_tracking_uri(client.tracking_uri)
            model = mlflow.keras.load_model(f"models:/{name}@champion")
    layer = _first_convolution(model)
    if layer is None:
        for file in ("first_layer_filters.png", "feature_maps.png", "filter_patches.png", "pooling.png"):
            report.missing[file] = "the winner has no convolution layer"
    else:
        _filters_picture(layer, folder / "first_layer_filters.png", report)
        if data is None:
            from search.data import DataError, reload_recorded

            tags = parent.data.tags
            source, seed = tags.get("data", "digits"), int(tags.get("data_seed", "0"))
            try:
                data = reload_recorded(source, seed, tags.get("data_fingerprint"), search=name, fix="")
            except DataError as exc:  # the other pictures do not need the images
                report.missing.update(
                    dict.fromkeys(("feature_maps.png", "filter_patches.png", "pooling.png"), str(exc))
                )
        if data is not None:
            _feature_maps_picture(model, layer, data, folder / "feature_maps.png", report)
            inside_pictures(model, layer, data, folder, report)
    try:
        confusion = json.loads(Path(client.download_artifacts(run_id, "confusion_matrix.json")).read_text())
    except Exception:  # an MLflow error when the artifact is absent
        report.missing["confusion_matrix.png"] = "the winner was not evaluated on the test split yet"
    else:
        _confusion_picture(confusion, folder / "confusion_matrix.png", report)
