"""Where a notebook view gets its data: a run's records in DuckDB and its stored analyses, computing the
steps it draws when they are missing (a step skipped for this run stays skipped: its note says why)."""

from __future__ import annotations

import os

from proactiv.analysis.pipeline import Analysis, analyze, load_analysis
from proactiv.analysis.runview import RunView, open_view
from proactiv.store import Run

#: what a notebook view accepts: an open run, a run directory, or an analysis view of one
RunLike = Run | str | os.PathLike | RunView


def open_analysed(
    run: RunLike, steps: tuple[str, ...] = (), device: str = "auto"
) -> tuple[RunView, Analysis]:
    """The run's records (a :class:`RunView`) and its analyses, with ``steps`` computed if missing (steps
    that need the model rebuild it on ``device``)."""
    view = run if isinstance(run, RunView) else open_view(run)
    analysis = load_analysis(view.run)
    missing = [
        s for s in steps if analysis[s] is None and not analysis.notes.get(s, "").startswith("skipped")
    ]
    return view, (analyze(view.run, steps=missing, device=device) if missing else analysis)
