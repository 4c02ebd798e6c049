"""Dashboard tabs of registered analysis steps: each step with a ``panel`` gets a tab drawn from the run's
stored result, so a new analysis shows in the dashboard without editing the app."""

from __future__ import annotations

from collections.abc import Iterator

from proactiv.analysis import Step, StepContext, registered
from proactiv.dashboard.data import RunData


def step_panels(data: RunData) -> Iterator[tuple[Step, object]]:
    """(step, Dash component) for every registered step whose stored result has a panel."""
    ctx = StepContext(data.run, view=data.view, results=data.analysis.results)
    for step in registered():
        result = data.analysis[step.name]
        panel = None if result is None else step.panel(result, ctx)
        if panel is not None:
            yield step, panel
