"""The static report: one self-contained HTML page (styles inline, figures as PNG data) per run."""

from __future__ import annotations

import datetime as _dt
import html
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

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
from proactiv.report import figures
from proactiv.report.style import class_colours, input_kind
from proactiv.store import Run

SECTIONS = ("summary", "breakpoints", "heatmaps", "slices", "embeddings", "bias-maps", "gallery")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d232a;background:#fafbfc}
main{max-width:1280px;margin:0 auto;padding:1.5rem 2rem 4rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{border-bottom:2px solid #d8dee4;padding-bottom:.3rem;margin-top:2.4rem}
nav a{margin-right:1rem;color:#0b5cad;text-decoration:none} .muted{color:#59636e} .note{background:#fff8c5;
border-left:4px solid #d4a72c;padding:.4rem .8rem;margin:.6rem 0} img{max-width:100%;height:auto;background:#fff;
border:1px solid #e5e9ee;margin:.5rem 0} table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0;background:#fff}
th,td{border:1px solid #d8dee4;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f0f3f6} dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem} dt{font-weight:600}
details summary{cursor:pointer;color:#0b5cad} figure{margin:0} figcaption{font-size:.85rem;color:#59636e}
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


def _figure(uri: str | None, caption: str, alt: str) -> str:
    if uri is None:
        return f"<p class='muted'>Nothing to draw: {_e(caption)}</p>"
    return f"<figure><img src='{uri}' alt='{_e(alt)}'><figcaption>{_e(caption)}</figcaption></figure>"


def _note(text: str | None) -> str:
    return f"<p class='note'>{_e(text)}</p>" if text else ""


def _summary(view: RunView) -> str:
    run, cfg = view.run, view.run.config
    desc = cfg.get("task_description") or {}
    model = cfg.get("model") or {}
    what = {k: v for k, v in {**desc, **({"model": model} if model else {})}.items() if k != "indices"}
    classes = view.classes
    if view.classifier:
        data_classes = f"{len(classes)} classes: {', '.join(classes[:30])}"
    elif view.group_column:
        data_classes = f"no classes (image-to-image or regression); grouped by {view.group_column}: {', '.join(classes[:30])}"
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
    if view.classifier:
        outcome = (
            "avg(correct_clean::DOUBLE) AS clean, avg(correct_t::DOUBLE) AS acc, avg(flipped::DOUBLE) AS flips, "
            + outcome
        )
    s = view.query(f"SELECT {outcome} FROM records").iloc[0]
    if view.classifier:
        items["accuracy on clean input"] = f"{s.clean:.3f}"
        ident = run.grid.identity_point()
        if ident is not None:
            at = view.query(f"SELECT avg(correct_t::DOUBLE) AS a FROM records WHERE point = {ident}").a.iloc[
                0
            ]
            items["accuracy at the identity point"] = f"{at:.3f}"
        items["accuracy over the whole grid"] = f"{s.acc:.3f} (flip rate {s.flips:.3f})"
    elif view.correct_metric:
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
        items[f"{view.correct_label} over the whole grid"] = f"{overall:.3f}"
    else:
        items["accuracy"] = "not applicable: this run has no predictions (image-to-image or regression)"
    quality = [m for m in ("psnr_t", "psnr_out_t", "psnr_out_proj") if m in view.columns]
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


def build_report(analysis: Analysis, gallery: int = 8) -> str:
    """The report page of an analysed run, as HTML text."""
    view = open_view(analysis.run)
    run, notes = view.run, analysis.notes
    colours = class_colours(view.classes)
    parts = [f"<section id='summary'><h2>Run summary</h2>{_summary(view)}</section>"]

    bp = analysis.breakpoints
    text = (
        "Curves along each transform parameter, the other parameters marginalised (each instance averaged "
        "over them first; bands are 95 % intervals over instances). The dashed line marks the breakpoint."
    )
    body = _note(notes.get("breakpoints"))
    if analysis.curves is not None:
        body += _figure(
            figures.curves_figure(view, analysis.curves, bp),
            "metric curves per transform parameter",
            "breakpoint curves",
        )
        if view.correct_metric and view.group_column:
            body += _figure(
                figures.class_curves_figure(view, analysis.curves, bp, colours),
                f"{view.correct_label} per {view.group_title}",
                f"per-{view.group_title} {view.correct_metric.replace('_', ' ')} curves",
            )
        if view.quality_metrics:
            body += "<h3>Image quality along each parameter</h3>"
            body += _figure(
                figures.quality_figure(view, analysis.curves),
                "PSNR and SSIM: the transformed and projected inputs against the clean input"
                + (
                    "; the model's outputs f(xT) and f(x̂T) against the target. Where f(xT) stays low the model "
                    "cannot undo that corruption"
                    if "psnr_out_t" in view.columns
                    else ""
                )
                + f". PSNR is capped at {PSNR_CAP_DB:g} dB (identical images have infinite PSNR).",
                "image quality curves",
            )
    if bp is not None and view.correct_metric:
        cols = [
            "column",
            "scope",
            "side",
            "value",
            "before",
            "after",
            "previous",
            "reference",
            "reference_value",
            "ci_low",
            "ci_high",
            "n",
        ]
        marginal = bp[bp.condition == ""]
        body += f"<h3>Breakpoints (others marginalised)</h3>{_table(marginal, cols, rows=200)}"
        cond = bp[bp.condition != ""]
        body += f"<details><summary>Breakpoints within each value of the other parameters ({len(cond)})</summary>{_table(cond, ['column', 'condition', 'scope', 'value', 'before', 'after', 'reference'], rows=500)}</details>"
    parts.append(f"<section id='breakpoints'><h2>Breakpoints</h2><p>{_e(text)}</p>{body}</section>")

    what = view.correct_label if view.correct_metric else "mean loss on xT"
    body = _figure(
        figures.heatmaps_figure(view),
        "mean over instances and the remaining parameters",
        f"{(view.correct_metric or 'loss').replace('_', ' ')} heatmaps",
    )
    if "psnr_out_t" in view.columns:
        body += _figure(
            figures.heatmaps_figure(view, "psnr_out_t"),
            f"mean PSNR of the output f(xT) against the target (capped at {PSNR_CAP_DB:g} dB)",
            "output PSNR heatmaps",
        )
    parts.append(
        f"<section id='heatmaps'><h2>{_e(what[0].upper() + what[1:])} over pairs of parameters</h2>{body}</section>"
    )

    sl = analysis.slices
    body = _note(notes.get("slices"))
    if sl is not None:
        body += _table(
            sl,
            [
                "slice",
                "conditions",
                "size",
                "errors",
                "error_rate",
                "coverage",
                "worst_point_values",
                "worst_point_error_rate",
                "best_point_values",
                "best_point_error_rate",
            ],
        )
    parts.append(
        "<section id='slices'><h2>Error slices</h2><p>Leaves of a shallow decision tree predicting failure from the "
        "transform parameters and instance metadata, ranked by error rate × size; with the best and worst grid "
        f"point inside each slice.</p>{body}</section>"
    )

    body = ""
    for by, step, title in (
        ("point", "embedding_points", "per grid point"),
        ("instance", "embedding_instances", "per instance"),
    ):
        body += f"<h3>Difference embedding {title}</h3>{_note(notes.get(step))}"
        body += _figure(
            figures.embedding_figure(view, getattr(analysis, step), by, colours),
            f"difference vectors {title}",
            f"embedding {title}",
        )
    parts.append(
        "<section id='embeddings'><h2>Difference embeddings</h2><p>Each dot is a grid point (its instances' difference "
        "vectors concatenated) or an instance (its grid points' vectors concatenated), placed so that similar "
        f"vectors lie close.</p>{body}</section>"
    )

    body = _note(notes.get("bias_maps"))
    if analysis.bias is not None:
        kind = input_kind(run, analysis.bias.mean_.shape[2:])
        body += _figure(
            figures.bias_figure(analysis.bias, analysis.bias_ranking, kind),
            f"strongest {analysis.bias.group} biases (all grid points pooled)",
            "bias maps",
        )
        body += _table(
            analysis.bias_ranking,
            [
                "rank",
                "class",
                "instances",
                "records",
                "strength",
                "consistency",
                "mean_abs",
                "peak_row",
                "peak_column",
                "peak_value",
            ],
            rows=15,
        )
    per = "class" if analysis.bias is None else analysis.bias.group
    per = "class" if per == "all" else per
    parts.append(
        f"<section id='bias-maps'><h2>Bias maps</h2><p>Mean change x̂T − xT per {_e(per)}: what the model wants to see. "
        "Red: the model needed more there; blue: less. Strength is the RMS of the mean change; consistency near 1 "
        f"means every instance moved the same way.</p>{body}</section>"
    )

    body, outputs = "", ""
    worst = worst_records(view, gallery)
    if worst.empty:
        body = _note(
            f"no arrays kept in this run (arrays.keep = {run.config.get('arrays', {}).get('keep')!r})"
        )
    else:
        items = interims(view, worst)
        kind = input_kind(run, items[0].x_t.shape)
        for item in items:
            body += _figure(
                figures.interim_figure(
                    item, kind, run.class_names, view.describe_point(item.point), view.group_column
                ),
                "",
                f"record {item.instance} at point {item.point}"
                + (": inputs and outputs f(xT), f(x̂T)" if item.y_t is not None else ""),
            )
        if items[0].y_t is not None:
            outputs = " The second row shows the model's outputs f(xT), f(x̂T) next to the target y."
    wrong = (
        "got wrong"
        if view.classifier
        else "left outside the loss cutoff"
        if view.correct_metric
        else "did worst on"
    )
    parts.append(
        f"<section id='gallery'><h2>Worst records</h2><p>Kept records the model {wrong} with the highest loss "
        f"(one per instance): clean, transformed, projected input and the change projection made.{outputs}</p>{body}</section>"
    )

    nav = "".join(f"<a href='#{s}'>{s.replace('-', ' ')}</a>" for s in SECTIONS)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>proactiv report: {_e(run.path.name)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>proactiv report: {_e(run.path.name)}</h1><p class='muted'>made {stamp}</p><nav>{nav}</nav>"
        + "".join(parts)
        + "</main></body></html>"
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
    path = Path(out) if out is not None else run.path / "report.html"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
