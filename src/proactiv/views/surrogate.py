"""Surrogate views: what drives failure according to an interpretable model of it (EBM or GBM + SHAP) over
transform parameters, metadata and class — feature importance, the shape function of the top features, the
strongest pair interaction, one record's contributions, and the fidelity on held-out instances with its warning.

In a notebook::

    import proactiv.views.surrogate as sv
    sv.importance(run); sv.shapes(run); sv.interaction(run); sv.fidelity(run)
    sv.record(run, instance=3, point=17)
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from proactiv.analysis.surrogate import Surrogate
from proactiv.views.sections import register_section
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.style import DIVERGING, TEMPLATE, finite_limit, message_figure

RISE, FALL, PAIR, OBSERVED, WARN = "#c0392b", "#1f77b4", "#8e7cc3", "#7f7f7f", "#b03a2e"


def _what(s: Surrogate) -> str:
    return "failure" if s.outcome == "failure" else "loss_t"


def _warned(fig: go.Figure, s: Surrogate) -> go.Figure:
    """The fidelity warning written on top of a figure (nothing when the fidelity is not low)."""
    if s.warning:
        fig.add_annotation(text=f"⚠ {s.warning}", showarrow=False, x=0, y=1.0, xref="paper", yref="paper",
                           xanchor="left", yanchor="bottom", yshift=4, font=dict(color=WARN, size=12))  # fmt: skip
        fig.update_layout(margin=dict(t=110))
    return fig


def importance_figure(s: Surrogate, top: int = 12) -> go.Figure:
    """Mean |contribution| of each feature and pair term over the run's records, largest on top."""
    terms = pd.concat([
        s.importance.assign(kind=s.importance.kind.map({"numeric": "feature", "categorical": "feature"})),
        s.interactions.drop_duplicates("term")[["term", "importance"]].rename(columns={"term": "feature"})
        .assign(kind="pair"),
    ], ignore_index=True).sort_values("importance", ascending=False).head(top).iloc[::-1]  # fmt: skip
    if terms.empty:
        return message_figure("the surrogate has no terms")
    fig = go.Figure(go.Bar(x=terms.importance, y=terms.feature, orientation="h",
                           marker_color=[PAIR if k == "pair" else RISE for k in terms.kind],
                           hovertemplate="%{y}: %{x:.3g}<extra></extra>"))  # fmt: skip
    fig.update_layout(template=TEMPLATE, height=160 + 24 * len(terms), xaxis_title=f"mean |contribution| ({s.scale})",
                      title=f"What drives {_what(s)} ({s.method.upper()}; pair terms in violet)")  # fmt: skip
    return _warned(fig, s)


def _shape_traces(fig: go.Figure, s: Surrogate, feature: str, row: int, col: int, legend: bool) -> None:
    shape = s.shapes[s.shapes.feature == feature].sort_values("level")
    labels = shape.label.astype(str).tolist()
    band = "±1 sd over the EBM's bags" if s.method == "ebm" else "10–90 % of the records' SHAP values"
    if s.kind(feature) == "numeric":
        fig.add_trace(go.Scatter(x=labels + labels[::-1], y=np.r_[shape.upper, shape.lower[::-1]], fill="toself",
                                 mode="lines", line=dict(width=0), fillcolor="rgba(192,57,43,0.18)", hoverinfo="skip",
                                 line_shape="hvh", name=band, showlegend=legend, legendgroup="band"), row, col)  # fmt: skip
        fig.add_trace(go.Scatter(x=labels, y=shape.score, mode="lines+markers", line_shape="hvh", line_color=RISE,
                                 name="contribution", showlegend=legend, legendgroup="score",
                                 hovertemplate=f"{feature} = %{{x}}: %{{y:+.3g}}<extra></extra>"), row, col)  # fmt: skip
    else:
        fig.add_trace(go.Bar(x=labels, y=shape.score, marker_color=[RISE if v > 0 else FALL for v in shape.score],
                             error_y=dict(type="data", symmetric=False, array=shape.upper - shape.score,
                                          arrayminus=shape.score - shape.lower, color=OBSERVED),
                             name="contribution", showlegend=False,
                             hovertemplate=f"{feature} = %{{x}}: %{{y:+.3g}}<extra></extra>"), row, col)  # fmt: skip
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels, title_text=feature,
                     row=row, col=col)  # fmt: skip


