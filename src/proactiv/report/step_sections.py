"""Report sections that registered analysis steps bring themselves (``Step.report_section``), so a new analysis
shows in the report without editing the page."""

from __future__ import annotations

import html

from proactiv.analysis import Analysis, Step, StepContext


def step_section(step: Step, analysis: Analysis, ctx: StepContext) -> str | None:
    """The step's title, note and HTML fragment for its stored result; None when it has no section."""
    result = analysis[step.name]
    body = None if result is None else step.report_section(result, ctx)
    if body is None:
        return None
    note = analysis.notes.get(step.name)
    note_html = f"<p class='note'>{html.escape(note)}</p>" if note else ""
    return f"<h2>{html.escape(step.title)}</h2>{note_html}{body}"
