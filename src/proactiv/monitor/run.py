"""``pv.monitor``: run a model over a stream, evaluate assertions and corrections step by step, store it all."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from proactiv.device import resolve_device
from proactiv.fingerprint import model_hash
from proactiv.monitor.assertions import (
    Alternation,
    Assertion,
    Consistency,
    Copy,
    EnergyFloor,
    Flicker,
    Recent,
    Refractory,
    resolve_classes,
)
from proactiv.monitor.corrections import Correction
from proactiv.monitor.store import MonitorError, MonitorStore, MonitorWriter
from proactiv.monitor.streams import InputStream, WaveStream
from proactiv.progress import progress_bar

#: the per-step arrays a :class:`~proactiv.monitor.assertions.Recent` is cut from
_HISTORY = ("step", "start_s", "end_s", "decision", "confidence", "energy_db")


def default_assertions(events: Sequence[str | int] | None = None) -> list[Assertion]:
    """Every built-in assertion with its defaults, watching the ``events`` classes (None: all)."""
    return [Flicker(classes=events), Alternation(classes=events), Refractory(classes=events),
            Consistency(classes=events), EnergyFloor(classes=events)]  # fmt: skip


def _copies(parts: Sequence[Assertion | Correction]) -> list[Copy]:
    """The transformed copies the assertions and corrections need, each once (by name), in order."""
    found: dict[str, Copy] = {}
    for part in parts:
        for c in part.copies:
            if found.setdefault(c.name, c).spec() != c.spec():
                raise ValueError(f"two different copies are named {c.name!r}; give one of them another name")
    return list(found.values())


def _names(parts: Sequence[Assertion | Correction], what: str) -> None:
    names = [p.name for p in parts]
    for p in parts:
        if not isinstance(p.name, str) or not p.name:
            raise ValueError(f"{what} {p!r} has no name")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} names {names}: each must be unique (they name the store's columns)")


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` (in eval mode) whose convolutions followed by a batch norm in a ``Sequential`` are
    folded into one convolution: the same function up to float rounding (the demo model's logits move by
    ~2e-6) in fewer passes over memory; a monitor runs the model on every window of an hour, and on the demo
    model this saves about a third of the time."""
    if isinstance(model, torch.jit.ScriptModule):  # compiled: its layers are not ours to rearrange
        return model
    folded = copy.deepcopy(model).eval()

    def fold(module: torch.nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, torch.nn.Sequential):
                layers, kept = list(child), []
                while layers:
                    layer = layers.pop(0)
                    conv = isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d)
                    norm = layers and isinstance(layers[0], torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)
                    norm = norm and layers[0].running_mean is not None  # no running statistics: kept
                    kept.append(fuse_conv_bn_eval(layer, layers.pop(0)) if conv and norm else layer)
                child = torch.nn.Sequential(*kept)
                setattr(module, name, child)
            fold(child)

    fold(folded)
    return folded


@torch.no_grad()
def _logits(model, frontend, x: torch.Tensor, device, batch: int) -> torch.Tensor:
    out = []
    for i in range(0, len(x), batch):
        part = x[i : i + batch].to(device)
        out.append(model(frontend(part) if frontend is not None else part).float().cpu())
    return torch.cat(out)


