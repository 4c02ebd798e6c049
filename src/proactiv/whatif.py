"""The what-if studio: one instance of a run under any transform parameter values, on the spot — its transformed
input xT, the model's output f(xT) and, when the input can be heard, its audio; on request its projection x̂T,
the change x̂T − xT, f(x̂T) and the attributions of xT and x̂T toward the desired output.

Everything is rebuilt from the run alone (its task, grid, seed and projection settings) and follows the sweep's
own path (:func:`proactiv.sweep.model_inputs`): at a grid point xT is the sweep's xT, draw for draw; between
grid points the values seed the draws (:meth:`proactiv.transforms.Grid.apply_values`), so the same values give
the same xT every time. No Dash here: the dashboard's what-if tab, notebooks and benchmarks share it.

    studio = Studio("runs/kws-demo")
    seen = studio.transform(3, {"audio_noise.snr_db": 7.5, "speed.factor": 1.1})
    seen.prediction, seen.output, seen.audio
    moved = studio.project(3, {"audio_noise.snr_db": 7.5})
    moved.x_proj, moved.diff, moved.converged, moved.attributions
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
import torch

from proactiv.analysis.runview import AnalysisError
from proactiv.device import resolve_device
from proactiv.metrics import labels_right
from proactiv.model_copy import load_copy
from proactiv.optimize import Projector
from proactiv.store import Run, RunError, open_run
from proactiv.sweep import model_inputs, run_scale

#: Projector arguments stored as lists in run.json that it takes as tuples
_TUPLES = ("clamp", "betas")


@dataclass(frozen=True)
class Parameter:
    """One grid parameter as a what-if control: its record column, unit, continuous valid range, identity value
    (may lie outside the range, e.g. a clean SNR of +∞) and the values the grid swept (sorted)."""

    column: str
    unit: str
    low: float
    high: float
    identity: float
    grid_values: tuple[float, ...]


@dataclass
class Transformed:
    """One instance at some parameter values: the clean model input ``x``, ``x_t`` = xT, the outputs f(x) and
    f(xT) as shown (class probabilities for classifiers, the output tensor otherwise), the desired output (a
    class index, or the target tensor), the loss on xT, and the audio of xT when the input can be heard."""

    instance: int
    values: dict[str, float]
    point: int | None  # the grid point these values are, None between grid points
    x: np.ndarray
    x_t: np.ndarray
    output_clean: np.ndarray
    output: np.ndarray
    desired: int | np.ndarray
    prediction: int | None  # the class predicted on xT (None for tensor targets)
    loss: float
    #: right on xT by the run's rule: the loss below the projection cutoff, or (multi-label) every label decided
    #: right; None: the run has no cutoff
    within_cutoff: bool | None
    audio: np.ndarray | None = None
    sample_rate: int | None = None
    audio_note: str = ""


@dataclass
class Projected:
    """The projection of one transformed input: ``x_proj`` = x̂T, f(x̂T) as shown, the loss on x̂T, the steps it
    took, whether it converged and why it ended (``status``, :data:`proactiv.schema.STATUSES`), and saliency
    attributions of xT and x̂T toward the desired output."""

    before: Transformed
    x_proj: np.ndarray
    output: np.ndarray
    prediction: int | None  # the class predicted on x̂T (None for tensor targets)
    loss: float
    steps: int
    converged: bool
    attributions_t: np.ndarray
    attributions: np.ndarray
    status: str = ""

    @property
    def diff(self) -> np.ndarray:
        """x̂T − xT: how the transformed input had to change."""
        return self.x_proj - self.before.x_t


def _projector(run: Run, model: torch.nn.Module, device: torch.device) -> Projector:
    """The projection settings the run recorded, as a projector over ``model``."""
    settings = dict(run.config.get("projection") or {})
    for key in _TUPLES:
        if settings.get(key) is not None:
            settings[key] = tuple(settings[key])
    try:
        return Projector(model, device=device, **settings)
    except TypeError as err:
        raise ValueError(f"projection settings {settings}: {err}") from None


class Studio:
    """What-if computations over one run: the model, raw inputs, grid and projection settings rebuilt once.

    Calls are serialised (a lock): the dashboard serves from several threads and projection freezes the shared
    model while it runs.
    """

    def __init__(self, run: Run | str | os.PathLike, device: str | torch.device = "auto"):
        self.run = run if isinstance(run, Run) else open_run(run)
        self.device = resolve_device(device)
        try:
            task = load_copy(self.run, self.run.task)
            self.model = task.model.to(self.device).eval()
            self.projector = _projector(self.run, self.model, self.device)
        except (RunError, ValueError, OSError, KeyError) as err:
            raise AnalysisError(
                f"what-if studio: cannot rebuild the task of run {self.run.path}: {err}"
            ) from err
        self.task = task
        #: the step scale of constant inputs, as the sweep sized them
        self.scale = run_scale(task.inputs, task.frontend)
        self.schema = self.run.schema
        self.grid = self.run.grid
        self.seed = int(self.run.config.get("seed", 0) or 0)
        self.classifier = self.schema.classifier
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ what it has
    @property
    def n_instances(self) -> int:
        return int(self.task.inputs.shape[0])

    def parameters(self) -> list[Parameter]:
        """Every grid parameter with its valid range and identity value (from the transform registry)."""
        return [
            Parameter(
                t.column,
                t.param.unit,
                float(t.param.low),
                float(t.param.high),
                float(t.param.identity),
                tuple(sorted(float(v) for v in t.values)),
            )
            for t in self.grid.transforms
        ]

    def describe(self, instance: int) -> str:
        """An instance for a picker: ``#3 · yes`` (its class), or its group (e.g. ``#3 · digit 7``)."""
        i = self._instance(instance)
        names = self.task.class_names or []
        if self.classifier:
            label = int(self.task.labels[i])
            return f"#{i} · {names[label] if label < len(names) else label}"
        column = (self.schema.group_column or "").removeprefix("meta.")
        meta = self.task.metadata
        if meta is not None and column in meta.columns:
            return f"#{i} · {column} {meta[column].iloc[i]}"
        return f"#{i}"

    # ------------------------------------------------------------------------------------------ checks
    def _instance(self, instance) -> int:
        if isinstance(instance, bool) or not isinstance(instance, (int, np.integer)):
            raise ValueError(f"instance {instance!r}: expected an integer instance id")
        if not 0 <= int(instance) < self.n_instances:
            raise ValueError(
                f"instance {instance}: run {self.run.path} has instances 0 to {self.n_instances - 1}"
            )
        return int(instance)

    def values(self, values: dict[str, float] | None) -> dict[str, float]:
        """``values`` completed with the identity of every column left out, each checked against its range."""
        values = dict(values or {})
        unknown = sorted(set(values) - set(self.grid.columns))
        if unknown:
            raise ValueError(
                f"parameter {unknown[0]!r}: not a grid column of this run ({', '.join(self.grid.columns)})"
            )
        out = {}
        for t in self.grid.transforms:
            value = values.get(t.column, t.param.identity)
            t.check_value(value)  # names the column, the value and the valid range
            out[t.column] = float(value)
        return out

    def point(self, values: dict[str, float]) -> int | None:
        """The grid point whose values these are, or None between grid points."""
        return next((p.id for p in self.grid if p.values == values), None)

    # ------------------------------------------------------------------------------------------ verbs
    def transform(self, instance: int, values: dict[str, float] | None = None) -> Transformed:
        """xT and f(xT) of ``instance`` at parameter ``values`` (column → value; columns left out stay at their
        identity; any value in a parameter's range, on the grid or between its values)."""
        i, values = self._instance(instance), self.values(values)
        with self._lock:
            return self._transform(i, values)

    def project(self, instance: int, values: dict[str, float] | None = None) -> Projected:
        """The projection of ``instance`` at ``values`` toward its desired output, with the run's projection
        settings, and the saliency attributions of xT and x̂T."""
        from proactiv.analysis.attribution import attribution_maps  # loaded when a projection asks

        i, values = self._instance(instance), self.values(values)
        with self._lock:
            seen = self._transform(i, values)
            x_t = torch.from_numpy(seen.x_t)[None]
            clean = torch.from_numpy(seen.x)[None]
            targets = clean if self.projector.loss == "own_prediction" else self.task.labels[i : i + 1]
            result = self.projector.project(x_t, targets, scale=self.scale)
            both = torch.cat([x_t, result.inputs]).to(self.device)
            goal = torch.as_tensor(np.stack([seen.desired] * 2))
            kind = "label" if self.classifier else "tensor"  # a tensor target's score: minus the run's loss
            maps = attribution_maps(self.model, both, goal, method="saliency", layer=None, target_kind=kind,
                                    loss=self.projector.loss)  # fmt: skip
        maps = maps.detach().cpu().numpy()
        output = self._shown(result.outputs_after)[0]
        return Projected(
            seen,
            result.inputs[0].numpy(),
            output,
            int(output.argmax()) if self.classifier else None,
            float(result.loss_after[0]),
            int(result.steps[0]),
            bool(result.converged[0]),
            maps[0],
            maps[1],
            str(result.statuses[0]),
        )

    def outcomes(
        self, instance: int, values: list[dict[str, float]], batch: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """Whether the model is right on ``instance`` at each of many parameter ``values`` (the same xT as
        :meth:`transform` gives, draw for draw), and how sure: the probability of the desired class for
        classifiers, else 1 where the output is right by the run's rule (loss under the cutoff; multi-label:
        every label decided right). The transforms run one values dict at a
        time (each seeds its own draws); the model sees them ``batch`` at a time."""
        i = self._instance(instance)
        values = [self.values(v) for v in values]
        raw = self.task.inputs[i : i + 1]
        frontend = self.task.frontend
        right, score = np.zeros(len(values), bool), np.zeros(len(values))
        with self._lock, torch.no_grad():
            clean = self.model(model_inputs(self.grid, frontend, raw, [i], self.seed).to(self.device))
            own = self.classifier and self.schema.desired == "clean_prediction"
            desired = int(clean[0].argmax()) if own else None
            for start in range(0, len(values), batch):
                chunk = values[start : start + batch]
                x_t = torch.cat(
                    [model_inputs(self.grid, frontend, raw, [i], self.seed, values=v) for v in chunk]
                )
                logits = self.model(x_t.to(self.device)).float().cpu()
                rows = slice(start, start + len(chunk))
                if self.classifier:
                    goal = desired if own else int(self.task.labels[i])
                    right[rows] = (logits.argmax(1) == goal).numpy()
                    score[rows] = logits.softmax(1)[:, goal].numpy()
                else:
                    target = (
                        self.task.labels[i : i + 1].float().expand(len(chunk), *self.task.labels.shape[1:])
                    )
                    decided = self._right(logits, target, self.projector.loss_fn(logits, target))
                    if decided is None:
                        raise AnalysisError(
                            f"run {self.run.path}: tensor targets and no cutoff, so no outcome"
                        )
                    right[rows] = decided.numpy()
                    score[rows] = right[rows]
        return right, score

    # ------------------------------------------------------------------------------------------ inside
    def _shown(self, outputs: torch.Tensor) -> np.ndarray:
        """Model outputs as people read them: class probabilities for classifiers, the output tensor else."""
        outputs = outputs.detach().float().cpu()
        return (outputs.softmax(1) if self.classifier else outputs).numpy()

    def _transform(self, i: int, values: dict[str, float]) -> Transformed:
        raw = self.task.inputs[i : i + 1]
        frontend = self.task.frontend
        x = model_inputs(self.grid, frontend, raw, [i], self.seed)
        x_t = model_inputs(self.grid, frontend, raw, [i], self.seed, values=values)
        with torch.no_grad():
            logits = self.model(torch.cat([x, x_t]).to(self.device)).float().cpu()
        if self.classifier:
            own = self.schema.desired == "clean_prediction"  # the desired class is the one predicted on x
            desired = int(logits[0].argmax()) if own else int(self.task.labels[i])
            target = torch.tensor([desired])
        else:
            target = self.task.labels[i : i + 1].float()
            desired = target[0].numpy()
        losses = self.projector.loss_fn(logits[1:], target)
        decided = self._right(logits[1:], target, losses)
        loss = float(losses[0])
        audio, note = self._audio(raw, i, values, x_t)
        shown = self._shown(logits)
        return Transformed(
            i,
            values,
            self.point(values),
            x[0].numpy(),
            x_t[0].numpy(),
            shown[0],
            shown[1],
            desired,
            int(shown[1].argmax()) if self.classifier else None,
            loss,
            None if decided is None else bool(decided[0]),
            audio,
            self.schema.input.sample_rate if audio is not None else None,
            note,
        )

    def _right(
        self, outputs: torch.Tensor, targets: torch.Tensor, losses: torch.Tensor
    ) -> torch.Tensor | None:
        """Whether tensor-target outputs are right by the run's rule: every label decided right (multi-label
        logits), else the loss below the projection cutoff; None without a cutoff."""
        if self.schema.output_kind.name == "multilabel_logits":
            return labels_right(outputs, targets)
        return None if self.schema.cutoff is None else losses < self.schema.cutoff

    def _audio(self, raw, i: int, values, x_t) -> tuple[np.ndarray | None, str]:
        """The sound of xT and what it is: a waveform input as the model received it; for a spectrogram made
        by the run's frontend, the transformed waveform it was made from (exact, no inversion needed)."""
        spec = self.schema.input
        if not self.schema.audible:
            return None, f"{spec.kind} inputs: nothing to listen to"
        if spec.kind == "waveform":
            return x_t.reshape(-1).numpy(), "xT as the model received it"
        with torch.no_grad():  # the raw-domain transforms only, as the sweep applies them before the frontend
            sound = self.grid.apply_values(raw, [i], values, self.seed, "input")
        note = "the transformed waveform the spectrogram xT was made from"
        if self.grid.has_stage("feature"):
            note += " (before the feature-domain transforms, which act on the spectrogram only)"
        return sound.reshape(-1).numpy(), note
