"""The static, self-contained HTML report of a run: the :mod:`proactiv.views` figures as plotly JSON with
plotly.js inlined once, so it opens offline with no server."""

from proactiv.report.html import build_report, write_report

__all__ = ["build_report", "write_report"]
