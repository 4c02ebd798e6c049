"""The static report: one self-contained HTML page per run. Figures are :mod:`proactiv.views` figures
embedded as plotly JSON, drawn by plotly.js inlined once, so the page opens offline with no server.

The page follows the registry of analysis steps: after the run summary, the sections the view modules registered
for each step (:mod:`proactiv.views.sections`), in the steps' dependency order, with the sections of the records
themselves (heatmaps, the worst-records gallery) after the step they follow. The report knows no step by name.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs

from proactiv import views  # noqa: F401  (every view module registers its report sections on import)
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
from proactiv.analysis.steps import missing_without_model, registered
from proactiv.schema import status_counts_text
from proactiv.store import Run, write_text
from proactiv.views.sections import (
    SectionContext,
    closing_sections,
    esc,
    note_html,
    sections_of,
    table_html,
)
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
        "output": schema.output_text,
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
        if schema.outcome == "within_cutoff":
            items["accuracy"] = (
                "not applicable: this run has no predictions (image-to-image or regression); "
                "“within cutoff” below means the output's loss is below the projection cutoff"
            )
        within = "avg(correct_t::DOUBLE)"
        ident = run.grid.identity_point()
        if ident is not None:
            at = view.query(f"SELECT {within} AS a FROM records WHERE point = {ident}").a.iloc[0]
            named = (
                "within cutoff"
                if schema.outcome == "within_cutoff"
                else schema.outcome_label.removesuffix(" on xT")
            )
            items[f"{named} at the identity point"] = f"{at:.3f}"
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
    ended = view.query("SELECT status, count(*) AS n FROM records GROUP BY 1")
    items["projections converged"] = (
        f"{s.converged:.3f} (median {s.median_steps:g} steps; mean d_x {s.mean_d_x:.3g}); how they ended: "
        + status_counts_text(dict(zip(ended.status, ended.n, strict=True)))
    )
    grid = pd.DataFrame(
        [
            {"column": t.column, "unit": t.param.unit, "identity": format_value(t.param.identity),
             "values": ", ".join(format_value(v) for v in t.values)}
            for t in run.grid.transforms
        ]
    )  # fmt: skip
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items.items())
    return f"{note_html(missing_without_model(run))}<dl>{rows}</dl><h3>Grid ({len(run.grid)} points)</h3>{table_html(grid)}"


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
        caption_html = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
        return (
            f"<figure><div class='plot' role='img' aria-label='{esc(alt)}' data-figure='{len(self.figures) - 1}'>"
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


def _sections(page: Page) -> list[tuple[str, str]]:
    """(anchor, HTML) of every section, in page order: the summary, then the sections registered for each step
    (:mod:`proactiv.views.sections`) in the registry's dependency order, then the closing ones."""
    ctx = SectionContext(page.analysis.run, page.view, page.analysis, page.figure, page.gallery)
    chosen = [s for step in registered() for s in sections_of(step.name)] + closing_sections()
    drawn = [(s.key, s.html(ctx)) for s in chosen]
    return [("summary", f"<h2>Run summary</h2>{_summary(page.view)}")] + [
        (k, h) for k, h in drawn if h is not None
    ]


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
        f"<title>proactiv report: {esc(run.path.name)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>proactiv report: {esc(run.path.name)}</h1><p class='muted'>made {stamp}</p><nav>{nav}</nav>"
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
