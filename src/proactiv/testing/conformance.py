"""The conformance suite every analysis step passes, built-in or plugged in (after scikit-learn's
``check_estimator``): ``check_step(step)`` computes the step on small real runs of each kind it says it supports
and checks that it round-trips, is deterministic, recomputes only when its inputs change, refuses an unknown
setting by name, is skipped with a reason (not a crash) on the kinds it does not support, and that its report
section and dashboard panel, when it has them, render.

The runs are real sweeps of tiny models trained here in a second (a vector, a waveform, a spectrogram and an
image classifier, each with training checkpoints for TracIn, and an image-to-image model), so steps that need
the model, the arrays or the checkpoints get them.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from proactiv.analysis.pipeline import analyze, default_settings, load_analysis, stale_steps
from proactiv.analysis.steps import Step, StepContext, get
from proactiv.checkpoints import CheckpointWriter
from proactiv.config import ArraysSpec, ExecutionSpec, UnitsSpec
from proactiv.optimize import Projector
from proactiv.store import Run, RunError, open_run
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid
from proactiv.transforms import get as transform

#: run kind → (input kind, target)
KINDS: dict[str, tuple[str, str]] = {
    "vector": ("vector", "label"),
    "waveform": ("waveform", "label"),
    "spectrogram": ("spectrogram", "label"),
    "image": ("image", "label"),
    "image_to_image": ("image", "tensor"),
}
#: instances per class of the conformance runs (three classes)
PER_CLASS = 6


class ConformanceError(AssertionError):
    """A step failed one of the conformance checks; the message names the step, the run kind and the check."""


@dataclass(frozen=True)
class ConformanceRun:
    """One run of the suite: its kind, the run, and the checkpoints of its model's training (None: none)."""

    kind: str
    run: Run
    checkpoints: Path | None

    @property
    def input(self) -> str:
        return KINDS[self.kind][0]

    @property
    def target(self) -> str:
        return KINDS[self.kind][1]


class Channel(nn.Module):
    """Adds the channel axis a convolution wants: (N, …) → (N, 1, …)."""

    def forward(self, x):
        return x.unsqueeze(1)


def _classifier(kind: str) -> nn.Module:
    if kind == "vector":
        return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    if kind == "waveform":
        conv, pool = nn.Conv1d(1, 4, 9, stride=4), nn.AdaptiveAvgPool1d(8)
        return nn.Sequential(Channel(), conv, nn.ReLU(), pool, nn.Flatten(), nn.Linear(32, 3))
    head = [] if kind == "image" else [Channel()]
    return nn.Sequential(*head, nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(64, 3))  # fmt: skip


