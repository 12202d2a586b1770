"""The notebooks: committed without outputs, and executed top to bottom on a headless kernel."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
EXPECTED = {  # lines each notebook must print, so an empty run cannot pass
    "01_cnn_building_blocks.ipynb": ("hand-made convolution == keras Conv2D",),
    "02_search_and_compare.ipynb": ("epochs trained", "on the front: trial", "(--pick val_accuracy>="),
    "03_export_and_predict.ipynb": ("top-1 agreement",),
}


def test_the_three_notebooks_are_there_without_outputs():
    assert [p.name for p in NOTEBOOKS] == sorted(EXPECTED)
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs committed"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        str(output.get("text", "")) for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    for line in EXPECTED[path.name]:
        assert line in text, line
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
