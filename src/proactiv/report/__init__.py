"""The static, self-contained HTML report of a run (figures embedded; opens offline)."""

from proactiv.report.html import build_report, write_report

__all__ = ["build_report", "write_report"]
