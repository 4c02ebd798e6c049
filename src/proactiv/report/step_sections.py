"""Report sections of registered analysis steps: one ``<section>`` per step whose ``report_section`` gives
HTML for the run's stored result, so a new analysis shows in the report without editing the page."""

from __future__ import annotations

import html

from proactiv.analysis import Analysis, StepContext, registered
from proactiv.analysis.runview import RunView


def step_sections(analysis: Analysis, view: RunView) -> list[str]:
    """``<section id='step-NAME'>`` with the step's title, note and fragment, in registry order."""
    ctx = StepContext(analysis.run, view=view, results=analysis.results)
    parts = []
    for step in registered():
        result = analysis[step.name]
        body = None if result is None else step.report_section(result, ctx)
        if body is None:
            continue
        note = analysis.notes.get(step.name)
        note_html = f"<p class='note'>{html.escape(note)}</p>" if note else ""
        parts.append(
            f"<section id='step-{step.name}'><h2>{html.escape(step.title)}</h2>{note_html}{body}</section>"
        )
    return parts
