"""Anchor view: one record's outcome along the parameters its anchor names, the rule's region shaded and its
sentence as the title ("fails whenever gain.gain_db ≤ -6.6 (precision 0.99, coverage 0.30, 2752 samples)").

The outcome is drawn as the probability of the desired class (the score the local surrogate fits), with the
other parameters held at the record's own values; one named parameter gives a curve, two a map. The report's
section draws the stored anchors of the worst failing records (the ``anchors`` step) the same way.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from proactiv.analysis.anchor import Anchor
from proactiv.analysis.anchor import anchor as find_anchor
from proactiv.analysis.runview import RunView
from proactiv.analysis.worst_anchors import ANCHORED, WorstAnchors, outcome_grid
from proactiv.views.sections import register_section, table_html
from proactiv.views.source import RunLike
from proactiv.views.style import TEMPLATE

REGION, RIGHT, WRONG = "rgba(192, 57, 43, 0.15)", "#1f77b4", "#c0392b"


def anchor_figure(found: Anchor, grid: dict[str, np.ndarray]) -> go.Figure:
    """The outcome over the anchored parameter(s) (``grid`` from :func:`outcome_grid`), the rule's region
    shaded, the record marked, the anchor's sentence as the title."""
    columns = [c for c in grid if c not in ("score", "right")]
    held = {c.column: c for c in found.conditions}
    fig = go.Figure()
    if len(columns) == 1:
        (col,) = columns
        x, score, right = grid[col], grid["score"], grid["right"]
        fig.add_trace(
            go.Scatter(x=x, y=score, mode="lines", line=dict(color="#555"), name="P(desired class)")
        )
        for ok, colour, name in ((True, RIGHT, "right"), (False, WRONG, "wrong")):
            keep = right == ok
            fig.add_trace(go.Scatter(x=x[keep], y=score[keep], mode="markers", marker=dict(color=colour, size=6),
                                     name=f"model {name}"))  # fmt: skip
        rule = held.get(col)
        low, high = (rule.low, rule.high) if rule else found.spans[col]
        fig.add_vrect(x0=low, x1=high, fillcolor=REGION, line_width=0, layer="below")
        fig.add_vline(x=_own(found, col), line_dash="dash", line_color="#333")
        fig.update_xaxes(title_text=col)
        fig.update_yaxes(title_text="probability of the desired class", range=[-0.02, 1.02])
    else:
        a, b = columns
        fig.add_trace(go.Heatmap(x=grid[a], y=grid[b], z=grid["score"].T, zmin=0, zmax=1, colorscale="RdBu",
                                 colorbar=dict(title="P(desired)")))  # fmt: skip
        fig.add_shape(type="rect", x0=held[a].low, x1=held[a].high, y0=held[b].low, y1=held[b].high,
                      line=dict(color="#111", width=2), fillcolor="rgba(0,0,0,0)")  # fmt: skip
        fig.add_trace(go.Scatter(x=[_own(found, a)], y=[_own(found, b)], mode="markers", name="the record",
                                 marker=dict(symbol="x", size=12, color="#111")))  # fmt: skip
        fig.update_xaxes(title_text=a)
        fig.update_yaxes(title_text=b)
    fig.update_layout(template=TEMPLATE, title=dict(text=found.describe(), font=dict(size=13)),
                      margin=dict(t=60, l=60, r=20, b=50), legend=dict(orientation="h", y=-0.2))  # fmt: skip
    return fig


def _own(found: Anchor, column: str) -> float:
    lo, hi = found.spans[column]
    return float(np.clip(found.values[column], lo, hi))


def anchor(
    run: RunLike, instance: int, point: int, n: int = 61, device: str = "auto", **options
) -> go.Figure:
    """The anchor of one record (``instance`` at grid ``point``; ``options`` go to
    :func:`proactiv.analysis.anchor.anchor`) over the outcome along the parameters it names (computed now:
    forward passes only)."""
    from proactiv.whatif import Studio

    studio = Studio(run.run if isinstance(run, RunView) else run, device=device)
    found = find_anchor(studio.run, instance, point, studio=studio, **options)
    return anchor_figure(found, outcome_grid(studio, found, n))


#: the columns of the report's table of anchors
SHOWN = ["rank", "instance", "point", "status", "rule", "precision", "coverage", "samples", "instances",
         "surrogate_fidelity", "reason"]  # fmt: skip


def _intro(result: WorstAnchors) -> str:
    return (
        "For each of the worst failing records (failures first, then by loss on xT, one per instance): the fewest "
        "ranges of the transform parameters, and the values of the instance's metadata, under which its outcome "
        "holds with the target precision, sampled between grid values through the model; its coverage (the share "
        "of the swept box the rule keeps), the samples it took, how many of the run's instances it holds for, and "
        "the local linear surrogate's fidelity (weighted R²). A record with no rule at the target is not checked."
    )


@register_section("anchors", intro=_intro)
def report_html(result: WorstAnchors, ctx) -> str:
    """The report section: a table of the records' anchors, then each anchored record's outcome along the
    parameters its rule names, the rule shaded, and its local surrogate."""
    if result.table.empty:
        return "<p class='muted'>no record fails: nothing to anchor</p>"
    body = table_html(result.table, SHOWN)
    for row in result.table.itertuples():
        found = result.anchor(row.instance, row.point)
        if found is None or row.status != ANCHORED:
            continue
        fig = anchor_figure(found, result.grid(row.instance, row.point))
        local = f"#{row.instance} at point {row.point}: " + (
            found.surrogate.describe() if found.surrogate else ""
        )
        body += ctx.figure(fig, local, f"anchor of record {row.instance} at point {row.point}")
    return body
