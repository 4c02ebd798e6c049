"""Attributions of a run's kept records: the maps of :mod:`proactiv.analysis.attribution_maps` on x, xT and x̂T
of the records whose arrays the sweep kept, with the run's rebuilt model (or one given), toward the desired target
(where projection aimed, as the run schema's ``desired`` says: the label, the model's prediction on the clean input
of own-prediction runs, or the target tensor of image-to-image runs) or the model's prediction on each input. A
record without kept arrays, or an instance without a stored clean input or target tensor, is an
:class:`AnalysisError` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from proactiv.analysis.arrays import clean_inputs, kept_pairs, load_arrays
from proactiv.analysis.attribution_maps import METHODS, attribution_maps, baseline_for, last_conv_layer
from proactiv.analysis.runview import AnalysisError, RunView, open_view, q
from proactiv.analysis.steps import StepContext
from proactiv.losses import resolve_loss
from proactiv.store import Run

TARGETS = ("desired", "predicted")
INPUTS = ("x", "x_t", "x_proj")
#: record columns of each input's predicted class (classifier runs)
PREDICTIONS = {"x": "pred_clean", "x_t": "pred_t", "x_proj": "pred_proj"}


@dataclass
class Attributions:
    """Attribution maps of kept records: ``maps[name]`` and the attributed ``inputs[name]``, (N, *input) per
    input name (``x``, ``x_t``, ``x_proj``); ``targets[name]`` the class attributed toward (classifier runs)."""

    instance: np.ndarray
    point: np.ndarray
    maps: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    method: str = "saliency"
    target: str = "desired"
    layer: str | None = None

    def __len__(self) -> int:
        return len(self.instance)

    @property
    def names(self) -> list[str]:
        return list(self.maps)


def record_pairs(records) -> pd.DataFrame:
    """(instance, point) pairs from a DataFrame with those columns or a list of (instance, point)."""
    if isinstance(records, pd.DataFrame):
        missing = [c for c in ("instance", "point") if c not in records.columns]
        if missing:
            raise ValueError(f"records: the table has no columns {missing}; expected instance and point")
        frame = records[["instance", "point"]]
    else:
        rows = [tuple(r) for r in records]
        if any(len(r) != 2 for r in rows):
            raise ValueError("records: expected (instance, point) pairs")
        frame = pd.DataFrame(rows, columns=["instance", "point"])
    return frame.astype("int64").reset_index(drop=True)


def _view(run: Run | str | os.PathLike | RunView) -> RunView:
    return run if isinstance(run, RunView) else open_view(run)


def _record_rows(view: RunView, pairs: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The records of ``pairs`` (in their order) with ``columns``."""
    frame = pairs.assign(_order=np.arange(len(pairs)))
    cols = ", ".join(f"r.{q(c)}" for c in columns)
    with view.frames(_attr_pairs=frame):
        rows = view.query(
            f"SELECT p._order, {cols} FROM _attr_pairs p JOIN records r USING (instance, point) ORDER BY p._order"
        )
    if len(rows) != len(pairs):
        lost = [tuple(map(int, p)) for p in pairs.drop(index=rows._order)[["instance", "point"]].to_numpy()]
        raise AnalysisError(f"run {view.run.path} has no records (instance, point) {lost[:5]}")
    return rows


def _check(method: str, target: str, inputs: Sequence[str]) -> list[str]:
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {', '.join(METHODS)}")
    if target not in TARGETS:
        raise ValueError(f"target={target!r}: expected one of {', '.join(TARGETS)}")
    names = list(inputs)
    unknown = [n for n in names if n not in INPUTS]
    if unknown or not names:
        raise ValueError(f"inputs={names!r}: expected some of {list(INPUTS)}")
    return names