def shapes_figure(s: Surrogate, features: list[str] | None = None, top: int = 4) -> go.Figure:
    """The shape function of each of ``features`` (default: the ``top`` most important): the term's contribution
    at each value, bin or category — a step line with its band for numbers, bars for categories."""
    chosen = list(features or s.importance.feature[:top])
    unknown = sorted(set(chosen) - set(s.importance.feature))
    if unknown:
        raise ValueError(f"features {unknown}: the surrogate's features are {list(s.importance.feature)}")
    if not chosen:
        return message_figure("the surrogate has no features")
    cols = min(2, len(chosen))
    rows = -(-len(chosen) // cols)
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=chosen, vertical_spacing=0.18, horizontal_spacing=0.1
    )
    for k, feature in enumerate(chosen):
        _shape_traces(fig, s, feature, k // cols + 1, k % cols + 1, legend=k == 0)
    fig.update_yaxes(title_text=f"contribution ({s.scale})", col=1)
    fig.add_hline(y=0, line=dict(color=OBSERVED, width=1, dash="dot"))
    fig.update_layout(template=TEMPLATE, height=120 + 280 * rows, legend=dict(orientation="h", y=-0.15),
                      title=f"How each condition drives {_what(s)} (above 0: more {_what(s)})")  # fmt: skip
    return _warned(fig, s)


def interaction_figure(s: Surrogate, term: str | None = None) -> go.Figure:
    """The contribution of one pair term (default: the strongest) over its two features' levels."""
    if s.interactions.empty:
        why = "GBM surrogates have no pair terms" if s.method == "gbm" else "the EBM kept no pair terms"
        return message_figure(f"no pair interaction to draw: {why}")
    term = term or s.interactions.term.iloc[0]
    part = s.interactions[s.interactions.term == term]
    if part.empty:
        raise ValueError(
            f"term {term!r}: the surrogate's pair terms are {list(s.interactions.term.unique())}"
        )
    a, b = part.feature_a.iloc[0], part.feature_b.iloc[0]
    grid = (
        part.pivot_table(index="level_b", columns="level_a", values="score").sort_index().sort_index(axis=1)
    )
    names = s.shapes.set_index(["feature", "level"]).label
    limit = finite_limit(grid.to_numpy())
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=[str(names[(a, v)]) for v in grid.columns],
                               y=[str(names[(b, v)]) for v in grid.index], colorscale=DIVERGING, zmin=-limit,
                               zmax=limit, colorbar=dict(title="contribution"),
                               hovertemplate=f"{a} = %{{x}}, {b} = %{{y}}: %{{z:+.3g}}<extra></extra>"))  # fmt: skip
    fig.update_xaxes(type="category", title_text=a)
    fig.update_yaxes(type="category", title_text=b)
    fig.update_layout(template=TEMPLATE, height=420,
                      title=f"Pair interaction {term} ({s.scale}, beyond the two shape functions)")  # fmt: skip
    return _warned(fig, s)


def contributions_figure(table: pd.DataFrame, top: int = 12) -> go.Figure:
    """One record's contributions (:func:`proactiv.analysis.surrogate.explain_record`), largest |value| on top."""
    if table.empty:
        return message_figure("no contributions")
    shown = table.head(top).iloc[::-1]
    a = table.attrs
    what = "failure" if "failure" in a.get("scale", "") else "loss_t"
    fact = (f"P(failure) {a['predicted']:.2f}, observed {'fail' if a['observed'] else 'pass'}" if what == "failure"
            else f"predicted loss_t {a['predicted']:.3g}, observed {a['observed']:.3g}")  # fmt: skip
    fig = go.Figure(go.Bar(x=shown.contribution, y=[f"{f} = {v}" for f, v in zip(shown.feature, shown.value, strict=True)],
                           orientation="h", marker_color=[RISE if c > 0 else FALL for c in shown.contribution],
                           hovertemplate="%{y}: %{x:+.3g}<extra></extra>"))  # fmt: skip
    fig.update_layout(template=TEMPLATE, height=160 + 24 * len(shown), xaxis_title=f"contribution ({a.get('scale', '')})",
                      title=f"Why record ({a.get('instance')}, {a.get('point')}): {fact}")  # fmt: skip
    return fig


