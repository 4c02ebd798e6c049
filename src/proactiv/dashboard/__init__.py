"""The interactive visual-analytics dashboard (``proactiv serve``): linked overview, embeddings, error slices,
record detail with audio, bias maps and a two-run comparison, served locally with Dash."""

from proactiv.dashboard.app import build_app
from proactiv.dashboard.data import Filter, RunData, open_runs

__all__ = ["Filter", "RunData", "build_app", "open_runs"]
