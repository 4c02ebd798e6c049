"""Attributions: where in an input the model finds its evidence, on x, xT and x̂T of kept records, and how that
evidence moved between them (attribution shift) — the ``attributions`` step.

The step (:class:`AttributionsStep`) computes the attribution shift (:func:`attribution_table`) of at most
``max_records`` kept records spread over the run (:func:`spread`), the worst kept record of each of the top error
slices (:func:`showcase`) always among them so that the report can show their overlays. Its parts live in a
module each, and every name of theirs can be imported from here too:

- :mod:`proactiv.analysis.attribution_maps`: attribution maps of model inputs (the Captum methods, Grad-CAM's
  layer, occlusion windows, baselines);
- :mod:`proactiv.analysis.record_attributions`: attributions of a run's kept records (:func:`attribute`);
- :mod:`proactiv.analysis.attribution_shift`: the shift statistics per record (the columns of the step's table)
  and their summary per transform value.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd
from torch import nn

from proactiv.analysis.arrays import clean_inputs, kept_pairs
from proactiv.analysis.attribution_maps import (
    CONV_TYPES,
    METHODS,
    N_STEPS,
    OCCLUSION_WINDOWS,
    attribution_maps,
    baseline_for,
    last_conv_layer,
    occlusion_window,
    spatial_rank,
)
from proactiv.analysis.attribution_shift import (
    PREFIX,
    SUFFIX,
    SUMMARY,
    SUPPORT_DB,
    SUPPORT_FRACTION,
    attribution_shift,
    layout_rank,
    region_shares,
    shift_by_value,
    shift_sentence,
    spearman,
    support_mask,
)
from proactiv.analysis.record_attributions import (
    INPUTS,
    PREDICTIONS,
    TARGETS,
    Attributions,
    attribute,
    iter_attributions,
    record_pairs,
)
from proactiv.analysis.runview import RunView, open_view
from proactiv.analysis.steps import TableStep, register
from proactiv.store import Run

__all__ = [
    "CONV_TYPES", "INPUTS", "METHODS", "N_STEPS", "OCCLUSION_WINDOWS", "PREDICTIONS", "PREFIX", "SHOWCASE",
    "SUFFIX", "SUMMARY", "SUPPORT_DB", "SUPPORT_FRACTION", "TARGETS", "Attributions", "AttributionsStep",
    "attribute", "attribution_maps", "attribution_shift", "attribution_table", "baseline_for", "iter_attributions",
    "last_conv_layer", "layout_rank", "occlusion_window", "record_pairs", "region_shares", "shift_by_value",
    "shift_sentence", "showcase", "spatial_rank", "spearman", "spread", "stored_settings", "support_mask",
]  # fmt: skip

#: overlays the report shows: the worst kept record of this many top error slices
SHOWCASE = 3


def spread(pairs: pd.DataFrame, k: int | None) -> pd.DataFrame:
    """At most ``k`` of ``pairs``, spread evenly over them (sorted by instance, point)."""
    pairs = pairs.drop_duplicates().sort_values(["instance", "point"], ignore_index=True)
    if k is None or k >= len(pairs):
        return pairs
    return pairs.iloc[np.unique(np.linspace(0, len(pairs) - 1, int(k)).round().astype(int))].reset_index(
        drop=True
    )


def attribution_table(
    run: Run | str | os.PathLike | RunView,
    records=None,
    method: str = "saliency",
    target: str = "desired",
    layer: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    regions: int = 3,
    model: nn.Module | None = None,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """The attribution shift (:func:`attribution_shift`) of kept records (default: all), batch by batch; x is
    attributed when its clean input is stored. ``attrs`` say the method, target, layer and inputs."""
    view = run if isinstance(run, RunView) else open_view(run)
    pairs = kept_pairs(view.run) if records is None else record_pairs(records)
    names = list(INPUTS)
    if len(clean_inputs(view.run, pairs.instance.unique())) < pairs.instance.nunique():
        names = ["x_t", "x_proj"]
    parts, layer_name = [], None
    for att in iter_attributions(view, pairs, method, target, names, layer, device, batch_size, model):
        parts.append(attribution_shift(att, view.run.schema.input, regions))
        layer_name = att.layer
        if progress:
            progress(sum(len(p) for p in parts) / max(len(pairs), 1))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"instance": [], "point": []})
    table.attrs.update(method=method, target=target, layer=layer_name, inputs=names, regions=int(regions))
    return table


def showcase(view: RunView, slices: pd.DataFrame | None, k: int = SHOWCASE) -> pd.DataFrame:
    """The worst kept record (failures first, then by loss on xT) of each of the top ``k`` error slices
    (columns slice, conditions, instance, point); without slices, the ``k`` worst kept records."""
    from proactiv.analysis.interim import worst_records

    if slices is None or slices.empty or "where" not in slices:
        worst = worst_records(view, k)
        return worst.assign(slice=0, conditions="worst kept records")[
            ["slice", "conditions", "instance", "point"]
        ]
    pairs = kept_pairs(view.run)
    wrong = "(NOT r.correct_t)::INT" if view.correct_metric else "0"
    rows = []
    with view.frames(_attr_kept=pairs):
        for _, s in slices.head(k).iterrows():
            try:
                hit = view.query(
                    f"SELECT r.instance, r.point FROM records r JOIN _attr_kept USING (instance, point) "
                    f"WHERE ({s['where']}) ORDER BY {wrong} DESC, r.loss_t DESC LIMIT 1"
                )
            except duckdb.Error:  # the clause names per-instance columns this view has not joined
                continue
            if not hit.empty:
                rows.append(
                    {
                        "slice": int(s["slice"]),
                        "conditions": str(s["conditions"]),
                        "instance": int(hit.instance[0]),
                        "point": int(hit.point[0]),
                    }
                )
    return pd.DataFrame(rows, columns=["slice", "conditions", "instance", "point"])


def stored_settings(run: Run) -> dict:
    """The settings the stored attributions were computed with (empty when none are stored)."""
    from proactiv.analysis.pipeline import read_manifest

    return (read_manifest(run)["steps"].get("attributions") or {}).get("settings") or {}


class AttributionsStep(TableStep):
    """Attribution shift per kept record (:func:`attribution_table`), the worst records of the top error
    slices always among them."""

    name = "attributions"
    title = "Attributions: where the evidence moved"
    command = "attributions"
    needs = frozenset({"arrays", "model"})
    uses = ("slices",)
    #: (named apart from the embeddings' ``method`` and influence's ``layer``: flat settings reach every step
    #: that has one of the name)
    settings = {
        "attribution_method": "saliency",
        "target": "desired",
        "max_records": 1000,
        "gradcam_layer": None,
        "batch_size": 32,
        "regions": 3,
    }
    files = ("attributions.parquet",)

    def compute(self, ctx, settings, progress):
        model = ctx.model()  # first: a run without a rebuildable model skips the step before any reading
        pairs = spread(kept_pairs(ctx.run), settings["max_records"])
        shown = showcase(ctx.view, ctx.results.get("slices"))[["instance", "point"]]
        pairs = pd.concat([pairs, shown], ignore_index=True).drop_duplicates(ignore_index=True)
        return attribution_table(
            ctx.view,
            pairs,
            settings["attribution_method"],
            settings["target"],
            settings["gradcam_layer"],
            ctx.device,
            settings["batch_size"],
            settings["regions"],
            model,
            progress,
        )

    def note(self, table):
        a = table.attrs
        text = f"{len(table)} records; {a.get('method')} toward the {a.get('target')} target"
        if a.get("layer"):
            text += f" (layer {a['layer']})"
        rho = table.get(f"{PREFIX}spearman_t_proj")
        if rho is not None and rho.notna().any():
            text += f"; median Spearman ρ(xT, x̂T) {rho.median():.2f}"
        out = table.get(f"{PREFIX}outside_t")
        if out is not None and out.notna().any():
            text += f"; median share outside the clean support on xT {out.median():.0%}"
        return text


register(AttributionsStep())
