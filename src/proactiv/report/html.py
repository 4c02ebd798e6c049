"""The static report: one self-contained HTML page per run. Figures are :mod:`proactiv.views` figures
embedded as plotly JSON, drawn by plotly.js inlined once, so the page opens offline with no server.

The page follows the registry of analysis steps: after the run summary, one section per registered step, in
registry order — drawn by the step's renderer in :data:`SECTIONS` for the built-in steps, or by the step's own
``report_section`` (:mod:`proactiv.report.step_sections`) — with the views of the records themselves
(:data:`RECORD_SECTIONS`: heatmaps, the worst-records gallery) placed after the step they belong with.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs

from proactiv.analysis.interim import interims, worst_records
from proactiv.analysis.pipeline import (
    Analysis,
    analyze,
    default_settings,
    load_analysis,
    require_run,
    stale_steps,
)
from proactiv.analysis.runview import (
    PSNR_CAP_DB,
    QUALITY_METRICS,
    RunView,
    format_value,
    metric_sql,
    open_view,
)
from proactiv.analysis.steps import StepContext, registered
from proactiv.report.step_sections import step_section
from proactiv.store import Run, write_text
from proactiv.views.bias_map import run_bias_maps
from proactiv.views.curves import quality_note, run_curves
from proactiv.views.embedding import run_embedding
from proactiv.views.heatmap import run_heatmaps
from proactiv.views.record import record_facts, record_figure
from proactiv.views.style import TEMPLATE

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d232a;background:#fafbfc}
main{max-width:1280px;margin:0 auto;padding:1.5rem 2rem 4rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{border-bottom:2px solid #d8dee4;padding-bottom:.3rem;margin-top:2.4rem}
nav a{margin-right:1rem;color:#0b5cad;text-decoration:none} .muted{color:#59636e} .note{background:#fff8c5;
border-left:4px solid #d4a72c;padding:.4rem .8rem;margin:.6rem 0} table{border-collapse:collapse;font-size:.85rem;
margin:.6rem 0;background:#fff} th,td{border:1px solid #d8dee4;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f0f3f6} dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem} dt{font-weight:600}
details summary{cursor:pointer;color:#0b5cad} figure{margin:.6rem 0} figcaption{font-size:.85rem;color:#59636e}
.plot{background:#fff;border:1px solid #e5e9ee;min-height:120px}
"""
#: drawing options of every figure (no plotly logo, no link out of the page)
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
#: draws every figure once the page (and plotly.js above it) has loaded; the shared template is sent once
RENDER = """
document.querySelectorAll('div.plot').forEach(function (el) {
  var f = FIGURES[+el.dataset.figure];
  f.layout.template = TEMPLATE;
  Plotly.newPlot(el, f.data, f.layout, CONFIG);
});
"""


def _e(text) -> str:
    return html.escape(str(text))


def _table(frame: pd.DataFrame | None, columns: list[str] | None = None, rows: int = 20) -> str:
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


def _note(text: str | None) -> str:
    return f"<p class='note'>{_e(text)}</p>" if text else ""


