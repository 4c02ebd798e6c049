"""Faithfulness view: can the attribution maps be believed? Each method's mean deletion curve (its most-attributed
features removed first) against random deletion, and a table of its figures and verdicts (infidelity,
max-sensitivity, deletion area against random, model-randomisation similarity), flagged methods in red and
figures that could not be measured named as such. The report shows it right after the attribution maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.faithfulness import faithfulness_summary, summary_sentence
from proactiv.views.sections import esc, register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import PALETTE, TEMPLATE, message_figure

RANDOM = "#7f7f7f"
FLAGGED = "#c0392b"
#: the table's columns: (summary column, heading, format)
COLUMNS = (
    ("infidelity_rel", "infidelity (relative)", "{:.3f}"),
    ("max_sensitivity", "max-sensitivity", "{:.3f}"),
    ("deletion_auc", "deletion AUC", "{:.3f}"),
    ("random_auc", "random AUC", "{:.3f}"),
    ("deletion_ratio", "deletion / random", "{:.2f}"),
    ("randomised_spearman", "randomisation ρ", "{:.2f}"),
    ("randomised_top_overlap", "top-10 % overlap", "{:.2f}"),
)


def _cell(value: float, fmt: str) -> str:
    return "n/a" if value is None or not np.isfinite(value) else fmt.format(value)


def _score_label(table: pd.DataFrame) -> str:
    return (
        "probability of the explained class"
        if (table.target >= 0).any()
        else "score (−loss toward the target)"
    )


def faithfulness_figure(table: pd.DataFrame | None) -> go.Figure:
    """Deletion curves per method (mean over the records) and random deletion's, over the share of features
    deleted; below, the per-method figures and verdicts (medians over records) — a ``faithfulness`` table."""
    if table is None or table.empty:
        return message_figure("no faithfulness figures were computed")
    summary = faithfulness_summary(table)
    curves, rand = table.attrs.get("curves") or {}, table.attrs.get("random_curve")
    fig = make_subplots(
        rows=2, cols=1, specs=[[{"type": "xy"}], [{"type": "table"}]], row_heights=[0.62, 0.38],
        vertical_spacing=0.08,
    )  # fmt: skip
    for k, method in enumerate(summary.method):
        curve = curves.get(method)
        if curve is None:
            continue
        share = np.linspace(0, 1, len(curve))
        fig.add_trace(go.Scatter(x=share, y=curve, mode="lines", name=method, line={"color": PALETTE[k], "width": 2},
                                 hovertemplate=f"{method}: %{{y:.3f}} with %{{x:.0%}} deleted<extra></extra>"),
                      1, 1)  # fmt: skip
    if rand is not None:
        fig.add_trace(go.Scatter(x=np.linspace(0, 1, len(rand)), y=rand, mode="lines", name="random deletion",
                                 line={"color": RANDOM, "dash": "dash", "width": 2},
                                 hovertemplate="random: %{y:.3f} with %{x:.0%} deleted<extra></extra>"), 1, 1)  # fmt: skip
    fig.update_xaxes(
        title_text="share of features deleted (most attributed first)", tickformat=".0%", row=1, col=1
    )
    fig.update_yaxes(title_text=_score_label(table), row=1, col=1)
    verdicts = [
        f"deletion {d}, randomisation {r}"
        for d, r in zip(summary.deletion, summary.randomisation, strict=True)
    ]
    colours = [FLAGGED if "flagged" in v else "#333" for v in verdicts]
    fig.add_trace(
        go.Table(
            header={"values": ["method", *[h for _, h, _ in COLUMNS], "verdict"], "align": "left"},
            cells={
                "values": [list(summary.method), *[[_cell(v, f) for v in summary[c]] for c, _, f in COLUMNS],
                           verdicts],
                "align": "left",
                "font": {"color": [colours] * (len(COLUMNS) + 2)},
            },
        ),
        2, 1,
    )  # fmt: skip
    a = table.attrs
    fig.update_layout(
        template=TEMPLATE, height=620, legend={"orientation": "h", "y": 1.08},
        title={"text": f"Faithfulness toward the {a.get('target', 'desired')} target · "
                       f"{table[['instance', 'point', 'input']].drop_duplicates().shape[0]} records",
               "font": {"size": 13}, "x": 0.01},
        margin={"t": 80, "b": 10, "l": 10, "r": 10},
    )  # fmt: skip
    return fig


def faithfulness(run: RunLike) -> go.Figure:
    """Deletion curves per attribution method against random deletion, and each method's infidelity,
    max-sensitivity, deletion area and model-randomisation similarity, with its verdicts (the ``faithfulness``
    step, computed when missing)."""
    _, analysis = open_analysed(run, ("faithfulness",))
    table = analysis["faithfulness"]
    if table is None:
        return message_figure(
            f"no faithfulness figures: {analysis.notes.get('faithfulness', 'not computed')}"
        )
    return faithfulness_figure(table)


def faithfulness_view(table: pd.DataFrame) -> tuple[go.Figure, str]:
    """The figure of a stored faithfulness table and its sentence."""
    sentence = summary_sentence(faithfulness_summary(table)) if not table.empty else ""
    return faithfulness_figure(table), sentence


def flagged_methods(table: pd.DataFrame) -> list[str]:
    """Each method a check flagged, as "method (check, …)"."""
    if table.empty:
        return []
    return [
        f"{s.method} ({', '.join(k for k in ('deletion', 'randomisation') if getattr(s, k) == 'flagged')})"
        for s in faithfulness_summary(table).itertuples()
        if "flagged" in (s.deletion, s.randomisation)
    ]


@register_section("faithfulness")
def report_html(table: pd.DataFrame, ctx) -> str:
    """The report section (the step's note above it gives the figures): the flagged methods, then the figure."""
    fig, sentence = faithfulness_view(table)
    flagged = flagged_methods(table)
    warning = (
        f"<p class='warning'>Read these maps with care: {esc('; '.join(flagged))}</p>" if flagged else ""
    )
    return warning + ctx.figure(
        fig, sentence, "deletion curves per attribution method against random deletion"
    )