def _inputs(kind: str, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of three classes a tiny model learns in a few dozen steps, and their labels."""
    y = torch.arange(3 * PER_CLASS) % 3
    n = len(y)
    if kind == "vector":
        return torch.eye(3, 8)[y] * 3 + torch.randn(n, 8, generator=gen), y
    if kind == "waveform":
        t = torch.arange(400) / 8000
        freq = torch.tensor([300.0, 900.0, 2000.0])[y]
        phase = torch.rand(n, 1, generator=gen) * 2 * math.pi
        return 0.5 * torch.sin(2 * math.pi * freq[:, None] * t + phase) + 0.05 * torch.randn(
            n, 400, generator=gen
        ), y
    if kind == "spectrogram":
        x = torch.randn(n, 16, 20, generator=gen) * 0.3 - 2
        for k in range(3):
            x[y == k, 5 * k : 5 * k + 4] += 3.0
        return x, y
    x = torch.rand(n, 1, 12, 12, generator=gen) * 0.3
    for k in range(3):
        x[y == k, 0, 4 * k : 4 * k + 4, 4:8] += 0.6
    return x.clamp(0, 1), y


def _train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, folder: Path | None, epochs: int = 40
) -> nn.Module:
    """Full-batch Adam; with ``folder``, checkpoints through the checkpoint API (what TracIn reads)."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    classifier = folder is not None
    writer = CheckpointWriter(folder, training=(x, y)) if classifier else None
    for epoch in range(1, epochs + 1):
        opt.zero_grad()
        out = model(x)
        loss = nn.functional.cross_entropy(out, y) if classifier else nn.functional.mse_loss(out, y)
        loss.backward()
        opt.step()
        if writer is not None:
            writer.epoch_done(epoch, epochs, model, 0.02)
    if writer is not None:
        writer.finish(model)
    return model.eval()


def _sweep_kind(kind: str, folder: Path) -> ConformanceRun:
    gen = torch.Generator().manual_seed(0)
    input_kind, target = KINDS[kind]
    grid = Grid(
        [transform("noise", snr_db=[math.inf, 10, -10]), transform("gain", gain_db=[0, -6])]
    )  # fails at -10 dB
    options = dict(
        arrays=ArraysSpec(keep="all"), units=UnitsSpec(instances=9), execution=ExecutionSpec(progress=False)
    )
    if target == "tensor":
        x, _ = _inputs("image", gen)
        model = nn.Conv2d(1, 1, 3, padding=1)
        with torch.no_grad():  # starts as the identity, so clean images pass and the noisiest fail
            model.weight.zero_()
            model.weight[0, 0, 1, 1] = 1.0
            model.bias.zero_()
        model = _train(model, x, x, None)
        meta = pd.DataFrame({"digit": np.arange(len(x)) % 3})
        projector = Projector(model, loss="mse", cutoff=1e-3, max_steps=60)
        data = TaskData(x, x.clone(), metadata=meta, pixel_range=1.0, input_kind=input_kind)
        run = sweep(model, data, grid, folder / kind, projection=projector, **options)
        return ConformanceRun(kind, run, None)
    x, y = _inputs(input_kind, gen)
    torch.manual_seed(0)
    checkpoints = folder / f"{kind}-checkpoints"
    model = _train(_classifier(input_kind), x, y, checkpoints)
    extra = (
        {"sample_rate": 8000}
        if input_kind == "waveform"
        else {"pixel_range": 1.0}
        if input_kind == "image"
        else {}
    )
    data = TaskData(x, y, class_names=["a", "b", "c"], input_kind=input_kind, **extra)
    run = sweep(model, data, grid, folder / kind, projection=Projector(model, max_steps=60), **options)
    return ConformanceRun(kind, run, checkpoints)


def conformance_runs(folder: str | os.PathLike, kinds=tuple(KINDS)) -> dict[str, ConformanceRun]:
    """One small real run per kind under ``folder`` (swept once; a later call reuses the complete ones)."""
    folder = Path(folder)
    out = {}
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"run kind {kind!r}: expected one of {', '.join(KINDS)}")
        try:
            run = open_run(folder / kind)
        except RunError:  # not swept yet
            run = None
        if run is not None and run.status == "complete":
            ckpt = folder / f"{kind}-checkpoints"
            out[kind] = ConformanceRun(kind, run, ckpt if ckpt.exists() else None)
        else:
            out[kind] = _sweep_kind(kind, folder)
    return out


def same(a: Any, b: Any, where: str = "result") -> None:
    """Raise :class:`ConformanceError` naming where ``a`` and ``b`` differ (tables, arrays, dataclasses, plain
    objects, mappings and sequences of them; floats to a relative 1e-6)."""
    try:
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False,
                                          check_exact=False, rtol=1e-6, atol=1e-9, check_categorical=False)  # fmt: skip
        elif isinstance(a, pd.Series):
            pd.testing.assert_series_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-6, atol=1e-9)
        elif isinstance(a, np.ndarray | torch.Tensor):
            np.testing.assert_allclose(
                np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-6, atol=1e-9
            )
        elif isinstance(a, Mapping):
            if set(a) != set(b):
                raise AssertionError(f"keys {sorted(map(str, a))} != {sorted(map(str, b))}")
            for k in a:
                same(a[k], b[k], f"{where}[{k!r}]")
        elif isinstance(a, list | tuple) and not isinstance(a, str):
            if len(a) != len(b):
                raise AssertionError(f"lengths {len(a)} != {len(b)}")
            for k, (x, y) in enumerate(zip(a, b, strict=True)):
                same(x, y, f"{where}[{k}]")
        elif is_dataclass(a):
            for f in fields(a):
                same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
        elif isinstance(a, float) and isinstance(b, float):
            if not (math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))):
                raise AssertionError(f"{a} != {b}")
        elif hasattr(a, "__dict__") and not isinstance(a, type):
            same(vars(a), vars(b), where)
        elif a != b:
            raise AssertionError(f"{a!r} != {b!r}")
    except ConformanceError:
        raise
    except AssertionError as err:
        raise ConformanceError(f"{where} differs: {err}") from None