def _summary(view: RunView) -> str:
    run, cfg = view.run, view.run.config
    schema = run.schema
    desc = cfg.get("task_description") or {}
    model = cfg.get("model") or {}
    what = {k: v for k, v in {**desc, **({"model": model} if model else {})}.items() if k != "indices"}
    classes = view.classes
    if schema.classifier:
        data_classes = f"{len(classes)} classes: {', '.join(classes[:30])}"
    elif schema.group_column:
        data_classes = f"no classes (image-to-image or regression); grouped by {schema.group_column}: {', '.join(classes[:30])}"
    else:
        data_classes = "no classes (image-to-image or regression)"
    items = {
        "run": f"{run.path} (status: {run.status})",
        "model": f"{', '.join(f'{k} {v}' for k, v in what.items()) or cfg.get('task', 'custom')}; "
        f"fingerprint {str(run.fingerprints.get('model', ''))[:16]}",
        "data": f"{cfg.get('n_instances')} instances, {data_classes}"
        + (f"; metadata: {', '.join(view.meta_columns)}" if view.meta_columns else ""),
        "records": f"{view.n_records} of {len(run.grid) * int(cfg.get('n_instances') or 0)} (instance × grid point)",
        "projection": ", ".join(
            f"{k} {v}"
            for k, v in (cfg.get("projection") or {}).items()
            if k in ("loss", "cutoff", "max_steps", "lr", "optimizer")
        ),
    }
    outcome = "avg(converged::DOUBLE) AS converged, median(steps) AS median_steps, avg(d_x) AS mean_d_x"
    if schema.classifier:
        outcome = (
            "avg(correct_clean::DOUBLE) AS clean, avg(correct_t::DOUBLE) AS acc, avg(flipped::DOUBLE) AS flips, "
            + outcome
        )
    s = view.query(f"SELECT {outcome} FROM records").iloc[0]
    if schema.classifier:
        items["accuracy on clean input"] = f"{s.clean:.3f}"
        ident = run.grid.identity_point()
        if ident is not None:
            at = view.query(f"SELECT avg(correct_t::DOUBLE) AS a FROM records WHERE point = {ident}").a.iloc[
                0
            ]
            items["accuracy at the identity point"] = f"{at:.3f}"
        items["accuracy over the whole grid"] = f"{s.acc:.3f} (flip rate {s.flips:.3f})"
    elif schema.outcome:
        items["accuracy"] = (
            "not applicable: this run has no predictions (image-to-image or regression); "
            "“within cutoff” below means the output's loss is below the projection cutoff"
        )
        within = "avg(correct_t::DOUBLE)"
        ident = run.grid.identity_point()
        if ident is not None:
            at = view.query(f"SELECT {within} AS a FROM records WHERE point = {ident}").a.iloc[0]
            items["within cutoff at the identity point"] = f"{at:.3f}"
        overall = view.query(f"SELECT {within} AS a FROM records").a.iloc[0]
        items[f"{schema.outcome_label} over the whole grid"] = f"{overall:.3f}"
    else:
        items["accuracy"] = "not applicable: this run has no predictions (image-to-image or regression)"
    quality = [m for m in ("psnr_t", "psnr_out_t", "psnr_out_proj") if m in schema.metrics]
    if quality:
        means = view.query(
            "SELECT " + ", ".join(f"avg({metric_sql(m)}) AS {m}" for m in quality) + " FROM records"
        ).iloc[0]
        items["mean PSNR over the whole grid"] = (
            "; ".join(f"{QUALITY_METRICS[m].removesuffix(' (dB)')}: {means[m]:.1f} dB" for m in quality)
            + f" (identical images, PSNR ∞, count as {PSNR_CAP_DB:g} dB)"
        )
    items["projections converged"] = (
        f"{s.converged:.3f} (median {s.median_steps:g} steps; mean d_x {s.mean_d_x:.3g})"
    )
    grid = pd.DataFrame(
        [
            {"column": t.column, "unit": t.param.unit, "identity": format_value(t.param.identity),
             "values": ", ".join(format_value(v) for v in t.values)}
            for t in run.grid.transforms
        ]
    )  # fmt: skip
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items.items())
    return f"<dl>{rows}</dl><h3>Grid ({len(run.grid)} points)</h3>{_table(grid)}"


@dataclass
class Page:
    """What the section renderers share: the run's records, its analyses, and the figures drawn so far."""

    view: RunView
    analysis: Analysis
    gallery: int
    figures: list[str] = field(default_factory=list)

    @property
    def notes(self) -> dict[str, str]:
        return self.analysis.notes

    def figure(self, fig: go.Figure, caption: str = "", alt: str = "figure") -> str:
        """A figure's place in the page; its JSON (without the template, sent once) goes to the script."""
        spec = fig.to_plotly_json()
        spec["layout"].pop("template", None)
        self.figures.append(to_json_plotly(spec))
        caption_html = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
        return (
            f"<figure><div class='plot' role='img' aria-label='{_e(alt)}' data-figure='{len(self.figures) - 1}'>"
            f"</div>{caption_html}</figure>"
        )


def _script(page: Page) -> str:
    """plotly.js, the shared template and every figure, then the loop that draws them (``</`` escaped so
    no JSON string can close the script)."""
    template = json.dumps(pio.templates[TEMPLATE].to_plotly_json())
    data = (
        f"var TEMPLATE = {template};\nvar CONFIG = {json.dumps(PLOT_CONFIG)};\n"
        f"var FIGURES = [{','.join(page.figures)}];\n"
    ).replace("</", "<\\/")
    return f"<script>{get_plotlyjs()}</script><script>{data}{RENDER}</script>"


