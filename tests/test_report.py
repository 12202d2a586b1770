"""Pictures of a search: logged on its MLflow run at the end of every search, and `cnn-search report`."""

from __future__ import annotations

import pytest
from PIL import Image

from search.report import PICTURES

from .helpers import cnn_search, mlflow_client, runs_of

pytestmark = pytest.mark.slow
NAME = "tiny-digits"


def _valid_png(path) -> None:
    with Image.open(path) as img:
        img.verify()  # a complete, uncorrupted PNG
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width >= 200 and img.height >= 100, (path, img.size)
        import numpy as np

        assert len(np.unique(np.asarray(img.convert("L")))) > 10, path  # not a blank canvas


def test_every_search_logs_its_pictures_and_report_writes_the_page(tmp_path):
    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--trials", "4", "--epochs", "2", "--seed", "0", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-3000:]
    parent = runs_of(runs, NAME)[0][0]
    client = mlflow_client(runs)
    logged = {a.path.split("/")[-1] for a in client.list_artifacts(parent.info.run_id, "report")}
    assert set(PICTURES) | {"index.html"} <= logged
    local = client.download_artifacts(parent.info.run_id, "report", str(tmp_path))
    for name in PICTURES:
        _valid_png(f"{local}/{name}")

    folder = tmp_path / "pictures"
    made = cnn_search("report", NAME, "--runs-dir", str(runs), "--out", str(folder))
    assert made.returncode == 0, made.stderr[-3000:]
    for name in PICTURES:
        _valid_png(folder / name)
        assert str(folder / name) in made.stdout
    page = (folder / "index.html").read_text()
    assert all(f"src='{name}'" in page for name in PICTURES)
    assert parent.data.tags["best_architecture"] in page


def test_pictures_that_cannot_be_drawn_are_said(tmp_path):
    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--trials", "1", "--epochs", "1", "--runs-dir", str(runs), "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    parent = runs_of(runs, NAME)[0][0]
    assert not mlflow_client(runs).list_artifacts(parent.info.run_id, "report")  # --no-report
    made = cnn_search("report", NAME, "--runs-dir", str(runs), "--out", str(tmp_path / "p"))
    assert made.returncode == 0, made.stderr[-3000:]
    assert "not drawn: param_importances.png: needs at least 2 completed trials; this search has 1" in made.stderr
    assert "param_importances.png: needs at least 2 completed trials" in (tmp_path / "p" / "index.html").read_text()
    missing = cnn_search("report", "nope", "--runs-dir", str(runs))
    assert missing.returncode == 1 and "no search named 'nope'" in missing.stderr