def _other(value: Any) -> Any:
    """A setting value different from ``value`` (for the staleness check; never computed with)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "_changed"
    return {"changed": True} if value is None or isinstance(value, dict) else None


class _Checker:
    """The checks of one step on one run; each failure names the step, the run kind and what broke."""

    def __init__(self, step: Step, crun: ConformanceRun):
        self.step, self.crun, self.run = step, crun, crun.run
        settings = dict(step.settings)
        if "checkpoints" in settings and crun.checkpoints is not None:
            settings["checkpoints"] = str(crun.checkpoints)  # TracIn reads the checkpoints of the run's model
        self.settings = {step.name: settings}

    def fail(self, what: str) -> ConformanceError:
        return ConformanceError(f"step {self.step.name} on the {self.crun.kind} run: {what}")

    def analyze(self, **kw):
        # the embeddings run by PCA here (a flat setting): t-SNE on 18 points is slow and adds nothing to
        # what is checked (bookkeeping, round trip, determinism); the selftest judges t-SNE on planted groups
        return analyze(
            self.run, steps=[self.step.name], settings=self.settings, device="cpu", method="pca", **kw
        )

    def unsupported(self) -> str:
        result = self.analyze(force=True)
        if result[self.step.name] is not None:
            raise self.fail("computes on a kind it does not declare (add it to the step's inputs or targets)")
        if not result.notes.get(self.step.name):
            raise self.fail("not supported here, but skipped without a note saying why")
        return "skipped with a reason (kind not supported)"

    def supported(self) -> list[str]:
        name = self.step.name
        stored = self.analyze(force=True)  # what it reads, too; forced: a stored result may be another code's
        if stored[name] is None:
            raise self.fail(f"declares this kind but was skipped: {stored.notes.get(name)!r}")
        again = self.compute()
        with tempfile.TemporaryDirectory() as tmp:
            self.step.save(again, Path(tmp))
            self.same(again, self.step.load(Path(tmp)), "computed vs loaded")
        # the round trip holds, so the stored result stands for the first computation
        self.same(self._steady(stored[name]), self._steady(again), "computed twice")
        if name in stale_steps(self.run, self._with_defaults()) or name in self.analyze().computed:
            raise self.fail("recomputed although nothing changed")
        checks = ["computes", "round-trips", "deterministic", "up to date when nothing changed"]
        checks += self._stale_on_change()
        try:
            analyze(self.run, steps=[name], settings={name: {"no_such_setting": 1}}, device="cpu")
        except ValueError as err:
            if "no_such_setting" not in str(err):
                raise self.fail(f"an unknown setting is refused without naming it: {err}") from None
        else:
            raise self.fail("an unknown setting was accepted")
        return [*checks, "refuses an unknown setting by name"]

    def compute(self) -> Any:
        """The step's result computed afresh (not read back), from the stored results of the steps it reads."""
        ctx = StepContext(self.run, results=load_analysis(self.run).results, device="cpu")
        return self.step.compute(ctx, self._with_defaults()[self.step.name], lambda fraction: None)

    def same(self, a: Any, b: Any, what: str) -> None:
        try:
            same(a, b, what)
        except ConformanceError as err:
            raise self.fail(str(err)) from None

    def _steady(self, result: Any) -> Any:
        """``result`` without the columns the step declares volatile (time spent)."""
        drop = [c for c in self.step.volatile if isinstance(result, pd.DataFrame) and c in result]
        return result.drop(columns=drop) if drop else result

    def _with_defaults(self) -> dict:
        return default_settings(self.settings, method="pca")

    def _stale_on_change(self) -> list[str]:
        name, step = self.step.name, self.step
        out = []
        step.version += 1
        try:
            if name not in stale_steps(self.run, self._with_defaults()):
                raise self.fail("not stale after its version changed")
        finally:
            step.version -= 1
        out.append("stale when its version changes")
        if self.settings[name]:
            key = next(iter(self.settings[name]))
            changed = self._with_defaults()
            changed[name] = {**changed[name], key: _other(changed[name][key])}
            if name not in stale_steps(self.run, changed):
                raise self.fail(f"not stale after its setting {key!r} changed")
            out.append("stale when a setting changes")
        shard = self.run.shard_files()[0]
        stat = shard.stat()
        os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        try:
            if name not in stale_steps(self.run, self._with_defaults()):
                raise self.fail("not stale after its records changed")
        finally:
            os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return [*out, "stale when the records change"]

    def presentation(self) -> list[str]:
        """Its report sections and dashboard panels render from the stored result."""
        from proactiv.dashboard.data import open_runs
        from proactiv.dashboard.panels.registry import PanelContext, registered_panels
        from proactiv.views.sections import SectionContext, sections_of

        out = []
        ctx = SectionContext(self.run)
        for section in sections_of(self.step.name):
            if section.step == self.step.name and not (section.html(ctx) or "").startswith("<h2>"):
                raise self.fail(f"its report section {section.key!r} drew nothing")
            out.append(f"report section {section.key!r} renders")
        pctx = PanelContext(tuple(open_runs([self.run.path], compute=False)))
        for panel in registered_panels():
            if panel.step == self.step.name:
                if panel.layout(pctx.of(panel)) is None:
                    raise self.fail(f"its dashboard panel {panel.name!r} drew nothing")
                out.append(f"dashboard panel {panel.name!r} renders")
        return out