def fidelity_figure(s: Surrogate) -> go.Figure:
    """How well the surrogate matches the real outcomes on held-out instances: the ROC curve (failure) or
    predicted against observed loss_t, with the figures and the warning."""
    held = s.contributions[s.contributions.held_out]
    f = s.fidelity
    if s.outcome == "failure":
        from sklearn.metrics import roc_curve

        if held.observed.nunique() < 2:
            return _warned(message_figure("the held-out records have one outcome: no ROC curve"), s)
        fpr, tpr, _ = roc_curve(held.observed, held.predicted)
        fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color=OBSERVED, dash="dot"),
                                    name="chance"),
                         go.Scatter(x=fpr, y=tpr, mode="lines", line_color=RISE, name="surrogate")])  # fmt: skip
        fig.update_layout(xaxis_title="false alarms (passing records flagged)", yaxis_title="failures caught",
                          title=f"Fidelity on {f['n_test']} held-out records: ROC AUC {f['score']:.3f}, accuracy "
                                f"{f['accuracy']:.3f} (base rate {f['base_rate']:.3f})")  # fmt: skip
    else:
        sample = held.sample(min(len(held), 3000), random_state=0)
        top = float(np.nanmax(np.r_[sample.observed, sample.predicted])) if len(sample) else 1.0
        fig = go.Figure([go.Scatter(x=sample.observed, y=sample.predicted, mode="markers", name="records",
                                    marker=dict(color=RISE, size=5, opacity=0.5)),
                         go.Scatter(x=[0, top], y=[0, top], mode="lines", name="equal",
                                    line=dict(color=OBSERVED, dash="dot"))])  # fmt: skip
        fig.update_layout(xaxis_title="observed loss_t", yaxis_title="surrogate's loss_t",
                          title=f"Fidelity on {f['n_test']} held-out records: R² {f['score']:.3f}")  # fmt: skip
    fig.update_layout(template=TEMPLATE, height=380)
    return _warned(fig, s)


def warning_html(s: Surrogate) -> str:
    return f"<p class='warning' style='color:{WARN}'>⚠ {html.escape(s.warning)}</p>" if s.warning else ""


@register_section("surrogate")
def report_html(s: Surrogate, ctx) -> str:
    """The report section: the top drivers in a sentence, the fidelity warning, importance, shapes, the strongest
    pair interaction and the fidelity figure."""
    sentence = s.sentence()
    body = f"<p class='surrogate'>{html.escape(sentence)}</p>" + warning_html(s)
    body += ctx.figure(importance_figure(s), "", f"importance of each condition for {_what(s)}")
    body += ctx.figure(shapes_figure(s), sentence, "shape functions of the most important conditions")
    if not s.interactions.empty:
        body += ctx.figure(interaction_figure(s), "", "the strongest pair interaction as a heatmap")
    return body + ctx.figure(fidelity_figure(s), "", "the surrogate's fidelity on held-out instances")


# ----------------------------------------------------------------------------------------------- notebooks
def _stored(run: RunLike) -> Surrogate:
    view, analysis = open_analysed(run, ("surrogate",))
    result = analysis["surrogate"]
    if result is None:
        raise ValueError(
            f"run {view.run.path}: no surrogate ({analysis.notes.get('surrogate') or 'not computed'})"
        )
    return result


def importance(run: RunLike, top: int = 12) -> go.Figure:
    """What drives failure: the stored surrogate's importance of each condition (computed when missing)."""
    return importance_figure(_stored(run), top)


def shapes(run: RunLike, features: list[str] | None = None, top: int = 4) -> go.Figure:
    """How each condition drives failure: shape functions of the top features (or of ``features``)."""
    return shapes_figure(_stored(run), features, top)


def interaction(run: RunLike, term: str | None = None) -> go.Figure:
    """The strongest pair interaction of the stored EBM (or ``term``, e.g. ``"noise.snr_db & meta.voice"``)."""
    return interaction_figure(_stored(run), term)


def fidelity(run: RunLike) -> go.Figure:
    """The stored surrogate's fidelity on held-out instances."""
    return fidelity_figure(_stored(run))


def record(run: RunLike, instance: int, point: int, top: int = 12) -> go.Figure:
    """One record's failure explained in the surrogate's terms."""
    return contributions_figure(_stored(run).record(instance, point), top)
