"""The difference of one metric between two runs at every grid point they share (second − first run)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from proactiv.analysis.runview import format_value
from proactiv.views.style import TEMPLATE, finite_limit


def grid_diff_figure(
    table: pd.DataFrame,
    columns: Sequence[str],
    labels: Sequence[str],
    names: tuple[str, str],
    metric: str,
    scale: float,
    unit: str,
    fmt: str,
) -> go.Figure:
    """One cell per shared grid point: ``diff`` × ``scale``, diverging colours centred at 0. Columns: the last
    grid parameter's values; rows: every combination of the others. ``table`` has the grid columns, ``diff``,
    and per run (``_a``, ``_b``) ``m``, ``point`` and ``n``."""
    name_a, name_b = names
    last, rest = columns[-1], list(columns[:-1])
    xs = sorted({float(v) for v in table[last]})
    ys = sorted(set(map(tuple, table[rest].astype(float).to_numpy().tolist()))) if rest else [()]
    xi, yi = {v: j for j, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    z = np.full((len(ys), len(xs)), np.nan)
    text = np.full((len(ys), len(xs)), "", dtype=object)
    for r in table.to_dict("records"):
        i, j = yi[tuple(float(r[c]) for c in rest)], xi[float(r[last])]
        z[i, j] = scale * float(r["diff"])
        where = "<br>".join(
            f"{lab} = {format_value(float(r[c]))}" for c, lab in zip(columns, labels, strict=True)
        )
        text[i, j] = (
            f"{where}<br>{name_a}: {metric} {r['m_a']:.3f} (point {int(r['point_a'])}, n={int(r['n_a'])})"
            f"<br>{name_b}: {metric} {r['m_b']:.3f} (point {int(r['point_b'])}, n={int(r['n_b'])})"
        )
    lim = finite_limit(z)
    fig = go.Figure(
        go.Heatmap(
            z=z, x=[format_value(v) for v in xs], y=[" · ".join(format_value(v) for v in row) or "all" for row in ys],
            text=text, colorscale="RdBu", zmid=0.0, zmin=-lim, zmax=lim, xgap=1, ygap=1,
            colorbar={"title": {"text": f"{unit}<br>{name_b} − {name_a}", "side": "right"}},
            hovertemplate=f"%{{text}}<br>{unit}: %{{z:{fmt}}}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_xaxes(type="category", title=labels[-1])
    fig.update_yaxes(type="category", title=" · ".join(labels[:-1]) or None)
    fig.update_layout(template=TEMPLATE, height=max(300, min(1400, 24 * len(ys) + 140)),
                      margin={"t": 30, "b": 50, "l": 90, "r": 10})  # fmt: skip
    return fig