def proven_by(step: Step) -> str:
    """The selftest cases that plant a fault for ``step`` and judge whether it finds it; a step without one is
    not proven (:class:`ConformanceError`)."""
    from proactiv.selftest import proven_views

    cases = proven_views().get(step.name)
    if not cases:
        raise ConformanceError(
            f"step {step.name}: no selftest case plants a fault for it; register one with "
            "proactiv.selftest.register_plant (a Plant whose checks name the step)"
        )
    return f"proven by selftest case {', '.join(cases)}"


def check_step(
    step: Step | str,
    runs: Mapping[str, ConformanceRun] | None = None,
    folder: str | os.PathLike | None = None,
    selftest: bool = True,
) -> dict[str, list[str]]:
    """Run the conformance checks of ``step`` on ``runs`` (default: :func:`conformance_runs` in ``folder``, or
    a temporary folder); returns, per run kind, the checks that passed (and under ``"selftest"`` the case that
    proves it, unless ``selftest=False``), and raises :class:`ConformanceError` naming the first that failed."""
    step = get(step) if isinstance(step, str) else step
    if runs is None:
        if folder is None:
            with tempfile.TemporaryDirectory() as tmp:
                return check_step(step, conformance_runs(tmp), selftest=selftest)
        runs = conformance_runs(folder)
    supported = [k for k, r in runs.items() if r.input in step.inputs and r.target in step.targets]
    if not supported:  # only skips would be seen: no verdict from nothing checked
        raise ConformanceError(
            f"step {step.name} supports none of the run kinds checked ({', '.join(runs)}): nothing was computed"
        )
    done = {"selftest": [proven_by(step)]} if selftest else {}
    for kind, crun in runs.items():
        checker = _Checker(step, crun)
        if crun.input not in step.inputs or crun.target not in step.targets:
            done[kind] = [checker.unsupported()]
            continue
        done[kind] = checker.supported() + checker.presentation()
    return done
