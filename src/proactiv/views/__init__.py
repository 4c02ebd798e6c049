"""Plotly figures of a run, one module per view, shared by the dashboard, the report and notebooks.

In a notebook each view takes an open run (``pv.open_run(path)``), a run directory, or an analysis
:class:`~proactiv.analysis.runview.RunView`, reads the stored analyses (computing the ones it needs when
missing) and returns a :class:`plotly.graph_objects.Figure`, which renders inline::

    import proactiv as pv
    run = pv.open_run("runs/kws-demo")
    pv.views.curves(run)                      # outcome, flip rate, loss, d_x along each parameter
    pv.views.heatmap(run, "audio_noise.snr_db", "speed.factor")
    pv.views.embedding(run, by="instance", colour="meta.voice")
    pv.views.record(run, instance=3, point=17)
    pv.views.bias_map(run, class_name="yes")
    pv.views.cka(run)                         # CKA of clean x vs xT per layer and transform value
    pv.views.instance_breakpoints(run)        # which classes break first, per transform parameter
    pv.views.radius(run)                      # certified ≤ adversarial radius vs d_x vs breakpoints
    pv.views.attribution(run, instance=3, point=17, method="gradcam")   # evidence on x, xT and x̂T
    pv.views.faithfulness(run)                # can those maps be believed? deletion vs random, randomisation
    pv.views.influence(run, instance=3, point=17)   # training examples that support / oppose (TracIn)
    pv.views.counterexamples(run)             # confident failures beside their nearest passing partners
    pv.views.anchor(run, instance=3, point=17)   # the ranges under which that record's outcome holds
    pv.views.surrogate.importance(run)        # what drives failure (EBM over transform parameters + metadata)
    pv.views.surrogate.record(run, 3, 17)     # one record's failure in those terms
    pv.views.stream(pv.open_monitor(path))    # a monitored stream: posteriors, firings, violations
    pv.views.model_card(run)                  # what the model's training measured (recall vs false accepts, noise)

The dashboard and the report call the lower-level functions of each module (``curves_figure``,
``heatmap_figure``, ``embedding_figure``, ``record_figure``, ``bias_figure``, ``grid_diff_figure``) with the
tables they have already aggregated.
"""

from __future__ import annotations

import plotly.graph_objects as go

from proactiv.analysis.interim import interim
from proactiv.plugins import import_package

# every view module is imported here, so the report section it registers is in place before a report is built
from proactiv.views import (  # surrogate: a module of figures (importance, shapes …)
    sections,
    slices,
    surrogate,
)
from proactiv.views.anchor import anchor
from proactiv.views.attribution import attribution
from proactiv.views.bias_map import run_bias_maps
from proactiv.views.cka import cka
from proactiv.views.confusions import confusions
from proactiv.views.counterexamples import counterexamples
from proactiv.views.curves import run_curves
from proactiv.views.embedding import run_embedding
from proactiv.views.faithfulness import faithfulness
from proactiv.views.heatmap import run_heatmaps
from proactiv.views.influence import influence
from proactiv.views.instance_breakpoints import instance_boundary, instance_breakpoints
from proactiv.views.model_card import model_card
from proactiv.views.radius import radius
from proactiv.views.record import record_facts, record_figure
from proactiv.views.source import RunLike, open_analysed
from proactiv.views.stream import stream

# every view module registers its report section on import: a new one needs no line here
import_package(__name__, __path__)

__all__ = [
    "anchor", "attribution", "bias_map", "cka", "confusions", "counterexamples", "curves", "embedding", "faithfulness", "heatmap",
    "influence", "instance_boundary", "instance_breakpoints", "model_card", "radius", "record", "sections", "slices", "stream", "surrogate",
]  # fmt: skip


def curves(run: RunLike, per: str = "all") -> go.Figure:
    """Curves along each transform parameter, the other parameters marginalised, with 95 % bands over
    instances and breakpoints marked: ``per="all"`` (outcome, flip rate, loss, d_x, PSNR/SSIM), ``"class"``
    (the outcome per class or group) or ``"quality"`` (PSNR/SSIM only)."""
    view, analysis = open_analysed(run, ("curves", "breakpoints"))
    return run_curves(view, analysis.curves, analysis.breakpoints, per)


def heatmap(
    run: RunLike, col_a: str | None = None, col_b: str | None = None, metric: str | None = None
) -> go.Figure:
    """A record column (default: the outcome, e.g. accuracy) over two grid parameters, or over every pair."""
    view, _ = open_analysed(run)
    return run_heatmaps(view, col_a, col_b, metric)


def embedding(run: RunLike, by: str = "point", colour: str | None = None) -> go.Figure:
    """The difference embedding per grid point (``by="point"``) or per instance, coloured by ``colour``."""
    step = {"point": "embedding_points", "instance": "embedding_instances"}.get(by)
    if step is None:
        raise ValueError(f"by={by!r}: expected 'point' or 'instance'")
    view, analysis = open_analysed(run, (step,))
    return run_embedding(view, analysis[step], by, colour)


def record(run: RunLike, instance: int, point: int) -> go.Figure:
    """The interim view of one kept record: x, xT, x̂T, x̂T − xT (and the outputs for tensor targets)."""
    view, _ = open_analysed(run)
    item = interim(view, instance, point)
    names = view.run.class_names or []

    def class_name(label) -> str:
        return names[int(label)] if 0 <= int(label) < len(names) else str(label)

    facts = record_facts({"instance": instance, "point": point, **item.record}, view.run.schema, class_name,
                         view.describe_point(point))  # fmt: skip
    return record_figure(item, view.run.schema, "<br>".join(facts))


def bias_map(run: RunLike, class_name: str | None = None, point: int | None = None) -> go.Figure:
    """The mean change x̂T − xT of one class (default: the strongest classes), over all grid points or one."""
    view, analysis = open_analysed(run, ("bias_maps",))
    return run_bias_maps(analysis.bias, view.run.schema.input, class_name, point)
