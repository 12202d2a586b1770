"""Interactive versions of the search pictures: Optuna's plotly plots, relabelled in the search's words.

Each is a small HTML file next to ``index.html``; they share one ``plotly.min.js`` written beside them
(``include_plotlyjs="directory"``), so the report opens offline and the library is stored once.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from search.report._plots import ACCURACY, MIN_TRIALS_FOR_IMPORTANCES

#: The interactive file drawn for each static search picture.
INTERACTIVE = {
    "optimization_history.png": "optimization_history.html",
    "param_importances.png": "param_importances.html",
    "parallel_coordinates.png": "parallel_coordinates.html",
    "intermediate_values.png": "intermediate_values.html",
}
PLOTLY_JS = "plotly.min.js"


def plotly_missing() -> str | None:
    """Why the interactive pictures cannot be drawn (plotly not installed), or None."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        return "plotly is not installed (pip install plotly)"
    return None


def _style(figure: Any, title: str, x: str, y: str | None = None) -> Any:
    figure.update_layout(
        title={"text": title, "font": {"size": 14}},
        template="plotly_white",
        height=460,
        margin={"l": 70, "r": 30, "t": 60, "b": 60},
        legend={"orientation": "h", "y": -0.2},
    )
    figure.update_xaxes(title_text=x)
    if y is not None:
        figure.update_yaxes(title_text=y)
    return figure


def history(study: Any, title: str) -> Any:
    """Optuna's optimization history, with the pruned trials added (grey x at their best epoch), as in
    the static picture, and the traces named in the search's words."""
    import optuna
    import plotly.graph_objects as go
    from optuna.visualization import plot_optimization_history

    figure = plot_optimization_history(study, target_name=ACCURACY)
    names = {ACCURACY: "completed trial", "Best Value": "best so far"}
    for trace in figure.data:
        trace.name = names.get(trace.name, trace.name)
        if trace.name == "Infeasible Trial" and not trace.x:
            trace.showlegend = False
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values]
    if pruned:
        figure.add_trace(
            go.Scatter(
                x=[t.number for t in pruned],
                y=[max(t.intermediate_values.values()) for t in pruned],
                mode="markers",
                marker={"symbol": "x", "size": 9, "color": "#888888"},
                name="pruned trial (its best epoch before it stopped)",
                hovertemplate="trial %{x}: %{y:.4f} (pruned)<extra></extra>",
            )
        )
    return _style(figure, title, "trial", ACCURACY)


def learning_curves(study: Any, title: str) -> Any:
    """Optuna's intermediate values with the epochs counted from 1 (Optuna's steps count from 0),
    styled as the static picture: the best trial red, completed trials blue, pruned ones dashed grey."""
    import optuna
    from optuna.visualization import plot_intermediate_values

    figure = plot_intermediate_values(study)
    trials = {f"Trial{t.number}": t for t in study.trials}
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(done, key=lambda t: t.value).number if done else None
    for trace in figure.data:
        trace.x = [step + 1 for step in trace.x]
        trial = trials.get(trace.name or "")
        if trial is None:
            continue
        trace.name = f"trial {trial.number}"
        if trial.number == best:
            trace.update(line={"color": "#d62728", "width": 3}, marker={"color": "#d62728", "size": 7})
            trace.name += " (best)"
        elif trial.state == optuna.trial.TrialState.PRUNED:
            trace.update(line={"color": "#888888", "dash": "dash", "width": 1.5}, marker={"color": "#888888"})
            trace.name += " (pruned)"
        else:
            trace.update(line={"color": "#1f77b4", "width": 1.5}, marker={"color": "#1f77b4", "size": 5}, opacity=0.75)
    figure = _style(figure, title, "epoch", ACCURACY)
    figure.update_xaxes(dtick=1)
    figure.update_layout(showlegend=True, legend={"orientation": "v", "x": 1.02, "y": 1})
    return figure


def importances(study: Any, evaluator: Any, completed: int) -> Any:
    from optuna.visualization import plot_param_importances

    title = f"Parameter importances (fANOVA) from {completed} completed trials"
    if completed < MIN_TRIALS_FOR_IMPORTANCES:
        title += (
            f"<br><span style='color:#b22222'>unreliable below {MIN_TRIALS_FOR_IMPORTANCES} completed trials</span>"
        )
    figure = plot_param_importances(study, evaluator=evaluator, target_name=ACCURACY)
    return _style(figure, title, f"importance for {ACCURACY}", "parameter")


def parallel(study: Any, params: list[str] | None, title: str) -> Any:
    """Optuna's parallel coordinates recoloured with viridis (low accuracy dark purple instead of white
    on white), thicker lines, and axis names broken at "/" so they do not run into each other."""
    from optuna.visualization import plot_parallel_coordinate
    from plotly.colors import sample_colorscale

    figure = plot_parallel_coordinate(study, params=params, target_name=ACCURACY)
    for trace in figure.data:
        if trace.mode == "lines" and trace.y is not None and len(trace.y) > 1 and trace.y[0] is not None:
            # the first axis is the accuracy, scaled to [0, 1] exactly as Optuna scales its colours
            trace.line.color = sample_colorscale("Viridis", [float(trace.y[0])])[0]
            trace.line.width = 2
            trace.opacity = 0.85
        elif trace.marker is not None and trace.marker.colorscale is not None:
            trace.marker.colorscale = "Viridis"
            trace.marker.colorbar.title = {"text": ACCURACY}
    ticks = figure.layout.xaxis.ticktext
    if ticks:
        full = [next((p for p in params or [] if t.endswith("...") and p.startswith(t[:-3])), t) for t in ticks]
        figure.update_xaxes(ticktext=[str(t).replace("/", "/<br>") for t in full])
    figure = _style(figure, title, "", None)
    figure.update_layout(margin={"l": 40, "r": 40, "t": 70, "b": 80}, showlegend=False)
    return figure


def write(figure: Any, path: Path) -> Path:
    """``path``, an HTML file that loads the ``plotly.min.js`` beside it (written once per folder)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure.write_html(path, include_plotlyjs="directory", full_html=True, config={"displaylogo": False})
    return path
