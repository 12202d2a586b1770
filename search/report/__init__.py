"""The pictures of a search (``cnn-search report``), made from its MLflow record."""

from search.report._report import PICTURES, Report, make_report

__all__ = ["PICTURES", "Report", "make_report"]
