"""Report sections, registered by step name one floor above the steps: a view module registers the section that
draws its step's stored result, so the report loops over the step registry (in dependency order) and draws what
is registered. A new analysis reaches the report without an edit of the report.

Sections of the records themselves (no step result: heatmaps, the worst-records gallery) name the step they
follow with ``after`` (None: the end of the page).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from proactiv.analysis.pipeline import load_analysis
from proactiv.analysis.runview import format_value
from proactiv.analysis.steps import StepContext, get
from proactiv.plugins import load_entry_points


class SectionContext(StepContext):
    """A step context for drawing: the run's stored ``analysis`` (results and notes; read from the run when not
    given) and ``figure(fig, caption, alt)``, which places a plotly figure in the page and returns its HTML (by
    default it keeps the figure in ``figures`` and returns a placeholder, for tests and notebooks)."""

    def __init__(
        self,
        run,
        view=None,
        analysis=None,
        figure: Callable[..., str] | None = None,
        gallery: int = 8,
        device: str = "auto",
    ):
        analysis = analysis if analysis is not None else load_analysis(run)
        super().__init__(analysis.run, view=view, results=analysis.results, device=device)
        self.analysis = analysis
        self.figures: list = []
        self.figure = figure or self._keep
        self.gallery = gallery

    def _keep(self, fig, caption: str = "", alt: str = "figure") -> str:
        self.figures.append(fig)
        return "<figure/>"


#: ``render(result, ctx) -> HTML`` (None: nothing to show for this result)
Render = Callable[[Any, SectionContext], "str | None"]


@dataclass(frozen=True)
class Section:
    """One section of the report: ``render`` draws ``step``'s stored result (or the records, when ``step`` is
    None); the page wraps it in a heading (``title``, default the step's title), an ``intro`` paragraph and the
    step's note."""

    key: str
    render: Render
    step: str | None = None
    after: str | None = None
    title: str | Callable[[SectionContext], str] | None = None
    intro: str | Callable[[Any], str] | None = None

    def html(self, ctx: SectionContext) -> str | None:
        """The section's HTML for the run in ``ctx``: a skipped step shows its heading and why it was skipped;
        None when there is nothing to say."""
        title = self.title(ctx) if callable(self.title) else self.title or get(self.step).title
        note = note_html(ctx.analysis.notes.get(self.step)) if self.step else ""
        result = ctx.analysis[self.step] if self.step else None
        if self.step is not None and result is None:  # skipped: the note says why, when there is one
            return f"<h2>{esc(title)}</h2>{note}" if note else None
        body = self.render(result, ctx)
        if body is None:
            return None
        intro = self.intro(result) if callable(self.intro) else self.intro
        return f"<h2>{esc(title)}</h2>" + (f"<p>{esc(intro)}</p>" if intro else "") + note + body


_SECTIONS: dict[str, Section] = {}
#: the entry-point group through which other installed packages register report sections (loaded on first use)
ENTRY_POINTS = "proactiv.views"


def register_section(
    step: str | None = None,
    *,
    key: str | None = None,
    after: str | None = None,
    title: str | Callable[[SectionContext], str] | None = None,
    intro: str | Callable[[Any], str] | None = None,
) -> Callable[[Render], Render]:
    """Decorator: register ``render`` as the report section of ``step`` (anchor ``key``, default the step's
    name), or, with ``step=None``, as a section of the records placed after the step ``after``."""
    if step is None and key is None:
        raise ValueError("a section of the records needs a key (its anchor in the page)")
    if step is not None and after is not None:
        raise ValueError(f"section of step {step!r}: 'after' is only for sections of the records")

    def add(render: Render) -> Render:
        name = key or step
        if name in _SECTIONS:
            raise ValueError(f"a report section {name!r} is already registered")
        _SECTIONS[name] = Section(name, render, step, after, title, intro)
        return render

    return add


def unregister_section(key: str) -> None:
    """Remove a section (e.g. one a test registered)."""
    if _SECTIONS.pop(key, None) is None:
        raise KeyError(f"no report section {key!r}; registered: {', '.join(_SECTIONS)}")


def sections() -> list[Section]:
    """Every registered section (plug-ins' included), in registration order."""
    load_entry_points(ENTRY_POINTS)
    return list(_SECTIONS.values())


def sections_of(step: str) -> list[Section]:
    """The sections drawing ``step``'s result, then the record sections that follow it."""
    return [s for s in sections() if s.step == step] + [
        s for s in sections() if s.step is None and s.after == step
    ]


def closing_sections() -> list[Section]:
    """Record sections placed at the end of the page."""
    return [s for s in sections() if s.step is None and s.after is None]


def esc(text: Any) -> str:
    return html.escape(str(text))


def note_html(text: str | None) -> str:
    return f"<p class='note'>{esc(text)}</p>" if text else ""


def table_html(frame: pd.DataFrame | None, columns: list[str] | None = None, rows: int = 20) -> str:
    """The first ``rows`` of ``frame`` (the ``columns`` it has) as an HTML table; "(empty)" for none."""
    if frame is None or frame.empty:
        return "<p class='muted'>(empty)</p>"
    shown = frame[[c for c in (columns or list(frame.columns)) if c in frame.columns]].head(rows)
    return shown.to_html(
        index=False,
        escape=True,
        float_format=lambda v: format_value(v) if np.isinf(v) else f"{v:.3g}",
        border=0,
        na_rep="",
    )