def kept_record_inputs(run: Run, pairs: pd.DataFrame, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The ``names`` inputs of each record of ``pairs``, in their order; an :class:`AnalysisError` names
    the records without kept arrays (and the instances without a stored clean input when x is asked)."""
    kept = load_arrays(run, instances=pairs.instance.unique(), points=pairs.point.unique())
    keys = [(int(i), int(p)) for i, p in zip(pairs.instance, pairs.point, strict=True)]
    found = (
        {}
        if kept is None
        else {(int(i), int(p)): k for k, (i, p) in enumerate(zip(kept.instance, kept.point, strict=True))}
    )
    missing = [key for key in keys if key not in found]
    if missing:
        keep = (run.config.get("arrays") or {}).get("keep")
        raise AnalysisError(
            f"run {run.path}: no arrays kept for (instance, point) {missing[:5]}"
            f"{' and more' if len(missing) > 5 else ''} (arrays.keep = {keep!r}); attributions need the kept xT "
            "and x̂T: pick kept records (proactiv.analysis.arrays.kept_pairs) or sweep with arrays.keep = 'all'"
        )
    rows = np.array([found[key] for key in keys], dtype=int)
    out = {n: getattr(kept, n)[rows] for n in names if n != "x"} if len(keys) else {}
    if "x" in names and len(keys):
        clean = clean_inputs(run, pairs.instance.unique())
        lost = sorted(set(pairs.instance.astype(int)) - set(clean))
        if lost:
            raise AnalysisError(
                f"run {run.path}: no clean input x stored for instances {lost[:5]}; attribute inputs=('x_t', 'x_proj')"
            )
        out["x"] = np.stack([clean[int(i)] for i in pairs.instance])
    return {n: np.asarray(out[n], dtype=np.float32) for n in names if n in out}


def explained_targets(
    view: RunView, pairs: pd.DataFrame, names: Sequence[str], target: str
) -> dict[str, np.ndarray]:
    """What each input is attributed toward: class indices per input name (classifiers: the desired class —
    the label, or the clean prediction of own-prediction runs — or the prediction on that input), or the target
    tensor under every name (tensor targets)."""
    run = view.run
    if run.schema.classifier:
        desired = run.schema.desired_column
        wanted = [PREDICTIONS[n] for n in names] if target == "predicted" else [desired]
        facts = _record_rows(view, pairs, list(dict.fromkeys(wanted)))
        return {n: facts[PREDICTIONS[n] if target == "predicted" else desired].to_numpy() for n in names}
    if target == "predicted":
        raise ValueError(
            f"target='predicted': run {run.path} has a tensor target (no predicted class); attributions there "
            "are toward the target tensor: use target='desired'"
        )
    if pairs.empty:
        return {n: np.zeros(0) for n in names}
    stored = clean_inputs(run, pairs.instance.unique(), key="y")
    lost = sorted(set(pairs.instance.astype(int)) - set(stored))
    if lost:
        raise AnalysisError(f"run {run.path}: no target tensor y stored for instances {lost[:5]}")
    y = np.stack([stored[int(i)] for i in pairs.instance]).astype(np.float32)
    return {n: y for n in names}


def iter_attributions(
    run: Run | str | os.PathLike | RunView,
    records=None,
    method: str = "saliency",
    target: str = "desired",
    inputs: Sequence[str] = INPUTS,
    layer: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    model: nn.Module | None = None,
) -> Iterator[Attributions]:
    """:func:`attribute`, ``batch_size`` records at a time (the maps of one batch in memory at a time)."""
    names = _check(method, target, inputs)
    view = _view(run)
    run, schema = view.run, view.run.schema
    pairs = kept_pairs(run) if records is None else record_pairs(records)
    goal = explained_targets(view, pairs, names, target)
    values = kept_record_inputs(run, pairs, names)
    model = model if model is not None else StepContext(run, device=device).model()
    kind = "label" if schema.classifier else "tensor"
    loss = "mse" if schema.classifier else run_loss(run)
    layer_name = last_conv_layer(model, layer)[0] if method == "gradcam" else None
    step = max(1, int(batch_size))
    for start in range(0, len(pairs), step):
        part = slice(start, start + step)
        maps = {}
        for n in names:
            xb = torch.from_numpy(values[n][part])
            try:
                maps[n] = (
                    attribution_maps(
                        model,
                        xb,
                        goal[n][part],
                        method,
                        layer_name,
                        kind,
                        loss=loss,
                        baseline=baseline_for(schema.input, xb),
                    )
                    .cpu()
                    .numpy()
                )
            except AnalysisError:
                raise
            except RuntimeError as err:  # e.g. a model that is not differentiable, or a shape it refuses
                raise AnalysisError(f"run {run.path}: {method} failed on the model ({err})") from err
        yield Attributions(
            pairs.instance.to_numpy()[part],
            pairs.point.to_numpy()[part],
            maps,
            {n: values[n][part] for n in names},
            {n: goal[n][part] for n in names} if schema.classifier else {},
            method,
            target,
            layer_name,
        )


def run_loss(run: Run):
    """The loss the run projected with (mse when it names none): attributions toward a target tensor use it."""
    name = (run.config.get("projection") or {}).get("loss") or "mse"
    try:
        return resolve_loss(name)
    except ValueError:
        raise AnalysisError(
            f"run {run.path}: its projection loss {name!r} cannot be rebuilt; attributions toward a target "
            "tensor use the run's loss"
        ) from None


def attribute(
    run: Run | str | os.PathLike | RunView,
    records=None,
    method: str = "saliency",
    target: str = "desired",
    inputs: Sequence[str] = INPUTS,
    layer: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    model: nn.Module | None = None,
) -> Attributions:
    """Attribution maps of kept records (default: every kept record; or a list of (instance, point), or a
    table with those columns) on their ``inputs`` (x, xT, x̂T), with ``method`` (see
    :mod:`proactiv.analysis.attribution_maps`) toward the ``target``: ``"desired"`` (where projection aimed: the
    label, the clean prediction of own-prediction runs, or the target tensor of image-to-image runs) or
    ``"predicted"`` (the model's prediction on each input: pred_clean, pred_t, pred_proj). ``layer`` names
    Grad-CAM's layer (default: the last convolution); ``model`` replaces the run's rebuilt model (e.g. one
    already on a device). A record without kept arrays is an :class:`AnalysisError` naming it."""
    parts = list(iter_attributions(run, records, method, target, inputs, layer, device, batch_size, model))
    if not parts:
        return Attributions(np.zeros(0, np.int64), np.zeros(0, np.int64), {}, {}, {}, method, target)
    first = parts[0]

    def joined(key: str) -> dict[str, np.ndarray]:
        return {n: np.concatenate([getattr(p, key)[n] for p in parts]) for n in getattr(first, key)}

    return Attributions(
        np.concatenate([p.instance for p in parts]),
        np.concatenate([p.point for p in parts]),
        joined("maps"),
        joined("inputs"),
        joined("targets"),
        method,
        target,
        first.layer,
    )
