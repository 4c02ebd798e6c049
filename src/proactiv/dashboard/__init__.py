"""The interactive visual-analytics dashboard (``proactiv serve``): linked overview, embeddings, error slices,
record detail with audio, bias maps and a two-run comparison, served locally with Dash.

Needs the ``dashboard`` extra: without it, importing this package names ``pip install 'proactiv[dashboard]'``.
"""

from proactiv.extras import require

require("dash", "dashboard", "the dashboard")

# imported after the check, so that a missing Dash is named instead of failing deep inside the app module
from proactiv.dashboard.app import build_app  # noqa: E402
from proactiv.dashboard.data import Filter, RunData, open_runs  # noqa: E402

__all__ = ["Filter", "RunData", "build_app", "open_runs"]