def monitor(
    model: torch.nn.Module,
    stream: WaveStream | InputStream,
    assertions: Sequence[Assertion] | None = None,
    corrections: Sequence[Correction] = (),
    *,
    out: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    frontend=None,
    events: Sequence[str | int] | None = None,
    seed: int = 0,
    chunk: int = 512,
    batch: int = 256,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    fold: bool = True,
) -> MonitorStore:
    """Run ``model`` over ``stream`` and store, per step, its outputs, every assertion's severity and every
    correction's decision (see :mod:`proactiv.monitor.store`).

    Parameters
    ----------
    model : a classifier returning logits (steps, classes) for a batch of inputs (after ``frontend``, if any).
    stream : a :class:`WaveStream` (windows of a long waveform) or :class:`InputStream` (any iterable).
    assertions : what to check at every step; None: every built-in one watching ``events``.
    corrections : corrective actions; each is recorded alone on the raw decisions (``c.<name>``) and all of
        them in order (``corrected``).
    out : the store's folder; ``resume=True`` continues a store an earlier call left unfinished. The store keeps
        a copy of the model and frontend, so a window can be swept later (:func:`~proactiv.monitor.window_run`).
    class_names : the model's classes (default: ``model.class_names``, else their indices).
    events : the classes whose beginnings are firings (e.g. keywords; None: every class).
    seed : seeds the draws of random copies, by (seed, step, copy).
    chunk : steps per stored chunk (the unit a resumed monitor keeps); batch: inputs per forward pass.
    fold : run a copy of the model with its convolution + batch-norm pairs folded (:func:`fold_batchnorm`).

    Returns
    -------
    The :class:`MonitorStore`, also readable later with ``pv.open_monitor(out)``.

    Examples
    --------
    >>> import tempfile, torch, proactiv as pv
    >>> from proactiv.monitor import Flicker, WaveStream
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1600, 3))
    >>> stream = WaveStream(torch.randn(16000 * 3) * 0.1, 16000, window_s=0.1, hop_s=0.1)
    >>> store = pv.monitor(net, stream, [Flicker()], out=tempfile.mkdtemp(), progress=False)
    >>> store.summary()["assertions"]["flicker"]["violations"] >= 0
    True
    """
    device = resolve_device(device)
    model = model.to(device).eval()
    fingerprint, kept = model_hash(model), model
    if fold:
        model = fold_batchnorm(model)
    if frontend is not None and isinstance(frontend, torch.nn.Module):
        frontend = frontend.to(device)
    names = list(class_names or getattr(model, "class_names", None) or [])
    assertions = default_assertions(events) if assertions is None else list(assertions)
    corrections = list(corrections)
    _names(assertions, "assertion")
    _names(corrections, "correction")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk = {chunk!r}: expected a positive number of steps")
    copies = _copies([*assertions, *corrections])
    hop = float(stream.hop_s)

    def first_logits(x):  # the class count, when no names were given, comes from the first outputs
        return _logits(model, frontend, x, device, batch)

    runner = _Runner(assertions, corrections, copies, hop, seed)
    config = {
        "stream": stream.describe(), "model": {"type": type(model).__name__, "fingerprint": fingerprint, "folded": fold},
        "class_names": names, "events": None if events is None else [str(e) for e in events],
        "assertions": [a.spec() for a in assertions], "corrections": [c.spec() for c in corrections],
        "copies": [c.spec() for c in copies], "chunk": chunk, "seed": seed,
    }  # fmt: skip
    if not names:
        probe = next(stream.chunks(0, 1)).inputs
        names = [str(i) for i in range(first_logits(probe).shape[1])]
        config["class_names"] = names
    if events is not None:
        config["events"] = [names[i] for i in sorted(resolve_classes(events, names))]
    runner.bind(names)
    writer = MonitorWriter(out, config, resume)
    status = "interrupted"
    try:
        if isinstance(stream, WaveStream) and stream.source is None:
            writer.keep_audio(stream.wave.numpy())
        writer.keep_model(kept, frontend)
        runner.restore(writer)
        total = len(stream) if getattr(stream, "length", None) is not None else None
        with progress_bar("windows", progress) as bar:
            task = bar.add_task("monitoring", total=total, completed=writer.done * chunk)
            for part in stream.chunks(writer.done * chunk, chunk):
                x = part.inputs
                logits = [first_logits(x)]
                for k, c in enumerate(copies):
                    logits.append(first_logits(c.apply(x, part.steps, seed, k)))
                if logits[0].shape[1] != len(names):
                    raise ValueError(
                        f"the model gives {logits[0].shape[1]} outputs per input, for {len(names)} class names"
                    )
                energy = 10 * torch.log10(x.float().pow(2).flatten(1).mean(1) + 1e-12)
                rows = runner.step_chunk(part, logits, energy.numpy())
                writer.write_chunk(writer.done, rows, runner.memory())
                bar.update(task, advance=len(part.steps))
        status = "complete"
    finally:
        writer.finish(status, steps=int(runner.count))
    return MonitorStore(out)


