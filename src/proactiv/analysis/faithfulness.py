"""Faithfulness of the attributions — the ``faithfulness`` step: can the maps beside a record be believed?

People believe an explanation once they are shown one, so every attribution method the report shows carries its
own measure of trust, on a sample of kept records (those the ``attributions`` step explained, when it has a
result) and toward the explained target the attributions use (the run schema's desired output by default, see
:mod:`proactiv.analysis.record_attributions`): infidelity, max-sensitivity, a deletion curve against random
deletion, and the model-randomisation sanity check (:mod:`proactiv.analysis.faithfulness_metrics` says how each
is measured). One row per (record, input, method); :func:`faithfulness_summary` gives the medians per method and
its verdicts. A figure that could not be measured is NaN and the row's ``reason`` says why — never a good value
by default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from proactiv.analysis.arrays import clean_inputs, kept_pairs
from proactiv.analysis.attribution import spread, stored_settings
from proactiv.analysis.attribution_maps import baseline_for, last_conv_layer
from proactiv.analysis.faithfulness_metrics import (
    DELETION_MIN,
    DELETION_THRESHOLD,
    RANDOMISATION_THRESHOLD,
    TOP_SHARE,
    area,
    deletion_curve,
    deletion_order,
    explainer,
    full_baseline,
    has_conv,
    infidelity,
    max_sensitivity,
    random_order,
    randomised_cascade,
    record_seeds,
    scorer,
    similarity,
)
from proactiv.analysis.record_attributions import (
    INPUTS,
    TARGETS,
    explained_targets,
    kept_record_inputs,
    run_loss,
)
from proactiv.analysis.runview import AnalysisError, RunView, open_view
from proactiv.analysis.steps import StepContext, TableStep, register
from proactiv.extras import MissingExtra
from proactiv.store import Run

#: measured when no method is named: the cheap ones (Grad-CAM only where the model has a convolution layer);
#: occlusion costs about 50× saliency here (64 windows per map, and max-sensitivity maps 8 more inputs)
DEFAULT_METHODS = ("saliency", "integrated_gradients", "gradcam")
#: per-record figures (besides instance, point, input, method, target, reason)
FIGURES = (
    "infidelity", "infidelity_rel", "max_sensitivity", "score", "score_deleted", "deletion_auc", "random_auc",
    "deletion_ratio", "deletion_gain", "randomised_top_spearman", "randomised_spearman", "randomised_top_overlap",
)  # fmt: skip
#: what the summary and the views call them
LABELS = {
    "infidelity_rel": "infidelity (relative)",
    "infidelity": "infidelity",
    "max_sensitivity": "max-sensitivity",
    "deletion_auc": "deletion AUC",
    "random_auc": "random-deletion AUC",
    "deletion_ratio": "deletion / random (above the deleted score)",
    "randomised_spearman": "randomisation ρ",
    "randomised_top_overlap": "randomisation top-10 % overlap",
}


@dataclass(frozen=True)
class Budget:
    """How much each measure draws: ``deletion_steps``, ``random_orders`` (random deletion orders per record),
    ``infidelity_samples`` (perturbations), max-sensitivity ``sensitivity_samples`` within ``sensitivity_radius`` (a share
    of the input's spread: an image's value range, else the record's standard deviation), the cascade of
    ``randomise_layers`` top layers, and the ``seed`` of every draw."""

    deletion_steps: int = 20
    random_orders: int = 5
    infidelity_samples: int = 16
    sensitivity_samples: int = 8
    sensitivity_radius: float = 0.02
    randomise_layers: int = 3
    seed: int = 0

    def __post_init__(self):
        for name in (
            "deletion_steps",
            "random_orders",
            "infidelity_samples",
            "sensitivity_samples",
            "randomise_layers",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected at least 1")
        if not self.sensitivity_radius > 0:
            raise ValueError(f"sensitivity_radius={self.sensitivity_radius!r}: expected a share above 0")


def default_methods(model: nn.Module, layer: str | None = None) -> list[str]:
    """:data:`DEFAULT_METHODS` that ``model`` supports (Grad-CAM needs a convolution layer)."""
    return [m for m in DEFAULT_METHODS if not explainer(m).needs_conv or has_conv(model, layer)]


def sample_records(run: Run, names: Sequence[str], k: int, among: pd.DataFrame | None = None) -> dict:
    """Per input name, at most ``k`` records spread over ``among`` (default: every kept record); for ``x`` one
    record per instance (its clean input is the same at every grid point)."""
    pairs = kept_pairs(run) if among is None or among.empty else among[["instance", "point"]]
    pairs = pairs.astype("int64").drop_duplicates().sort_values(["instance", "point"], ignore_index=True)
    return {n: spread(pairs.drop_duplicates("instance") if n == "x" else pairs, k) for n in names}


def _radius(x: torch.Tensor, spec, share: float) -> np.ndarray:
    if spec.image and spec.value_range is not None:
        return np.full(len(x), share * (spec.value_range[1] - spec.value_range[0]))
    spread_ = x.flatten(1).double().std(1).cpu().numpy()
    return share * np.where(spread_ > 0, spread_, 1.0)


@dataclass
class _Batch:
    """One batch of records and what every method's figures share: inputs ``x``, explained targets ``t``,
    the baseline, random deletion's curves and whether deletion can say anything about each record."""

    x: torch.Tensor
    t: torch.Tensor
    base: torch.Tensor
    seeds: Callable[[str], list[int]]
    random: np.ndarray
    informative: np.ndarray


def _batch(model, x, t, pairs, spec, kind, loss, budget) -> _Batch:
    base = full_baseline(baseline_for(spec, x), x)
    inst, pts = pairs.instance.to_numpy(), pairs.point.to_numpy()

    def seeds(salt: str) -> list[int]:
        return record_seeds(budget.seed, inst, pts, salt)

    prob = scorer(model, kind, loss, probability=kind == "label")
    features = int(np.prod(x.shape[1:]))
    orders = [random_order(seeds(f"random{r}"), features) for r in range(budget.random_orders)]
    random = np.mean([deletion_curve(prob, x, t, base, o, budget.deletion_steps) for o in orders], axis=0)
    start, end = random[:, 0], random[:, -1]
    least = DELETION_MIN if kind == "label" else DELETION_MIN * np.maximum(np.abs(start), np.abs(end))
    return _Batch(x, t, base, seeds, random, start - end >= least)


def _method_figures(model, cascade, batch: _Batch, method, spec, kind, loss, layer, budget):
    """(figures, reasons per record, deletion curves or None) of one method on one batch."""
    x, t, base, n = batch.x, batch.t, batch.base, len(batch.x)
    figures = {f: np.full(n, np.nan) for f in FIGURES}
    start, end = batch.random[:, 0], batch.random[:, -1]
    figures.update(score=start, score_deleted=end, random_auc=area(batch.random))
    reasons: list[list[str]] = [[] for _ in range(n)]
    how = explainer(method)

    def explain(m, z, goal, b):
        return how.explain(m, z, goal, target_kind=kind, loss=loss, baseline=b, layer=layer).detach()

    def say(text, where=None):
        for k in range(n) if where is None else np.flatnonzero(where):
            reasons[k].append(text)

    if how.needs_conv and not has_conv(model, layer):
        say(f"{type(model).__name__} has no convolution layer")
        return figures, reasons, None
    try:
        maps = explain(model, x, t, base)
    except MissingExtra:
        raise  # not a failure of the method: the step is skipped, naming the extra that installs it
    except (AnalysisError, ValueError, RuntimeError) as err:
        say(f"the method failed: {err}")
        return figures, reasons, None
    zero = maps.flatten(1).abs().amax(1).cpu().numpy() == 0
    fid, rel = infidelity(model, x, t, maps, base, batch.seeds("infidelity"), multiplies_input=how.multiplies_input,
                          target_kind=kind, loss=loss, samples=budget.infidelity_samples)  # fmt: skip
    figures.update(infidelity=fid, infidelity_rel=rel)
    sens = max_sensitivity(lambda z, goal, b: explain(model, z, goal, b), x, t, base, batch.seeds("sensitivity"),
                           _radius(x, spec, budget.sensitivity_radius), budget.sensitivity_samples)  # fmt: skip
    curve = deletion_curve(
        scorer(model, kind, loss, probability=kind == "label"),
        x,
        t,
        base,
        deletion_order(maps),
        budget.deletion_steps,
    )
    auc = area(curve)
    above = figures["random_auc"] - end
    ratio = np.divide(auc - end, above, out=np.full(n, np.nan), where=np.abs(above) > 1e-12)
    ranked = batch.informative & ~zero
    figures.update(max_sensitivity=np.where(zero, np.nan, sens), deletion_auc=np.where(zero, np.nan, auc),
                   deletion_ratio=np.where(ranked, ratio, np.nan),
                   deletion_gain=np.where(ranked, figures["random_auc"] - auc, np.nan))  # fmt: skip
    figures.update(_randomisation(explain, cascade, maps, batch, reasons, zero))
    say("the map is zero (it ranks no feature)", zero)
    say(f"deletion: deleting every feature lowers the score by less than {DELETION_MIN:g}"
        f"{'' if kind == 'label' else ' of its size'}", ~batch.informative)  # fmt: skip
    return figures, reasons, curve


def _batch_rows(model, cascade, batch: _Batch, pairs, name, methods, spec, kind, loss, layer, budget, curves):
    """The rows of one batch of records; each method's deletion curves (and random deletion's, under None) are
    added to ``curves``."""
    curves.setdefault(None, []).append(batch.random)
    rows = []
    for method in methods:
        figures, reasons, curve = _method_figures(
            model, cascade, batch, method, spec, kind, loss, layer, budget
        )
        if curve is not None:
            curves.setdefault(method, []).append(curve)
        for k in range(len(batch.x)):
            rows.append({"instance": int(pairs.instance[k]), "point": int(pairs.point[k]), "input": name,
                         "method": method, "target": int(batch.t[k]) if kind == "label" else -1,
                         **{f: float(figures[f][k]) for f in FIGURES}, "reason": "; ".join(reasons[k])})  # fmt: skip
    return rows


def _randomisation(explain, cascade, maps, batch: _Batch, reasons, zero) -> dict:
    """Similarity of the maps of the cascade's first and last model to ``maps``; NaN and a reason when there is
    no cascade, a re-initialised model cannot be explained or a map is constant (``zero``: the original is)."""
    x, t, base, n = batch.x, batch.t, batch.base, len(batch.x)
    names = ("randomised_top_spearman", "randomised_spearman", "randomised_top_overlap")
    out = {f: np.full(n, np.nan) for f in names}
    models, why = cascade
    if not models:
        for r in reasons:
            r.append(f"randomisation: {why}")
        return out
    original = maps.cpu().numpy()
    try:
        first = explain(models[0][1], x, t, base).cpu().numpy()
        last = first if len(models) == 1 else explain(models[-1][1], x, t, base).cpu().numpy()
    except (AnalysisError, ValueError, RuntimeError) as err:
        for r in reasons:
            r.append(f"randomisation: the method failed on the re-initialised model ({err})")
        return out
    out["randomised_top_spearman"] = similarity(original, first)[0]
    out["randomised_spearman"], out["randomised_top_overlap"] = similarity(original, last)
    for f in names:
        out[f] = np.where(zero, np.nan, out[f])
    for k in np.flatnonzero(np.isnan(out["randomised_spearman"]) & ~zero):
        reasons[k].append("randomisation: the map of the re-initialised model is constant")
    return out


def faithfulness_table(
    run: Run | str | os.PathLike | RunView,
    records: pd.DataFrame | None = None,
    methods: Sequence[str] | None = None,
    target: str = "desired",
    inputs: Sequence[str] = ("x",),
    layer: str | None = None,
    budget: Budget = Budget(),
    max_records: int = 32,
    device: str = "auto",
    batch_size: int = 16,
    model: nn.Module | None = None,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Faithfulness of ``methods`` (default :func:`default_methods`; any registered explainer,
    :func:`proactiv.analysis.faithfulness_metrics.register_explainer`) on at most ``max_records`` records per
    input of ``inputs`` spread over ``records`` (default: every kept record), toward ``target`` (``desired``:
    where projection aimed, as the run schema says; or ``predicted``). ``x`` falls back to xT when the run
    stored no clean inputs. One row per (record, input, method) with :data:`FIGURES`, the explained class
    (``target``, −1 for tensor targets) and the ``reason`` of every NaN; ``attrs`` say what was measured and how,
    with the mean deletion curve of each method (``curves``) and of random deletion (``random_curve``)."""
    view = run if isinstance(run, RunView) else open_view(run)
    run, spec = view.run, view.run.schema.input
    if target not in TARGETS:
        raise ValueError(f"target={target!r}: expected one of {', '.join(TARGETS)}")
    names = list(dict.fromkeys(inputs))
    if not names or any(n not in INPUTS for n in names):
        raise ValueError(f"inputs={list(inputs)!r}: expected some of {list(INPUTS)}")
    model = (model if model is not None else StepContext(run, device=device).model()).eval()
    chosen = list(methods) if methods is not None else default_methods(model, layer)
    for m in chosen:
        explainer(m)  # an unknown name: ValueError listing the known ones
    fallback = "x" in names and not clean_inputs(run, kept_pairs(run).instance.unique()[:1])
    if fallback:
        names = list(dict.fromkeys("x_t" if n == "x" else n for n in names))
    layer_name = (
        last_conv_layer(model, layer)[0]
        if any(explainer(m).needs_conv for m in chosen) and has_conv(model, layer)
        else None
    )
    kind = "label" if run.schema.classifier else "tensor"
    loss = "mse" if kind == "label" else run_loss(run)
    cascade = randomised_cascade(model, budget.randomise_layers, budget.seed)
    device_ = next(iter(model.parameters()), torch.zeros(0)).device
    samples = sample_records(run, names, max_records, records)
    total = max(1, sum(len(p) for p in samples.values()))
    rows, curves, done, step = [], {}, 0, max(1, int(batch_size))
    for name, pairs in samples.items():
        values = kept_record_inputs(run, pairs, [name]).get(name)
        goal = explained_targets(view, pairs, [name], target)[name]
        for s in range(0, len(pairs), step):
            part = pairs.iloc[s : s + step].reset_index(drop=True)
            x = torch.from_numpy(values[s : s + step]).to(device_)
            t = torch.from_numpy(np.array(goal[s : s + step])).to(device_)
            batch = _batch(model, x, t, part, spec, kind, loss, budget)
            rows += _batch_rows(model, cascade, batch, part, name, chosen, spec, kind, loss, layer_name, budget,
                                curves)  # fmt: skip
            done += len(part)
            if progress:
                progress(done / total)
    table = pd.DataFrame(rows, columns=["instance", "point", "input", "method", "target", *FIGURES, "reason"])
    table.attrs.update(
        methods=chosen, target=target, inputs=names, fallback=bool(fallback), layer=layer_name,
        randomised=[n for n, _ in cascade[0]], randomisation_reason=cascade[1], budget=asdict(budget),
        curves={m: _mean_curve(curves.get(m)) for m in chosen}, random_curve=_mean_curve(curves.get(None)),
        randomisation_threshold=RANDOMISATION_THRESHOLD, deletion_threshold=DELETION_THRESHOLD, top_share=TOP_SHARE,
    )  # fmt: skip
    return table


def _mean_curve(parts: list[np.ndarray] | None) -> list[float] | None:
    """The mean of the records' curves (None: no record had one)."""
    return np.concatenate(parts).mean(0).tolist() if parts else None


def _verdict(value: float, threshold: float) -> str:
    if np.isnan(value):
        return "not checked"
    return "flagged" if value >= threshold else "passes"


def faithfulness_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method (in the table's order): records, the medians of its figures, and two verdicts — ``deletion`` (flagged: its median deletion ratio ≥ :data:`DELETION_THRESHOLD`, hardly faster
    than random) and ``randomisation`` (flagged: its median ρ ≥ :data:`RANDOMISATION_THRESHOLD`, the maps barely
    change when the model's top layers are re-initialised); "not checked" when the figure could not be measured,
    with the reasons (and how many records each) in ``not_measured``."""
    rows = []
    for method, part in table.groupby("method", sort=False):
        medians = {f: float(part[f].median()) if part[f].notna().any() else float("nan") for f in FIGURES}
        reasons = part.reason[part.reason != ""].str.split("; ").explode().value_counts()
        rows.append({"method": method, "records": len(part), **medians,
                     "deletion": _verdict(medians["deletion_ratio"], DELETION_THRESHOLD),
                     "randomisation": _verdict(medians["randomised_spearman"], RANDOMISATION_THRESHOLD),
                     "not_measured": "; ".join(f"{r} ({n})" for r, n in reasons.items())})  # fmt: skip
    return pd.DataFrame(rows)


def summary_sentence(summary: pd.DataFrame) -> str:
    """One sentence per method: its medians and verdicts."""
    parts = []
    for s in summary.itertuples():
        text = (f"{s.method}: infidelity {s.infidelity_rel:.2f} (relative), max-sensitivity {s.max_sensitivity:.2f}, "
                f"deletion AUC {s.deletion_auc:.2f} vs {s.random_auc:.2f} random (ratio {s.deletion_ratio:.2f}), "
                f"randomisation ρ {s.randomised_spearman:.2f}")  # fmt: skip
        flagged = [k for k in ("deletion", "randomisation") if getattr(s, k) == "flagged"]
        unchecked = [k for k in ("deletion", "randomisation") if getattr(s, k) == "not checked"]
        if flagged:
            text += f" — FLAGGED by {' and '.join(flagged)}"
        if unchecked:
            text += f" — {' and '.join(unchecked)} not checked"
        parts.append(text.replace("nan", "n/a"))
    return "; ".join(parts)


class FaithfulnessStep(TableStep):
    """Faithfulness of each attribution method on a sample of kept records (:func:`faithfulness_table`)."""

    name = "faithfulness"
    title = "Faithfulness: can the attributions be believed?"
    command = "faithfulness"
    needs = frozenset({"arrays", "model"})
    #: it measures the records the attributions step explained (and follows its target); placed after it, so the
    #: report shows it beside the maps
    uses = ("attributions",)
    #: (named apart from other steps' settings where the meaning differs: flat settings reach every step that has
    #: one of the name; ``target``, ``gradcam_layer`` and ``batch_size`` mean what they mean for attributions)
    settings = {
        "faithfulness_methods": None,
        "target": None,
        "faithfulness_inputs": ["x"],
        "faithfulness_records": 32,
        "gradcam_layer": None,
        "batch_size": 16,
        **{("faithfulness_seed" if k == "seed" else k): v for k, v in asdict(Budget()).items()},
    }
    files = ("faithfulness.parquet",)

    def compute(self, ctx, settings, progress):
        model = ctx.model()
        target = settings["target"] or stored_settings(ctx.run).get("target") or "desired"
        among = ctx.results.get("attributions")
        budget = Budget(**{k: settings["faithfulness_seed" if k == "seed" else k] for k in asdict(Budget())})
        return faithfulness_table(ctx.view, among, settings["faithfulness_methods"], target,
                                  settings["faithfulness_inputs"], settings["gradcam_layer"], budget,
                                  settings["faithfulness_records"], ctx.device, settings["batch_size"], model,
                                  progress)  # fmt: skip

    def note(self, table):
        a = table.attrs
        names = {"x": "x", "x_t": "xT", "x_proj": "x̂T"}
        shown = ", ".join(names[n] for n in a.get("inputs", []))
        text = (f"{table[['instance', 'point', 'input']].drop_duplicates().shape[0]} records ({shown}) toward the "
                f"{a.get('target')} target")  # fmt: skip
        if a.get("fallback"):
            text += " (no clean inputs stored: xT instead of x)"
        randomised = [n or "(the model itself)" for n in a.get("randomised") or []]
        if randomised:
            text += (f"; randomisation re-initialised {', '.join(randomised)} (top first; flagged at a median ρ ≥ "
                     f"{a.get('randomisation_threshold')})")  # fmt: skip
        else:
            text += f"; randomisation not checked: {a.get('randomisation_reason')}"
        if table.empty:
            return text + "; no records"
        summary = faithfulness_summary(table)
        text += ". " + summary_sentence(summary)
        missing = [f"{s.method}: {s.not_measured}" for s in summary.itertuples() if s.not_measured]
        if missing:
            text += ". Not measured (NaN): " + " | ".join(missing)
        return text


register(FaithfulnessStep())