def _breakpoints(page: Page) -> str:
    view, analysis = page.view, page.analysis
    schema, bp = view.run.schema, analysis.breakpoints
    body = _note(page.notes.get("breakpoints"))
    if analysis.curves is not None:
        body += page.figure(run_curves(view, analysis.curves, bp), "metric curves per transform parameter",
                            "breakpoint curves")  # fmt: skip
        if schema.outcome and schema.group_column:
            body += page.figure(
                run_curves(view, analysis.curves, bp, per="class"),
                f"{schema.outcome_label} per {schema.group_title}",
                f"per-{schema.group_title} {schema.outcome.replace('_', ' ')} curves",
            )
        quality = [m for m in schema.metrics if m.startswith(("psnr", "ssim"))]
        if quality:
            body += "<h3>Image quality along each parameter</h3>"
            body += page.figure(run_curves(view, analysis.curves, bp, per="quality"), quality_note(quality),
                                "image quality curves")  # fmt: skip
    if bp is not None and schema.outcome:
        cols = ["column", "scope", "side", "value", "before", "after", "previous", "reference", "reference_value",
                "ci_low", "ci_high", "n"]  # fmt: skip
        marginal = bp[bp.condition == ""]
        body += f"<h3>Breakpoints (others marginalised)</h3>{_table(marginal, cols, rows=200)}"
        cond = bp[bp.condition != ""]
        body += (
            f"<details><summary>Breakpoints within each value of the other parameters ({len(cond)})</summary>"
            f"{_table(cond, ['column', 'condition', 'scope', 'value', 'before', 'after', 'reference'], rows=500)}</details>"
        )
    text = (
        "Curves along each transform parameter, the other parameters marginalised (each instance averaged "
        "over them first; bands are 95 % intervals over instances). × marks the breakpoint."
    )
    return f"<h2>Breakpoints</h2><p>{_e(text)}</p>{body}"


def _heatmaps(page: Page) -> str:
    view = page.view
    schema = view.run.schema
    what = schema.outcome_label if schema.outcome else "mean loss on xT"
    body = page.figure(run_heatmaps(view), "mean over instances and the remaining parameters",
                       f"{(schema.outcome or 'loss').replace('_', ' ')} heatmaps")  # fmt: skip
    if "psnr_out_t" in schema.metrics:
        body += page.figure(
            run_heatmaps(view, metric="psnr_out_t"),
            f"mean PSNR of the output f(xT) against the target (capped at {PSNR_CAP_DB:g} dB)",
            "output PSNR heatmaps",
        )
    return f"<h2>{_e(what[0].upper() + what[1:])} over pairs of parameters</h2>{body}"


def _slices(page: Page) -> str:
    sl = page.analysis.slices
    body = _note(page.notes.get("slices"))
    if sl is not None:
        body += _table(sl, ["slice", "conditions", "size", "errors", "error_rate", "coverage", "worst_point_values",
                            "worst_point_error_rate", "best_point_values", "best_point_error_rate"])  # fmt: skip
    return (
        "<h2>Error slices</h2><p>Leaves of a shallow decision tree predicting failure from the transform "
        "parameters and instance metadata, ranked by error rate × size; with the best and worst grid point "
        f"inside each slice.</p>{body}"
    )


def _embedding(by: str, step: str, title: str) -> Callable[[Page], str]:
    def render(page: Page) -> str:
        table = page.analysis[step]
        # WebGL only for big embeddings: SVG dots draw faster and need no GPU up to a few thousand
        fig = run_embedding(page.view, table, by, webgl=table is not None and len(table) > 5000)
        body = _note(page.notes.get(step)) + page.figure(
            fig, f"difference vectors {title}; the menu switches what the colour shows", f"embedding {title}"
        )
        intro = (
            "Each dot is a grid point (its instances' difference vectors concatenated), placed so that similar "
            "vectors lie close."
            if by == "point"
            else "Each dot is an instance (its grid points' difference vectors concatenated), placed so that "
            "similar vectors lie close."
        )
        return f"<h2>Difference embedding {title}</h2><p>{intro}</p>{body}"

    return render


def _bias_maps(page: Page) -> str:
    bias, ranking = page.analysis.bias, page.analysis.bias_ranking
    body = _note(page.notes.get("bias_maps"))
    if bias is not None:
        body += page.figure(run_bias_maps(bias, page.view.run.schema.input),
                            f"strongest {bias.group} biases (all grid points pooled)", "bias maps")  # fmt: skip
        body += _table(ranking, ["rank", "class", "instances", "records", "strength", "consistency", "mean_abs",
                                 "peak_row", "peak_column", "peak_value"], rows=15)  # fmt: skip
    per = "class" if bias is None or bias.group == "all" else bias.group
    return (
        f"<h2>Bias maps</h2><p>Mean change x̂T − xT per {_e(per)}: what the model wants to see. Red: the model "
        "needed more there; blue: less. Strength is the RMS of the mean change; consistency near 1 means every "
        f"instance moved the same way.</p>{body}"
    )


