"""The pictures that explain a search, made from its MLflow record (so any engine's search has them).

Written as PNG files plus ``index.html`` that ties them together, and logged on the search's run
under ``report/``:

* ``optimization_history.png`` — each trial's validation accuracy and the best so far;
* ``param_importances.png`` — which parameters mattered (Optuna's fANOVA over the trials);
* ``parallel_coordinates.png`` — every trial as a line through its parameter values;
* ``intermediate_values.png`` — validation accuracy per epoch of every trial: where pruning cut;
* ``architecture.png`` — the winner drawn layer by layer with output shapes and parameters;
* ``first_layer_filters.png`` — the winner's first convolution kernels;
* ``feature_maps.png`` — what that convolution makes of a few validation images;
* ``confusion_matrix.png`` — the winner on the test split (evaluated once, at the end of the search).

The four search pictures use Optuna's matplotlib plots over an in-memory study rebuilt from the
MLflow trial runs (parameters, final and per-epoch validation accuracy). A picture that cannot be
made (fewer than two completed trials for importances, no convolution in the winner) is listed on
the page with the reason instead.
"""

from __future__ import annotations

import html
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("search")

PICTURES = {
    "optimization_history.png": "Validation accuracy of each trial, and the best so far.",
    "param_importances.png": "How much each parameter explains the validation accuracy (fANOVA).",
    "parallel_coordinates.png": "Every trial as a line through its 6 most important parameters, coloured by accuracy.",
    "intermediate_values.png": "Validation accuracy after each epoch: pruned trials stop early.",
    "architecture.png": "The winning CNN, layer by layer: output shape and parameters.",
    "first_layer_filters.png": "The winner's first-layer kernels (averaged over input channels).",
    "feature_maps.png": "What the first convolution (after its activation) makes of a few validation images.",
    "confusion_matrix.png": "The winner on the test split: rows are true classes, columns predictions.",
}


@dataclass
class Report:
    """What :func:`make_report` wrote."""

    folder: Path
    pictures: list[Path] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

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


