"""Influential training examples (TracIn): the training examples that most support and most oppose a record's
prediction on xT and its desired class on x̂T (the one projection aimed at: the label, or the model's clean
prediction on own-prediction runs, as the run schema's ``desired`` says), and the training examples that are suspicious on their own
(self-influence: large for mislabelled or odd examples, which the model can fit only by memorising them).

TracIn (Pruthi et al. 2020) scores a training example z for a test example z' by Σ over saved checkpoints of
(learning rate × training length since the previous checkpoint) × ∇ℓ(z)·∇ℓ(z'): positive when the training
steps on z lowered the loss of z' (a proponent), negative when they raised it (an opponent); self-influence is
Σ weight × |∇ℓ(z)|². It is computed with Captum's ``TracInCPFast``: gradients of the cross-entropy in the model's
last fully-connected layer only, whose dot products factorise into (layer inputs · layer inputs) × (output
gradients · output gradients) — one forward pass per example and checkpoint, so the whole training set is
scored in seconds. ``TracInCP`` (every parameter) would cost a backward pass per training example and
checkpoint for each record, too slow to answer in the dashboard. ``TracInCPFast`` itself still passes over the
whole training set for every record (about 12 s for the 3 900 KWS clips on one core), so records are answered
by Captum's ``TracInCPFastRandProj`` without projection (exact: the same scores) when its stored per-example
vectors fit in :data:`MAX_VECTOR_BYTES` — one pass when the first record is asked, milliseconds per record
after that — and by ``TracInCPFast`` otherwise.

Checkpoints and the training set come from :mod:`proactiv.checkpoints`. Training examples enter as the run's
model sees them: their clean raw inputs through the run's frontend (:func:`proactiv.sweep.model_inputs`, no
transform), so the record's inputs (xT, x̂T) and the training examples are differentiated in the same model
input space (log-mel features of a feature-domain KWS run; waveforms through the model's own frontend in a
waveform-domain one). Scores are up to a constant factor (the training loss's 1 / batch size); the model is
in eval mode (no dropout, batch norm with its statistics at each checkpoint).
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.steps import StepContext, TableStep, register
from proactiv.checkpoints import CheckpointError, find_checkpoints, read_checkpoints
from proactiv.extras import require
from proactiv.store import Run, open_run

#: the record's inputs TracIn explains: xT toward its prediction, x̂T toward its desired class
ON = ("x_t", "x_proj")
#: how many suspicious training examples the report and the dashboard show
TOP = 20
#: training examples mapped into model inputs / scored per batch
BATCH = 256
#: the largest memory the exact per-example TracIn vectors (examples × checkpoints × layer inputs × outputs) may
#: take for fast repeated record queries; beyond it each record passes over the training set again
MAX_VECTOR_BYTES = 256 * 2**20


class _DotProducts:
    """Captum's ``NearestNeighbors`` interface (``setup``, ``get_nearest_neighbors``) as exact largest dot
    products with the stored vectors: its default needs the ``annoy`` package, and approximates; the training sets
    here are small enough to compare with every vector. (Not a subclass: importing Captum takes seconds, so it is
    imported only once checkpoints are found.)"""

    def setup(self, data: torch.Tensor) -> None:
        self.data = data.flatten(1)

    def get_nearest_neighbors(self, query: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        scores, indices = (query.flatten(1) @ self.data.T).topk(min(k, len(self.data)), dim=1)
        return indices, scores


def final_layer(model: nn.Module, probe: torch.Tensor, name: str | None = None) -> nn.Module:
    """The fully-connected layer (``nn.Linear``) whose output is the model's output up to a constant offset (a
    decision calibration, say: it leaves the loss's gradient with respect to the layer's output unchanged) —
    the last one in module order, or the module called ``name`` — checked on ``probe`` inputs (at least two);
    an :class:`AnalysisError` otherwise."""
    modules = dict(model.named_modules())
    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    if name is not None and name not in modules:
        raise AnalysisError(
            f"{type(model).__name__} has no layer {name!r}; its linear layers: {linears or 'none'}"
        )
    chosen = name if name is not None else (linears[-1] if linears else None)
    if chosen is None or not isinstance(modules[chosen], nn.Linear):
        raise AnalysisError(
            f"{type(model).__name__}: TracIn (fast) needs a last fully-connected layer (nn.Linear) giving the "
            f"model's output; {'no nn.Linear found' if chosen is None else f'{chosen!r} is not one'}"
        )
    seen = []
    hook = modules[chosen].register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        with torch.no_grad():
            out = model(probe)
    finally:
        hook.remove()
    offset = out - seen[-1] if seen and seen[-1].shape == out.shape else None
    if offset is None or not torch.allclose(offset, offset[:1].expand_as(offset), atol=1e-5):
        raise AnalysisError(
            f"{type(model).__name__}: the output of its layer {chosen!r} is not the model's output (something "
            "other than a constant offset follows it); name the last fully-connected layer with layer=..."
        )
    return modules[chosen]


class TracIn:
    """TracIn over one run's model: its checkpoints and its training set in the run's model input space,
    prepared once — reuse it for many records (:meth:`record`) and for :meth:`self_influence`.

    ``task`` is the run's rebuilt task (``StepContext.task()``: the model on its device); ``checkpoints`` a
    checkpoint folder (default: found from the run's model spec, see
    :func:`proactiv.checkpoints.find_checkpoints`); ``layer`` the name of the last fully-connected layer
    (default: the last ``nn.Linear``).
    """

    def __init__(
        self, run: Run, task, checkpoints: str | os.PathLike | None = None, layer: str | None = None
    ):
        from proactiv.sweep import model_inputs

        if not run.schema.classifier:
            raise AnalysisError(f"run {run.path} has no class labels; TracIn here explains class predictions")
        self.run, self.task = run, task
        try:
            self.checkpoints = find_checkpoints(task.model, run.schema.model, run.config, checkpoints)
            self.training = self.checkpoints.training_set()
        except CheckpointError as err:
            raise AnalysisError(str(err)) from err
        self.device = next(task.model.parameters()).device
        raw = self.training.raw()
        self.inputs = torch.cat([
            model_inputs(run.grid, task.frontend, raw[s : s + BATCH], range(s, min(len(raw), s + BATCH)), 0)
            for s in range(0, len(raw), BATCH)
        ]).float().to(self.device)  # fmt: skip
        self.labels = self.training.labels.long().to(self.device)
        self.model = copy.deepcopy(task.model).eval()
        for p in self.model.parameters():  # gradients are taken in the last layer only: no graph elsewhere
            p.requires_grad_(False)
        network = self.checkpoints.network_in(self.model)
        states = {str(c.file): (c.state_dict(), c.weight) for c in self.checkpoints.entries}

        def load(model: nn.Module, key: str) -> float:
            state, weight = states[key]
            network.load_state_dict(state)
            return weight

        self.layer = final_layer(self.model, self.inputs[:4], layer)
        # imported once checkpoints are found: it takes seconds
        TracInCPFast = require("captum.influence", "explain", "influential examples (TracIn)").TracInCPFast

        self._captum = dict(model=self.model, final_fc_layer=self.layer, checkpoints=list(states),
                            train_dataset=TensorDataset(self.inputs, self.labels), checkpoints_load_func=load,
                            loss_fn=nn.CrossEntropyLoss(reduction="sum"), batch_size=BATCH)  # fmt: skip
        self._tracin = TracInCPFast(**self._captum)
        self.vector_bytes = (
            len(self.labels) * len(states) * self.layer.in_features * self.layer.out_features * 4
        )
        self._lookup = None

    def scores(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """TracIn scores (len(x), training examples) of model inputs ``x`` toward class ``targets``."""
        if self.vector_bytes > MAX_VECTOR_BYTES:
            return self._tracin.influence((x, targets), k=None).detach().cpu()
        if self._lookup is None:
            TracInCPFastRandProj = require("captum.influence", "explain").TracInCPFastRandProj

            # (it warns that it keeps vectors in memory: their size was checked above)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self._lookup = TracInCPFastRandProj(**self._captum, nearest_neighbors=_DotProducts())
        return self._lookup.influence((x, targets), k=None).detach().cpu()

    # ---------------------------------------------------------------------------------------- records
    def _record_inputs(
        self, instance: int, point: int, on: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The record's inputs ``on`` in the model's input space and their targets (prediction on xT, the desired
        class that projection aimed x̂T at)."""
        from proactiv.sweep import model_inputs

        run = self.run
        rows = run.query(
            f"SELECT {run.schema.desired_column} AS desired, pred_t FROM records "
            f"WHERE instance = {int(instance)} AND point = {int(point)}"
        )
        if rows.empty:
            raise AnalysisError(f"run {run.path} has no record (instance {instance}, point {point})")
        row = rows.iloc[0]
        if run.has_arrays(instance, point):
            kept = run.arrays(instance, point)
        elif "x_proj" in on:
            raise AnalysisError(
                f"run {run.path}: no arrays kept for record (instance {instance}, point {point}) (arrays.keep = "
                f"{run.config.get('arrays', {}).get('keep')!r}), so its x̂T is unknown; ask for on=('x_t',)"
            )
        else:
            seed = int(run.config.get("seed", 0) or 0)
            x = model_inputs(run.grid, self.task.frontend, self.task.inputs[[int(instance)]], [int(instance)], seed,
                             point=int(point))  # fmt: skip
            kept = {"x_t": x[0].numpy()}
        targets = {"x_t": int(row.pred_t), "x_proj": int(row.desired)}
        x = torch.stack([torch.as_tensor(np.asarray(kept[k]), dtype=torch.float32) for k in on]).to(
            self.device
        )
        return x, torch.tensor([targets[k] for k in on], device=self.device)

    def record(self, instance: int, point: int, k: int = 10, on: Sequence[str] = ON) -> pd.DataFrame:
        """The ``k`` proponents and ``k`` opponents of one record's inputs ``on`` (``x_t``: toward its prediction
        on xT; ``x_proj``: toward the desired class on x̂T): one row each with ``on``, ``target`` (class index)
        and ``target_name``, ``role`` (proponent | opponent), ``rank`` (1 = strongest), ``train_index``, ``score``,
        the example's ``label``, ``label_name`` and metadata (``meta.*``, e.g. speaker, engine, word, path)."""
        on = _on(on)
        k = _positive(k, "k")
        x, targets = self._record_inputs(instance, point, on)
        scores = self.scores(x, targets)
        frames = []
        for j, name in enumerate(on):
            order = torch.argsort(scores[j], descending=True)
            for role, idx in (("proponent", order[:k]), ("opponent", order.flip(0)[:k])):
                frame = self._examples(idx.numpy(), scores[j][idx].numpy())
                frame.insert(0, "rank", np.arange(1, len(idx) + 1))
                frame.insert(0, "role", role)
                frame.insert(0, "target_name", self._name(int(targets[j])))
                frame.insert(0, "target", int(targets[j]))
                frame.insert(0, "on", name)
                frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        table.attrs["checkpoints"] = str(self.checkpoints.folder)
        return table

    # ---------------------------------------------------------------------------------------- self-influence
    def self_influence(self, progress: Callable[[float], None] | None = None) -> pd.DataFrame:
        """Every training example's self-influence, highest (most suspicious) first: ``rank``, ``train_index``,
        ``score``, its ``label`` / ``label_name``, the trained model's prediction ``pred`` / ``pred_name`` and
        whether they ``agree``, and its metadata (``meta.*``)."""
        n = len(self.labels)
        chunk = max(BATCH, -(-n // 10))
        scores = []
        for s in range(0, n, chunk):
            part = DataLoader(
                TensorDataset(self.inputs[s : s + chunk], self.labels[s : s + chunk]), batch_size=BATCH
            )
            scores.append(self._tracin.self_influence(part, outer_loop_by_checkpoints=True).detach().cpu())
            if progress:
                progress(min(1.0, (s + chunk) / n))
        score = torch.cat(scores).numpy()
        with torch.no_grad():
            pred = torch.cat(
                [self.task.model(self.inputs[s : s + BATCH]).argmax(1).cpu() for s in range(0, n, BATCH)]
            )
        order = np.argsort(-score, kind="stable")
        table = self._examples(order, score[order])
        table.insert(0, "rank", np.arange(1, n + 1))
        at = table.columns.get_loc("label_name") + 1
        table.insert(at, "pred", pred.numpy()[order])
        table.insert(at + 1, "pred_name", [self._name(p) for p in table["pred"]])
        table.insert(at + 2, "agree", table["pred"].to_numpy() == table["label"].to_numpy())
        table.attrs.update(checkpoints=str(self.checkpoints.folder), epochs=[c.epoch for c in self.checkpoints.entries],
                           bytes=self.checkpoints.bytes)  # fmt: skip
        return table

    # ---------------------------------------------------------------------------------------- helpers
    def _name(self, label: int) -> str:
        names = self.task.class_names or []
        return names[label] if 0 <= label < len(names) else str(label)

    def _examples(self, idx: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        labels = self.training.labels.numpy()[idx]
        frame = pd.DataFrame({"train_index": idx.astype(np.int64), "score": scores.astype(float), "label": labels,
                              "label_name": [self._name(int(y)) for y in labels]})  # fmt: skip
        meta = self.training.metadata.iloc[idx].reset_index(drop=True)
        for c in meta.columns:
            frame[f"meta.{c}"] = meta[c].to_numpy()
        return frame


def _on(on: Sequence[str]) -> list[str]:
    on = [on] if isinstance(on, str) else list(on)
    unknown = [o for o in on if o not in ON]
    if unknown or not on:
        raise ValueError(f"on={on!r}: expected some of {list(ON)}")
    return on


def _positive(k, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{what}={k!r}: expected a whole number ≥ 1")
    return int(k)


def _record(record) -> tuple[int, int]:
    try:
        instance, point = (int(v) for v in record)
    except (TypeError, ValueError):
        instance = point = -1
    if instance < 0 or point < 0:
        raise ValueError(f"record={record!r}: expected (instance, point), two whole numbers ≥ 0")
    return instance, point


def influence(
    run: Run | str | os.PathLike,
    record: tuple[int, int],
    k: int = 10,
    on: Sequence[str] = ON,
    checkpoints: str | os.PathLike | None = None,
    device: str = "auto",
) -> pd.DataFrame:
    """For one record ``(instance, point)`` of a classifier run, the ``k`` training examples that most support
    (proponents) and most oppose (opponents) its prediction on xT and its desired class on x̂T (see
    :meth:`TracIn.record` for the columns). ``checkpoints``: a checkpoint folder when the model's own are not
    found next to it (see :mod:`proactiv.checkpoints`)."""
    run = run if isinstance(run, Run) else open_run(run)
    instance, point = _record(record)
    on, k = _on(on), _positive(k, "k")  # checked before the model is rebuilt
    return TracIn(run, StepContext(run, device=device).task(), checkpoints).record(instance, point, k, on)


def self_influence(
    run: Run | str | os.PathLike, checkpoints: str | os.PathLike | None = None, device: str = "auto"
) -> pd.DataFrame:
    """Every training example of a classifier run's model ranked by self-influence, most suspicious
    (mislabelled or odd) first (see :meth:`TracIn.self_influence` for the columns)."""
    run = run if isinstance(run, Run) else open_run(run)
    return TracIn(run, StepContext(run, device=device).task(), checkpoints).self_influence()


def examples_source(table: pd.DataFrame):
    """The training set a stored influence table's ``train_index`` refers to (rebuilt from the checkpoint folder
    it records), or the reason it cannot be rebuilt."""
    folder = table.attrs.get("checkpoints")
    if not folder:
        return "this table does not say which checkpoints it came from"
    try:
        return read_checkpoints(folder).training_set()
    except CheckpointError as err:
        return str(err)


class SelfInfluenceStep(TableStep):
    """Training examples ranked by self-influence (:meth:`TracIn.self_influence`)."""

    name = "self_influence"
    title = "Suspicious training examples: TracIn self-influence"
    command = "self-influence"
    needs = frozenset({"model"})
    targets = frozenset({"label"})  # TracIn here explains class predictions
    settings = {"checkpoints": None, "layer": None}
    files = ("self_influence.parquet",)

    def compute(self, ctx, settings, progress):
        return TracIn(ctx.run, ctx.task(), settings["checkpoints"], settings["layer"]).self_influence(
            progress
        )

    def note(self, table):
        top = table.head(TOP)
        epochs = table.attrs.get("epochs") or []
        size = table.attrs.get("bytes")
        return (f"{len(table)} training examples scored over {len(epochs)} checkpoints (epochs "
                f"{', '.join(map(str, epochs))}{f'; {size / 1e6:.2g} MB' if size else ''}); of the top {len(top)}, "
                f"{int((~top.agree).sum())} carry a label the trained model does not predict")  # fmt: skip


register(SelfInfluenceStep())
