"""How every report picture is written: a PNG whose metadata and the page's alt text say what it shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search.report._plots import describe


def save(figure: Any, path: Path, report: Any) -> Path:
    """The figure as a PNG whose metadata (and the page's alt text) says its titles, axis names and
    legends; listed in ``report.pictures`` and described in ``report.descriptions``."""
    import matplotlib.pyplot as plt

    report.descriptions[path.name] = describe(figure)
    figure.savefig(
        path, dpi=110, bbox_inches="tight", metadata={"Title": path.stem, "Description": report.descriptions[path.name]}
    )
    plt.close(figure)
    report.pictures.append(path)
    return path
