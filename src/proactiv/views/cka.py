"""CKA heatmaps: per layer and transform value, how similar the representation of xT stays to that of clean x
(:func:`cka_figure`, the ``cka`` step); and layer × layer between two models (:func:`compare_figure`)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.cka import DEPARTURE, departure_sentence, departures
from proactiv.analysis.runview import format_value
from proactiv.views.sections import esc, register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import TEMPLATE, message_figure

#: cells per panel up to which each cell also shows its value
MAX_TEXT_CELLS = 200
#: CKA colours: dark = departed from the clean representation, light = unchanged
COLOURS = "Viridis"


def _cell_text(z: pd.DataFrame) -> dict:
    return {"texttemplate": "%{z:.2f}", "textfont": {"size": 10}} if z.size <= MAX_TEXT_CELLS else {}


def cka_figure(table: pd.DataFrame, threshold: float = DEPARTURE) -> go.Figure:
    """Layers (first at the top) × transform values, one panel per parameter, on one 0–1 colour scale; per
    parameter, the first layer below ``threshold`` at its strongest value is circled."""
    if table is None or table.empty:
        return message_figure("no CKA to draw")
    columns = list(dict.fromkeys(table.column))
    layers = table.drop_duplicates("layer_index").sort_values("layer_index").layer.tolist()
    fig = make_subplots(rows=1, cols=len(columns), shared_yaxes=True, subplot_titles=columns,
                        horizontal_spacing=0.04)  # fmt: skip
    marks = departures(table, threshold).set_index("column")
    for k, column in enumerate(columns, start=1):
        part = table[table.column == column]
        values = list(dict.fromkeys(part.value))  # the grid's order
        z = part.pivot_table(index="layer_index", columns="value", values="cka", aggfunc="mean")
        z = z.reindex(index=range(len(layers)), columns=values)
        labels = [format_value(v) for v in values]
        fig.add_trace(
            go.Heatmap(z=z.to_numpy(dtype=float), x=labels, y=layers, zmin=0.0, zmax=1.0, colorscale=COLOURS,
                       showscale=k == 1, colorbar={"title": "CKA"}, customdata=[[column] * len(values)] * len(layers),
                       hovertemplate="%{customdata}=%{x}<br>%{y}<br>CKA %{z:.3f}<extra></extra>", **_cell_text(z)),
            row=1, col=k,
        )  # fmt: skip
        mark = marks.loc[column]
        if not pd.isna(mark.layer):  # None beside a column that has a layer becomes NaN
            fig.add_trace(
                go.Scatter(x=[format_value(mark.value)], y=[mark.layer], mode="markers", showlegend=False,
                           marker={"symbol": "circle-open", "size": 22, "color": "red", "line": {"width": 2}},
                           hovertemplate=f"first layer below {threshold:g}<extra></extra>"),
                row=1, col=k,
            )  # fmt: skip
        fig.update_xaxes(type="category", title_text="value", row=1, col=k)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=layers, autorange="reversed")
    fig.update_yaxes(title_text="layer", row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=max(280, 120 + 28 * len(layers)),
                      title=f"CKA of clean x vs xT per layer (circled: first layer below {threshold:g} at the strongest value)")  # fmt: skip
    return fig


def compare_figure(table: pd.DataFrame, name_a: str = "model A", name_b: str = "model B") -> go.Figure:
    """A :func:`~proactiv.analysis.cka.compare_models_cka` table as a heatmap: layers of ``name_a`` (rows,
    first at the top) × layers of ``name_b`` (columns)."""
    if table is None or table.empty:
        return message_figure("no CKA to draw")
    rows = table.drop_duplicates("index_a").sort_values("index_a").layer_a.tolist()
    cols = table.drop_duplicates("index_b").sort_values("index_b").layer_b.tolist()
    z = table.pivot_table(index="index_a", columns="index_b", values="cka", aggfunc="mean")
    fig = go.Figure(
        go.Heatmap(
            z=z.to_numpy(dtype=float),
            x=cols,
            y=rows,
            zmin=0.0,
            zmax=1.0,
            colorscale=COLOURS,
            colorbar={"title": "CKA"},
            hovertemplate=f"{name_a}: %{{y}}<br>{name_b}: %{{x}}<br>CKA %{{z:.3f}}<extra></extra>",
            **_cell_text(z),
        )  # fmt: skip
    )
    fig.update_xaxes(type="category", title_text=f"{name_b} layer")
    fig.update_yaxes(type="category", title_text=f"{name_a} layer", autorange="reversed")
    fig.update_layout(template=TEMPLATE, title=f"CKA between the layers of {name_a} and {name_b}",
                      height=max(300, 140 + 26 * len(rows)))  # fmt: skip
    return fig


def cka(run: RunLike, device: str = "auto") -> go.Figure:
    """The ``cka`` step's heatmap of a run, computing the step first when it has no stored result (it rebuilds
    the model and regenerates xT; ``device`` is where)."""
    _, analysis = open_analysed(run, ("cka",), device)
    if analysis["cka"] is None:
        return message_figure(f"no CKA for this run ({analysis.notes.get('cka', 'not computed')})")
    return cka_figure(analysis["cka"])


@register_section("cka")
def report_html(table: pd.DataFrame, ctx) -> str:
    """The report section: the CKA heatmap and the sentence naming the largest departures."""
    caption = "CKA between each layer's activations on clean x and on xT (1 = same representation)"
    return ctx.figure(cka_figure(table), caption, "heatmap of CKA per layer and transform value") + (
        f"<p class='cka-departures'>{esc(departure_sentence(table))}</p>"
    )
