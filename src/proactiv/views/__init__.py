"""Plotly figures of a run, one module per view, shared by the dashboard, the report and notebooks.

In a notebook each view takes an open run (``pv.open_run(path)``), a run directory, or an analysis
:class:`~proactiv.analysis.runview.RunView`, reads the stored analyses (computing the ones it needs when
missing) and returns a :class:`plotly.graph_objects.Figure`, which renders inline::

    import proactiv as pv
    run = pv.open_run("runs/kws-demo")
    pv.views.curves(run)                      # outcome, flip rate, loss, d_x along each parameter
    pv.views.heatmap(run, "noise.snr_db", "speed.factor")
    pv.views.embedding(run, by="instance", colour="meta.voice")
    pv.views.record(run, instance=3, point=17)
    pv.views.bias_map(run, class_name="yes")
    pv.views.cka(run)                         # CKA of clean x vs xT per layer and transform value
    pv.views.instance_breakpoints(run)        # which classes break first, per transform parameter
    pv.views.radius(run)                      # certified ≤ adversarial radius vs d_x vs breakpoints

The dashboard and the report call the lower-level functions of each module (``curves_figure``,
``heatmap_figure``, ``embedding_figure``, ``record_figure``, ``bias_figure``, ``grid_diff_figure``) with the
tables they have already aggregated.
"""

from __future__ import annotations

import os

import plotly.graph_objects as go

from proactiv.analysis.instance_breakpoints import instance_boundary as _instance_boundary
from proactiv.analysis.interim import interim
from proactiv.analysis.pipeline import Analysis, analyze, load_analysis
from proactiv.analysis.radius import projection_distance, stored_instance_breakpoints
from proactiv.analysis.runview import RunView, open_view
from proactiv.store import Run
from proactiv.views.bias_map import run_bias_maps
from proactiv.views.cka import cka
from proactiv.views.curves import run_curves
from proactiv.views.embedding import run_embedding
from proactiv.views.heatmap import run_heatmaps
from proactiv.views.instance_breakpoints import boundary_figure, distribution_figure
from proactiv.views.radius import radius_figure
from proactiv.views.record import record_facts, record_figure

RunLike = Run | str | os.PathLike | RunView

__all__ = [
    "bias_map", "cka", "curves", "embedding", "heatmap", "instance_boundary", "instance_breakpoints", "radius",
    "record",
]  # fmt: skip


def _open(run: RunLike, steps: tuple[str, ...] = ()) -> tuple[RunView, Analysis]:
    """The run's records in DuckDB and its stored analyses, computing those of ``steps`` that are missing
    (a step skipped for this run stays skipped: its note says why)."""
    view = run if isinstance(run, RunView) else open_view(run)
    analysis = load_analysis(view.run)
    missing = [
        s for s in steps if analysis[s] is None and not analysis.notes.get(s, "").startswith("skipped")
    ]
    return view, (analyze(view.run, steps=missing) if missing else analysis)


def curves(run: RunLike, per: str = "all") -> go.Figure:
    """Curves along each transform parameter, the other parameters marginalised, with 95 % bands over
    instances and breakpoints marked: ``per="all"`` (outcome, flip rate, loss, d_x, PSNR/SSIM), ``"class"``
    (the outcome per class or group) or ``"quality"`` (PSNR/SSIM only)."""
    view, analysis = _open(run, ("curves", "breakpoints"))
    return run_curves(view, analysis.curves, analysis.breakpoints, per)


def heatmap(
    run: RunLike, col_a: str | None = None, col_b: str | None = None, metric: str | None = None
) -> go.Figure:
    """A record column (default: the outcome, e.g. accuracy) over two grid parameters, or over every pair."""
    view = run if isinstance(run, RunView) else open_view(run)
    return run_heatmaps(view, col_a, col_b, metric)


def embedding(run: RunLike, by: str = "point", colour: str | None = None) -> go.Figure:
    """The difference embedding per grid point (``by="point"``) or per instance, coloured by ``colour``."""
    step = {"point": "embedding_points", "instance": "embedding_instances"}.get(by)
    if step is None:
        raise ValueError(f"by={by!r}: expected 'point' or 'instance'")
    view, analysis = _open(run, (step,))
    return run_embedding(view, analysis[step], by, colour)


def record(run: RunLike, instance: int, point: int) -> go.Figure:
    """The interim view of one kept record: x, xT, x̂T, x̂T − xT (and the outputs for tensor targets)."""
    view = run if isinstance(run, RunView) else open_view(run)
    item = interim(view, instance, point)
    names = view.run.class_names or []

    def class_name(label) -> str:
        return names[int(label)] if 0 <= int(label) < len(names) else str(label)

    facts = record_facts({"instance": instance, "point": point, **item.record}, view.run.schema, class_name,
                         view.describe_point(point))  # fmt: skip
    return record_figure(item, view.run.schema, "<br>".join(facts))


def bias_map(run: RunLike, class_name: str | None = None, point: int | None = None) -> go.Figure:
    """The mean change x̂T − xT of one class (default: the strongest classes), over all grid points or one."""
    view, analysis = _open(run, ("bias_maps",))
    return run_bias_maps(analysis.bias, view.run.schema.input, class_name, point)


def instance_breakpoints(run: RunLike) -> go.Figure:
    """Per-instance breakpoints per class, one panel per transform parameter (which classes break first)."""
    view, analysis = _open(run, ("instance_breakpoints",))
    result = analysis["instance_breakpoints"]
    return distribution_figure(None if result is None else result.table, view.params)


def instance_boundary(run: RunLike, instance: int, col_a: str, col_b: str, **options) -> go.Figure:
    """One instance's boundary curve in the plane of two parameters (computed now: forward passes only)."""
    view = run if isinstance(run, RunView) else open_view(run)
    return boundary_figure(_instance_boundary(view.run, instance, col_a, col_b, **options), view.params)


def radius(run: RunLike, norm: str = "l2") -> go.Figure:
    """Per instance: certified ≤ adversarial radius beside the projection distance d_x and the instance's
    transform breakpoints — is the model fragile to meaningless change or to meaningful change?"""
    view, analysis = _open(run, ("radius",))
    return radius_figure(
        analysis["radius"], projection_distance(view), stored_instance_breakpoints(view.run), norm
    )