def _study(client: Any, children: list[Any]) -> Any:
    """An in-memory Optuna study of the trials (complete and pruned), whatever engine ran them."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for run in children:
        state = run.data.tags.get("state")
        if state not in ("complete", "pruned"):
            continue
        params = {k: _value(v) for k, v in run.data.params.items()}
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy")}
        rows.append((int(run.data.tags["trial"]), state, params, run.data.metrics.get("best_val_accuracy"), history))
    values: dict[str, list[Any]] = {}
    for _, _, params, _, _ in rows:
        for k, v in params.items():
            values.setdefault(k, []).append(v)
    distributions: dict[str, Any] = {}
    for k, vs in values.items():
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs) and min(vs) < max(vs):
            distributions[k] = FloatDistribution(float(min(vs)), float(max(vs)))
        else:
            distributions[k] = CategoricalDistribution(sorted(set(vs), key=str))
    study = optuna.create_study(direction="maximize")
    for number, state, params, value, history in sorted(rows, key=lambda r: r[0]):
        complete = state == "complete" and value is not None
        study.add_trial(
            optuna.trial.create_trial(
                params={
                    k: float(v) if isinstance(distributions[k], FloatDistribution) else v for k, v in params.items()
                },
                distributions={k: distributions[k] for k in params},
                value=value if complete else None,
                state=optuna.trial.TrialState.COMPLETE if complete else optuna.trial.TrialState.PRUNED,
                intermediate_values=history,
                user_attrs={"trial": number},
            )
        )
    return study


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def _search_pictures(study: Any, folder: Path, report: Report) -> None:
    import optuna
    from optuna.visualization import matplotlib as ovm

    plots: dict[str, Any] = {
        "optimization_history.png": ovm.plot_optimization_history,
        "param_importances.png": ovm.plot_param_importances,
        "parallel_coordinates.png": ovm.plot_parallel_coordinate,
        "intermediate_values.png": ovm.plot_intermediate_values,
    }
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    top: list[str] | None = None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)  # the same ranking in both pictures
    if len(complete) >= 2:  # the parallel coordinates keep the 6 parameters that matter most (readable)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        top = list(importances)[:6] or None
    for file, plot in plots.items():
        if file == "param_importances.png" and len(complete) < 2:
            report.missing[file] = f"needs at least 2 completed trials; this search has {len(complete)}"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's "experimental" warnings
                if file == "parallel_coordinates.png":
                    axes = plot(study, params=top)
                elif file == "param_importances.png":
                    axes = plot(study, evaluator=evaluator)
                else:
                    axes = plot(study)
        except (ValueError, RuntimeError) as exc:
            report.missing[file] = str(exc)
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        report.pictures.append(_save(figure, folder / file))


def _architecture_picture(arch: Any, input_shape: Any, num_classes: int, path: Path) -> Path:
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
    return _save(figure, path)


def _first_convolution(model: Any) -> Any:
    import keras

    kinds = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
    return next((layer for layer in model.layers if isinstance(layer, kinds)), None)


def _filters_picture(layer: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt
    import numpy as np

    kernel = np.asarray(layer.get_weights()[0])  # (k, k, in, out) or (k, k, in, multiplier)
    maps = kernel.mean(axis=2)  # (k, k, out)
    n = min(maps.shape[-1], 32)
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(maps[:, :, i], cmap="coolwarm", vmin=-abs(maps).max(), vmax=abs(maps).max())
    figure.suptitle(f"{layer.name}: {n} of {maps.shape[-1]} kernels, {kernel.shape[0]}x{kernel.shape[1]}", fontsize=9)
    return _save(figure, path)


def _feature_maps_picture(model: Any, layer: Any, images: Any, path: Path) -> Path:
    import keras
    import matplotlib.pyplot as plt
    import numpy as np

    names = {lyr.name: lyr for lyr in model.layers}
    layer = names.get(f"{layer.name}_act", layer)  # after the activation when it is a layer of its own
    probe = keras.Model(model.inputs[0], layer.output)
    maps = np.asarray(probe(images.astype("float32"), training=False))
    channels = min(8, maps.shape[-1])
    figure, axes = plt.subplots(len(images), channels + 1, figsize=(1.1 * (channels + 1), 1.15 * len(images) + 0.4))
    axes = np.atleast_2d(axes)
    for r, image in enumerate(images):
        axes[r, 0].imshow(image[..., 0] if image.shape[-1] == 1 else image.astype("uint8"), cmap="gray")
        for c in range(channels + 1):
            axes[r, c].axis("off")
        for c in range(channels):
            axes[r, c + 1].imshow(maps[r, :, :, c], cmap="viridis")
    axes[0, 0].set_title("image", fontsize=8)
    figure.suptitle(f"feature maps: output of {layer.name} for 4 validation images", fontsize=9)
    return _save(figure, path)


def _confusion_picture(confusion: dict[str, Any], path: Path) -> Path:
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
    return _save(figure, path)


def _page(name: str, parent: Any, report: Report) -> str:
    tags, metrics = parent.data.tags, parent.data.metrics
    rows = [
        ("search", name),
        ("engine", tags.get("engine", "")),
        ("space", tags.get("space", "")),
        ("data", f"{tags.get('data', '')} (fingerprint {tags.get('data_fingerprint', '')})"),
        ("best trial", tags.get("best_trial", "none")),
        ("best architecture", tags.get("best_architecture", "")),
        ("test accuracy", f"{metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else "not evaluated"),
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>cnn-search report: {html.escape(name)}</title>",
        "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
        "img{max-width:100%;border:1px solid #ddd}td{padding:2px 12px 2px 0}figure{margin:2em 0}</style>",
        f"</head><body><h1>cnn-search report: {html.escape(name)}</h1><table>",
        *(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>" for k, v in rows),
        "</table>",
    ]
    for picture in report.pictures:
        caption = PICTURES.get(picture.name, "")
        parts.append(
            f"<figure><img src='{html.escape(picture.name)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
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
    _search_pictures(_study(client, children), folder, report)
    best = parent.data.tags.get("best_trial")
    if best is None:
        for file in list(PICTURES)[4:]:
            report.missing[file] = "no trial completed: there is no winner to draw"
    else:
        _winner_pictures(client, parent, runs, name, int(best), data, model, folder, report)
    report.html.write_text(_page(name, parent, report))
    if log_to_mlflow:
        client.log_artifacts(parent.info.run_id, str(folder), artifact_path="report")
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
    report.pictures.append(_architecture_picture(arch, shape, classes, folder / "architecture.png"))
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
        for file in ("first_layer_filters.png", "feature_maps.png"):
            report.missing[file] = "the winner has no convolution layer"
    else:
        report.pictures.append(_filters_picture(layer, folder / "first_layer_filters.png"))
        if data is None:
            from search.data import load_dataset

            tags = parent.data.tags
            data = load_dataset(tags.get("data", "digits"), seed=int(tags.get("data_seed", "0")))
        images = data.arrays("validation")[0][:4]
        report.pictures.append(_feature_maps_picture(model, layer, images, folder / "feature_maps.png"))
    try:
        confusion = json.loads(Path(client.download_artifacts(run_id, "confusion_matrix.json")).read_text())
    except Exception:  # an MLflow error when the artifact is absent
        report.missing["confusion_matrix.png"] = "the winner was not evaluated on the test split yet"
    else:
        report.pictures.append(_confusion_picture(confusion, folder / "confusion_matrix.png"))