class _Runner:
    """Steps through chunks: keeps the history the assertions read and the corrections' memory."""

    def __init__(self, assertions, corrections, copies, hop_s: float, seed: int):
        self.assertions, self.copies, self.hop_s = assertions, copies, hop_s
        self.alone = [copy.deepcopy(c) for c in corrections]
        self.chain = [copy.deepcopy(c) for c in corrections]
        self.depth = max([a.steps_back(hop_s) for a in assertions] + [1])
        self.count = 0

    def bind(self, names: list[str]) -> None:
        self.names = tuple(names)
        self.copy_names = tuple(c.name for c in self.copies)
        for a in self.assertions:
            a.bind(names)
        for c in [*self.alone, *self.chain]:
            c.bind(names, self.hop_s, self.copy_names)
        self.history = pd.DataFrame({c: pd.Series(dtype=float) for c in self.columns()})

    def columns(self) -> list[str]:
        return [*_HISTORY, *self._posterior_columns(), *self._copy_columns()]

    def _posterior_columns(self) -> list[str]:
        return [f"p.{n}" for n in self.names]

    def _copy_columns(self) -> list[str]:
        return [f"copy.{c}" for c in self.copy_names]

    def restore(self, writer: MonitorWriter) -> None:
        """Continue after the store's whole chunks: their last steps as history, the corrections' memory."""
        if writer.done == 0:
            return
        self.history = writer.tail(self.columns(), self.depth)
        memory = writer.memory()
        for group, parts in (("alone", self.alone), ("chain", self.chain)):
            for c in parts:
                c.restore(memory[group][c.name])
        self.count = int(self.history["step"].iloc[-1]) + 1

    def memory(self) -> dict:
        return {
            "alone": {c.name: c.state() for c in self.alone},
            "chain": {c.name: c.state() for c in self.chain},
        }

    def step_chunk(self, part, logits: list[torch.Tensor], energy: np.ndarray) -> pd.DataFrame:
        for k, out in enumerate(logits):  # a NaN output would be decided as class 0, silently
            bad = ~torch.isfinite(out).all(1)
            if bad.any():
                step, what = int(part.steps[int(bad.nonzero()[0, 0])]), "the model" if k == 0 else f"copy {k}"
                raise MonitorError(
                    f"step {step}: {what} returned a non-finite output (NaN or Inf); nothing stored"
                )
        probs = torch.softmax(logits[0], 1).numpy()
        decision = probs.argmax(1)
        copies = np.stack(
            [lg.argmax(1).numpy() for lg in logits[1:]] or [np.zeros(len(decision), np.int64)], 1
        )
        copies = copies[:, : len(self.copies)]
        columns = {"step": part.steps, "start_s": part.start_s, "end_s": part.end_s, "decision": decision,
                   "confidence": probs.max(1), "energy_db": energy}  # fmt: skip
        columns.update(zip(self._posterior_columns(), probs.T, strict=True))
        columns.update(zip(self._copy_columns(), copies.T, strict=True))
        rows = pd.DataFrame(columns)
        seen = pd.concat([self.history, rows], ignore_index=True) if len(self.history) else rows
        arrays = [seen[k].to_numpy() for k in _HISTORY]
        arrays[3] = arrays[3].astype(np.int64)
        post = seen[self._posterior_columns()].to_numpy(np.float32)
        seen_copies = seen[self._copy_columns()].to_numpy(np.int64)
        offset = len(self.history)
        severity = {a.name: np.zeros(len(decision), dtype=np.float32) for a in self.assertions}
        alone = {c.name: np.zeros(len(decision), dtype=np.int64) for c in self.alone}
        chained = np.zeros(len(decision), dtype=np.int64)
        for j in range(len(decision)):
            end = offset + j + 1
            for a in self.assertions:
                lo = max(0, end - a.steps_back(self.hop_s))
                step, start, stop, dec, conf, energy_db = (x[lo:end] for x in arrays)
                recent = Recent(step, start, stop, dec, conf, post[lo:end], energy_db, seen_copies[lo:end],
                                self.copy_names, self.names, self.hop_s)  # fmt: skip
                severity[a.name][j] = a.check(recent)
            d = int(decision[j])
            for c in self.alone:
                alone[c.name][j] = c.correct(d, copies[j])
            for c in self.chain:
                d = c.correct(d, copies[j])
            chained[j] = d
        extra = {f"a.{k}": v for k, v in severity.items()} | {f"c.{k}": v for k, v in alone.items()}
        if self.chain:
            extra["corrected"] = chained
        self.history = seen.tail(self.depth).reset_index(drop=True)
        self.count = int(part.steps[-1]) + 1
        return pd.concat([rows, pd.DataFrame(extra, index=rows.index)], axis=1)
