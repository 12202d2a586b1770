"""Pictures of a search: logged on its MLflow run at the end of every search, and `cnn-search report`.

One real small search on RGB images (a module fixture) serves most tests: it is drawn at the end of
the search and once more by `cnn-search report`."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from search.report import PICTURES
from search.report._interactive import INTERACTIVE, PLOTLY_JS
from search.report._plots import MIN_TRIALS_FOR_IMPORTANCES

from .helpers import cnn_search, mlflow_client, runs_of

pytestmark = pytest.mark.slow
NAME = "tiny-digits"
RGB = "tiny-rgb"
CLASSES = ("circle", "square", "triangle", "cross")


def _valid_png(path) -> None:
    with Image.open(path) as img:
        img.verify()  # a complete, uncorrupted PNG
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width >= 200 and img.height >= 100, (path, img.size)
        assert len(np.unique(np.asarray(img.convert("L")))) > 10, path  # not a blank canvas


def _description(path) -> str:
    """What the report wrote into the PNG's metadata: its titles and axis names."""
    with Image.open(path) as img:
        return img.text["Description"]


def _text(page: str) -> str:
    import html

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture(scope="module")
def rgb_search(tmp_path_factory):
    """A 4-trial search without a pruner on 16x16 RGB shapes, pictures drawn at its end, and
    `cnn-search report` run once more on it: (runs dir, report folder, the report's stdout)."""
    from search.data import make_shapes

    root = tmp_path_factory.mktemp("report")
    x, y, names = make_shapes(count=400, image_size=16, channels=3, num_classes=4, seed=0)
    np.savez(root / "rgb.npz", x=x, y=y, class_names=np.array(names))
    runs = root / "runs"
    out = cnn_search(
        "run", "tiny", "--data", str(root / "rgb.npz"), "--trials", "4", "--epochs", "2", "--pruner", "none",
        "--seed", "0", "--runs-dir", str(runs),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    folder = root / "pictures"
    made = cnn_search("report", RGB, "--runs-dir", str(runs), "--out", str(folder))
    assert made.returncode == 0, made.stderr[-3000:]
    return runs, folder, made.stdout


def test_every_search_logs_its_pictures_and_report_writes_the_page(rgb_search, tmp_path):
    runs, folder, stdout = rgb_search
    parent = runs_of(runs, RGB)[0][0]
    client = mlflow_client(runs)
    logged = {a.path.split("/")[-1] for a in client.list_artifacts(parent.info.run_id, "report")}
    drawn = [name for name in PICTURES if name != "param_importances.png"]  # a few trials: no importances
    if not re.search(r"/(max|avg)", parent.data.tags["best_architecture"]):  # a winner without pooling
        drawn.remove("pooling.png")
        assert "the winner has no pooling layer" in _text((folder / "index.html").read_text())
    assert set(drawn) | {INTERACTIVE[n] for n in drawn if n in INTERACTIVE} | {"index.html"} <= logged
    assert PLOTLY_JS not in logged and (folder / PLOTLY_JS).is_file()  # 4.8 MB: on disk once, not on every run
    local = client.download_artifacts(parent.info.run_id, "report", str(tmp_path))
    for name in drawn:
        _valid_png(f"{local}/{name}")

    for name in drawn:
        _valid_png(folder / name)
        assert str(folder / name) in stdout
    page = (folder / "index.html").read_text()
    assert all(f"'{name}'" in page for name in drawn)  # shown (img) or linked beside its interactive version
    assert parent.data.tags["best_architecture"] in page
    text = _text(page)  # why the winner won (start point or searched, its gain, the runner-up) and chance beside it
    why = parent.data.tags["winner_why"]
    assert f"why it won {why}" in text and "runner-up trial" in why
    assert f"chance level {parent.data.metrics['chance_accuracy']:.4f}" in text


def test_interactive_versions_share_one_local_plotly(rgb_search):
    """Optuna's plotly plots are on the page (iframes) and load the plotly.js beside them: offline."""
    _, folder, _ = rgb_search
    page = (folder / "index.html").read_text()
    assert (folder / PLOTLY_JS).stat().st_size > 1_000_000  # the whole library, written once
    for picture, interactive in INTERACTIVE.items():
        if picture == "param_importances.png":  # a few trials: not drawn (test_importances_are_drawn_only_...)
            continue
        assert f"<iframe src='{interactive}'" in page
        text = (folder / interactive).read_text()
        assert f'src="{PLOTLY_JS}"' in text and "cdn.plot.ly" not in text, interactive
        assert "validation accuracy" in text


def test_captions_say_pruned_only_when_trials_were_pruned(rgb_search, tmp_path):
    """`--pruner none`: a trial is pruned only when it does not learn (the health check); the page
    names pruning exactly when some trial was, with how many and why."""
    runs, folder, _ = rgb_search
    pruned = [c for c in runs_of(runs, RGB)[1] if c.data.tags["state"] == "pruned"]
    text = _text((folder / "index.html").read_text())
    if pruned:
        was = "was" if len(pruned) == 1 else "were"
        assert f"{len(pruned)} of them {was} pruned, stopped early (" in text
    else:
        assert "prun" not in text.lower(), text
        assert "each ran 2 epochs" in text

    one = tmp_path / "runs"  # one trial of one epoch: nothing can be stopped early
    out = cnn_search("run", "tiny", "--trials", "1", "--epochs", "1", "--runs-dir", str(one), "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    made = cnn_search("report", NAME, "--runs-dir", str(one), "--out", str(tmp_path / "p"))
    assert made.returncode == 0, made.stderr[-3000:]
    page = (tmp_path / "p" / "index.html").read_text()
    assert "prun" not in _text(page).lower()
    needs = f"param_importances.png: needs at least {MIN_TRIALS_FOR_IMPORTANCES} completed trials to mean something"
    assert needs in page and "this search has 1" in page
    assert f"not drawn: {needs}" in made.stderr


def test_importances_are_drawn_only_from_enough_completed_trials(rgb_search, tmp_path):
    """A 0.59 bar from 2 completed trials filled the page (its caveat beside it): below
    MIN_TRIALS_FOR_IMPORTANCES the page says how many completed trials are needed instead of drawing them;
    from there on they are drawn (here from a real Optuna study of that many trials, nothing trained)."""
    import optuna

    from search.report._plots import Curve
    from search.report._report import Report, _search_pictures

    runs, folder, _ = rgb_search
    completed = sum(c.data.tags["state"] == "complete" for c in runs_of(runs, RGB)[1])
    assert 2 <= completed < MIN_TRIALS_FOR_IMPORTANCES
    assert not (folder / "param_importances.png").exists()
    assert not (folder / INTERACTIVE["param_importances.png"]).exists()
    text = _text((folder / "index.html").read_text())
    assert f"needs at least {MIN_TRIALS_FOR_IMPORTANCES} completed trials to mean something" in text
    assert f"this search has {completed}" in text and "fANOVA over" not in text

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    curves = []
    for n in range(MIN_TRIALS_FOR_IMPORTANCES):
        trial = study.ask()
        filters, rate = trial.suggest_int("filters", 8, 64), trial.suggest_float("rate", 1e-4, 1e-1, log=True)
        value = 0.5 + filters / 200 + rate  # filters explain most of it
        study.tell(trial, value)
        curves.append(Curve(n, "complete", {0: value}, value, {"filters": filters, "rate": rate}))
    enough = Report(tmp_path / "enough")
    enough.folder.mkdir()
    _search_pictures(study, curves, {"complete": len(curves)}, enough.folder, enough)
    assert "param_importances.png" not in enough.missing
    _valid_png(enough.folder / "param_importances.png")
    said = _description(enough.folder / "param_importances.png")
    assert f"from {MIN_TRIALS_FOR_IMPORTANCES} completed trials" in said and "unreliable" not in said
    assert enough.captions["param_importances.png"].startswith("How much each parameter explains")


def test_search_pictures_are_labelled_in_the_searchs_words(rgb_search):
    """'validation accuracy' and 'epoch' (from 1), in the PNGs and in the interactive versions."""
    from search.report import _interactive
    from search.report._report import _study, _trials
    from search.tracking import default_tracking_uri, find_search

    runs, folder, _ = rgb_search
    curves = _description(folder / "intermediate_values.png")
    assert "x axis: epoch; y axis: validation accuracy" in curves
    assert "x axis: trial; y axis: validation accuracy" in _description(folder / "optimization_history.png")
    assert "axes: " in _description(folder / "parallel_coordinates.png")
    assert "validation accuracy" in _description(folder / "parallel_coordinates.png")

    client, _, children = find_search(RGB, default_tracking_uri(runs))
    figure = _interactive.learning_curves(_study(_trials(client, children)[0]), "t")
    assert figure.layout.xaxis.title.text == "epoch" and figure.layout.yaxis.title.text == "validation accuracy"
    assert min(min(trace.x) for trace in figure.data if trace.x) == 1  # Optuna's step 0 is epoch 1


def test_rgb_filters_are_drawn_in_colour(rgb_search):
    _, folder, _ = rgb_search
    with Image.open(folder / "first_layer_filters.png") as img:
        pixels = np.asarray(img.convert("RGB")).astype(int)
    coloured = (np.abs(pixels[..., 0] - pixels[..., 1]) > 30) | (np.abs(pixels[..., 1] - pixels[..., 2]) > 30)
    assert coloured.sum() > 500, "the kernels of an RGB model are drawn grey"
    assert "in colour" in _description(folder / "first_layer_filters.png")


def test_filter_patches_show_what_each_filter_responds_to_in_colour(rgb_search):
    """Issue 34, item 9: the kernels of an RGB model look like noise; the patches that excite each filter
    most say what it responds to. Each row is the filter's strongest patches, the first the strongest
    response over the validation images (checked here against the model's own output)."""
    import keras

    from search.data import load_dataset
    from search.report._inside import IMAGES, PATCHES, strongest

    runs, folder, _ = rgb_search
    _valid_png(folder / "filter_patches.png")
    with Image.open(folder / "filter_patches.png") as img:
        pixels = np.asarray(img.convert("RGB")).astype(int)
    coloured = (np.abs(pixels[..., 0] - pixels[..., 1]) > 30) | (np.abs(pixels[..., 1] - pixels[..., 2]) > 30)
    assert coloured.sum() > 500, "the patches of an RGB model are drawn grey"
    said = _description(folder / "filter_patches.png")
    assert f"the {PATCHES} validation patches (3x3 pixels) that excite each filter most" in said, said
    page = _text((folder / "index.html").read_text())
    assert "What the winner's first-layer filters respond to" in page
    # the rows: the filters by their strongest response, each row's first patch that response's image
    parent = runs_of(runs, RGB)[0][0]
    model = keras.saving.load_model(runs / "models" / RGB / f"trial-{parent.data.tags['best_trial']}.keras")
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    x, _ = load_dataset(str(runs.parent / "rgb.npz"), seed=0).arrays("validation")
    maps = np.asarray(keras.Model(model.inputs[0], conv.output)(np.asarray(x[:IMAGES], "float32")))
    top = int(maps.reshape(-1, maps.shape[-1]).max(axis=0).argmax())
    image, row, column = strongest(maps, filter=top, count=1)[0]
    assert maps[image, row, column, top] == maps[..., top].max()


def test_the_pooling_picture_shows_a_map_before_and_after(tmp_path):
    """A winner with max pooling (the tiny space's start point on digits): one image, the channel most
    active there, before (8x8) and after (4x4) its first pooling layer."""
    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--data", "digits", "--trials", "1", "--epochs", "1", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-3000:]
    folder = runs / "reports" / NAME
    _valid_png(folder / "pooling.png")
    said = _description(folder / "pooling.png")
    assert "What max pooling 2x2 keeps" in said and "input 8x8" in said, said
    assert re.search(r"channel \d+ before block0_pool: 8x8 \| channel \d+ after block0_pool: 4x4", said), said
    page = _text((folder / "index.html").read_text())
    assert "before and after block0_pool: 8x8 -> 4x4" in page


def test_feature_maps_are_titled_with_classes_and_channels(rgb_search):
    _, folder, _ = rgb_search
    text = _description(folder / "feature_maps.png")
    for name in CLASSES:  # one validation image per class, each titled with its true and predicted class
        assert f"true: {name} predicted: " in text, text
    predicted = re.findall(r"predicted: (\w+)", text)
    assert len(predicted) == 4 and set(predicted) <= set(CLASSES)
    assert len(set(re.findall(r"channel \d+", text))) >= 4
    page = _text((folder / "index.html").read_text())
    assert "each row is titled with the true class and the winner's prediction" in page


def test_the_history_draws_the_best_start_point_as_a_line(rgb_search):
    """Issue 32, item 5: the optimization history shows what the search paid over the space's start points."""
    from search.report._plots import history_figure
    from search.report._report import _trials
    from search.tracking import default_tracking_uri, find_search

    runs, _, _ = rgb_search
    client, _, children = find_search(RGB, default_tracking_uri(runs))
    curves, counts = _trials(client, children)
    starts = [c for c in curves if c.start_point is not None]
    assert starts and all(c.trial == c.start_point for c in starts)  # tried first, in order
    figure = history_figure(curves, counts)
    (line,) = [x for x in figure.axes[0].get_lines() if x.get_label() == "best start point"]
    assert line.get_ydata()[0] == pytest.approx(max(c.best for c in starts if c.state == "complete"))
    searched = [c for c in curves if c.start_point is None]
    assert searched and "best start point" not in [
        x.get_label() for x in history_figure(searched, counts).axes[0].get_lines()
    ]