def _gallery(page: Page) -> str:
    view = page.view
    run, schema = view.run, view.run.schema
    worst = worst_records(view, page.gallery)
    outputs = ""
    if worst.empty:
        body = _note(
            f"no arrays kept in this run (arrays.keep = {run.config.get('arrays', {}).get('keep')!r})"
        )
    else:
        names = run.class_names or []

        def class_name(label) -> str:
            return names[int(label)] if 0 <= int(label) < len(names) else str(label)

        body = ""
        for item in interims(view, worst):
            facts = record_facts(item.record, schema, class_name, view.describe_point(item.point))
            two_rows = schema.has_outputs and item.y_t is not None
            body += page.figure(
                record_figure(item, schema, "<br>".join(facts)), "",
                f"record {item.instance} at point {item.point}" + (": inputs and outputs f(xT), f(x̂T)" if two_rows else ""),
            )  # fmt: skip
            if two_rows:
                outputs = " The second row shows the model's outputs f(xT), f(x̂T) next to the target y."
    return (
        f"<h2>Worst records</h2><p>Kept records the model {schema.failure_wording} with the highest loss (one per "
        f"instance): clean, transformed, projected input and the change projection made.{outputs}</p>{body}"
    )


def _summary_section(page: Page) -> str:
    return f"<h2>Run summary</h2>{_summary(page.view)}"


#: renderers of the built-in analysis steps' sections (a step without one here may bring its own)
SECTIONS: dict[str, Callable[[Page], str]] = {
    "breakpoints": _breakpoints,
    "slices": _slices,
    "embedding_points": _embedding("point", "embedding_points", "per grid point"),
    "embedding_instances": _embedding("instance", "embedding_instances", "per instance"),
    "bias_maps": _bias_maps,
}
#: sections that show the records themselves, and the step they follow (None: after every step)
RECORD_SECTIONS: dict[str, tuple[str | None, Callable[[Page], str]]] = {
    "heatmaps": ("breakpoints", _heatmaps),
    "gallery": (None, _gallery),
}


def _sections(page: Page) -> list[tuple[str, str]]:
    """(anchor, HTML) of every section, in page order: the summary, then the registered steps."""
    ctx = StepContext(page.analysis.run, view=page.view, results=page.analysis.results, figure=page.figure)
    out = [("summary", _summary_section(page))]
    for step in registered():
        if step.name in SECTIONS:
            out.append((step.name, SECTIONS[step.name](page)))
        else:
            own = step_section(step, page.analysis, ctx)
            if own is not None:
                out.append((step.name, own))
        out += [(key, render(page)) for key, (after, render) in RECORD_SECTIONS.items() if after == step.name]
    return out + [(key, render(page)) for key, (after, render) in RECORD_SECTIONS.items() if after is None]


def build_report(analysis: Analysis, gallery: int = 8) -> str:
    """The report page of an analysed run, as HTML text."""
    page = Page(open_view(analysis.run), analysis, gallery)
    sections = _sections(page)
    parts = [f"<section id='{key}'>{body}</section>" for key, body in sections]
    run = page.view.run
    nav = "".join(f"<a href='#{key}'>{key.replace('_', ' ')}</a>" for key, _ in sections)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>proactiv report: {_e(run.path.name)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>proactiv report: {_e(run.path.name)}</h1><p class='muted'>made {stamp}</p><nav>{nav}</nav>"
        + "".join(parts)
        + f"</main>{_script(page)}</body></html>"
    )


def write_report(
    run: Run | str | os.PathLike,
    out: str | os.PathLike | None = None,
    gallery: int = 8,
    progress: Callable[[str, float], None] | None = None,
    **settings,
) -> Path:
    """Analyse what is missing or stale, then write the self-contained report (default ``RUN/report.html``)."""
    run = require_run(run)
    if stale_steps(run, default_settings(**settings)):
        analysis = analyze(run, progress=progress, **settings)
    else:
        analysis = load_analysis(run)
    page = build_report(analysis, gallery=gallery)
    return write_text(Path(out) if out is not None else run.path / "report.html", page)
