"""The projection engine: input optimisation of transformed inputs toward their desired outputs.

Starting from ``xT``, gradient steps on the *input* (model frozen) minimise ``L(f(z), y)`` until each sample's
loss falls below ``cutoff`` or ``max_steps`` runs out. Samples are independent: the loss is a sum over samples,
Adam's moments and step counts are kept per sample (written out here rather than ``torch.optim.Adam`` because
its step count, and so its bias correction, is shared by the whole tensor), converged samples leave the working
batch, and the queue refills it, so the cost per step shrinks with the work left.

Each sample ends with a ``status`` (:data:`proactiv.schema.STATUSES`) saying why, so a failure outside the model
never reads as "not converged": ``converged``; ``budget`` (``max_steps`` ran out, all restarts together);
``stalled`` (a step left it where it was: zero gradient, and with Adam zero momentum, so no later step could move
it); ``nonfinite`` (its loss or its input became NaN/Inf: stopped at once); ``no_scale`` (a constant input, with
``lr="auto"``, and no scale from the other inputs or the caller to size its steps by). Whatever the status, the
sample keeps the lowest-loss finite point it reached (its x̂T, and the loss and output there): xT itself when
no step lowered the loss, or when its loss on xT is already non-finite (then the loss kept is that one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from proactiv.device import resolve_device
from proactiv.fold import fold_batch_norm as fold
from proactiv.losses import LABEL_LOSSES, LossFn, input_penalty, resolve_loss
from proactiv.schema import STATUSES

CRITERIA = ("per_sample", "batch_mean")
OPTIMIZERS = ("polyak", "adam", "sgd")
#: Polyak steps aim at this fraction of the cutoff (aiming at the cutoff itself would land just above it)
POLYAK_AIM = 0.5
#: Polyak steps take at most this multiple of the linear model's step: the loss falls slower than its tangent
#: (measured on the KWS DS-CNN: ×2 needs 3 steps where ×1 needs 5, ×3 stops converging). A step after which
#: a sample's loss rose is taken back and retried at half the multiple; each kept step lets it grow by half
POLYAK_GAIN = 2.0
#: Polyak steps move the input by at most this many ``lr`` (RMS over the input) per step: a trust region for
#: flat spots of the loss, where the linear model of the step would send the input far away
POLYAK_TRUST = 10.0
#: a sample not converged after this many Polyak steps (ten times the median on the KWS and digits models)
#: continues with Adam
POLYAK_PATIENCE = 10
#: an input whose elements spread by less than this fraction of its largest magnitude is constant (up to
#: rounding): it has no scale of its own to size steps by (``lr="auto"``)
SCALE_FLOOR = 1e-6
#: the codes of :attr:`ProjectionResult.status`, in order
STATUS_NAMES = tuple(STATUSES)
_CODE = {name: code for code, name in enumerate(STATUS_NAMES)}


@dataclass
class ProjectionResult:
    """What projection made of N transformed inputs (all tensors on the CPU, first dimension N)."""

    inputs: torch.Tensor  # x̂T, the projected inputs: the lowest-loss finite point each reached
    steps: torch.Tensor  # int64: optimiser steps each sample took
    converged: torch.Tensor  # bool: its loss fell below the cutoff
    loss_before: torch.Tensor  # L(f(xT), y)
    loss_after: torch.Tensor  # L(f(x̂T), y)
    outputs_before: torch.Tensor  # f(xT)
    outputs_after: torch.Tensor  # f(x̂T)
    status: torch.Tensor  # int64: why it ended, a code into STATUS_NAMES (see :attr:`statuses`)

    @property
    def statuses(self) -> np.ndarray:
        """Why each projection ended, by name (:data:`proactiv.schema.STATUSES`)."""
        return np.asarray(STATUS_NAMES, dtype=object)[self.status.numpy()]


class Projector:
    """Project transformed inputs toward desired outputs by gradient descent on the input.

    Parameters
    ----------
    model : a differentiable ``nn.Module`` (or any callable module); it is frozen while projecting and left as
        it was (mode and ``requires_grad`` flags restored, weights untouched).
    loss : ``"cross_entropy"`` (targets are labels), ``"own_prediction"`` (targets are the clean inputs; the
        model's prediction on them is the label), ``"mse"``/``"l1"`` (targets are tensors), or a callable
        ``(outputs, targets) -> (N,)`` per-sample losses.
    optimizer : ``"polyak"`` (default: a step along the gradient sized by Polyak's rule to reach the cutoff,
        see :func:`_polyak_step`), ``"adam"`` (as the reference) or ``"sgd"``.
    lr : a step size in input units, or ``"auto"``: ``lr_fraction`` × each sample's own input scale (the
        standard deviation of its elements), so log-mel dB, waveforms and [0, 1] images converge in tens of
        steps with one default. A constant input (a saturated image, digital silence) has no scale of its own:
        it takes the ``scale`` given to :meth:`project`, else the median scale of the other inputs there, else
        it ends with status ``no_scale``.
    cutoff : a sample has converged when its loss is below this.
    max_steps : step budget per sample (the total over Polyak's restart).
    batch_size : size of the working batch (inputs of many grid points share it).
    criterion : ``"per_sample"`` (each sample stops on its own) or ``"batch_mean"`` (the reference rule: a
        chunk of ``batch_size`` stops when its *mean* loss is below the cutoff).
    regularizer, reg_weight : optional penalty on the input change ``z - xT`` (``"l2"``, ``"l1"``, ``"tv"``).
    clamp : optional ``(low, high)`` valid input range enforced after every step.
    fold_batch_norm : project through a copy of the model with its conv → batch-norm pairs folded
        (:mod:`proactiv.fold`: the same function in eval mode, one layer less per step); the model is unchanged.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: str | LossFn = "cross_entropy",
        optimizer: str = "polyak",
        lr: float | str = "auto",
        cutoff: float = 0.05,
        max_steps: int = 500,
        batch_size: int = 256,
        device: str | torch.device = "auto",
        criterion: str = "per_sample",
        lr_fraction: float = 0.01,
        regularizer: str | None = None,
        reg_weight: float = 0.0,
        clamp: tuple[float, float] | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fold_batch_norm: bool = True,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r}: expected one of {OPTIMIZERS}")
        if criterion not in CRITERIA:
            raise ValueError(f"criterion={criterion!r}: expected one of {CRITERIA}")
        if lr != "auto" and not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr={lr!r}: expected a positive number or 'auto'")
        if not lr_fraction > 0:
            raise ValueError(f"lr_fraction={lr_fraction!r}: expected a positive number")
        if not cutoff >= 0:
            raise ValueError(f"cutoff={cutoff!r}: expected a number >= 0")
        if int(max_steps) < 0:
            raise ValueError(f"max_steps={max_steps!r}: expected an integer >= 0")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected an integer >= 1")
        if regularizer is not None:
            input_penalty(regularizer, torch.zeros(1, 2))  # validates the name
        if clamp is not None and not clamp[0] < clamp[1]:
            raise ValueError(f"clamp={clamp!r}: expected (low, high) with low < high")
        self.device = resolve_device(device)
        self.fold_batch_norm = bool(fold_batch_norm)
        self.model = (fold(model) if self.fold_batch_norm else model).to(self.device)
        self.loss = loss
        self.loss_fn = resolve_loss(loss)
        self.optimizer = optimizer
        self.lr = lr
        self.lr_fraction = float(lr_fraction)
        self.cutoff = float(cutoff)
        self.max_steps = int(max_steps)
        self.batch_size = int(batch_size)
        self.criterion = criterion
        self.regularizer = regularizer
        self.reg_weight = float(reg_weight)
        self.clamp = clamp
        self.betas = betas
        self.eps = eps

    def settings(self) -> dict:
        """The settings that change results (recorded in a run's config and fingerprint)."""
        return {
            "loss": self.loss
            if isinstance(self.loss, str)
            else getattr(self.loss, "__name__", repr(self.loss)),
            "optimizer": self.optimizer,
            "lr": self.lr,
            "lr_fraction": self.lr_fraction,
            "cutoff": self.cutoff,
            "max_steps": self.max_steps,
            "criterion": self.criterion,
            "regularizer": self.regularizer,
            "reg_weight": self.reg_weight,
            "clamp": list(self.clamp) if self.clamp else None,
            "betas": list(self.betas),
            "eps": self.eps,
            "fold_batch_norm": self.fold_batch_norm,
        }

    # ----------------------------------------------------------------------------------------- public verb
    def project(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        on_done: Callable[[int], None] | None = None,
        scale: float | None = None,
    ) -> ProjectionResult:
        """Project ``inputs`` (N, *shape) toward ``targets`` (labels (N,), target tensors, or clean inputs).

        ``on_done(k)`` is called as k more samples finish (for progress bars). ``scale`` sizes the steps of
        constant inputs under ``lr="auto"`` (e.g. the typical scale of the run's clean inputs, as the sweep
        gives); default: the median scale of the inputs here that have one.
        """
        inputs = self._check_inputs(inputs)
        if scale is not None and not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale={scale!r}: expected a positive finite number or None")
        with _Frozen(self.model):
            targets = self._check_targets(inputs, targets)
            scales = self._scales(inputs, scale)
            if self.criterion == "per_sample":
                return self._project_per_sample(inputs, targets, on_done, scales)
            return self._project_batch_mean(inputs, targets, on_done, scales)

    def check(self, sample: torch.Tensor, targets: torch.Tensor) -> None:
        """Refuse what :meth:`project` would refuse, before any work is done or written: the model is probed
        (one forward and backward pass) on the first model input of ``sample``, and all ``targets`` are checked
        against its output (label range, target shape)."""
        sample = self._check_inputs(sample)[:1]
        targets = torch.as_tensor(targets)
        with _Frozen(self.model):
            self._check_targets(sample.expand(targets.shape[0], *sample.shape[1:]), targets)

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        """Model outputs for ``inputs`` in batches, on the CPU (no gradient)."""
        with _Frozen(self.model), torch.no_grad():
            outs = [self.model(chunk.to(self.device)).cpu() for chunk in inputs.split(self.batch_size)]
        return torch.cat(outs)

    # ------------------------------------------------------------------------------------------ checks
    def _name(self) -> str:
        """The model's class name (a TorchScript model's original one, not RecursiveScriptModule)."""
        return getattr(self.model, "original_name", None) or type(self.model).__name__

    def _check_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"inputs: expected a torch.Tensor, got {type(inputs).__name__}")
        if not inputs.is_floating_point():
            raise TypeError(f"inputs: expected a floating-point tensor, got dtype {inputs.dtype}")
        if inputs.dim() < 1 or inputs.shape[0] == 0:
            raise ValueError(f"inputs: expected shape (N, ...) with N >= 1, got {tuple(inputs.shape)}")
        bad = ~torch.isfinite(inputs.flatten(1) if inputs.dim() > 1 else inputs[:, None]).all(1)
        if bad.any():
            rows = bad.nonzero().flatten()[:5].tolist()
            raise ValueError(f"inputs: {int(bad.sum())} sample(s) contain NaN or Inf (first rows: {rows})")
        return inputs.detach().cpu()

    def _check_targets(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not isinstance(targets, torch.Tensor):
            targets = torch.as_tensor(targets)
        if targets.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"targets: {targets.shape[0]} targets for {inputs.shape[0]} inputs; expected one per input"
            )
        probe = self._probe(inputs[:1])
        if self.loss == "own_prediction":
            if targets.shape != inputs.shape:
                raise ValueError(
                    f"targets: loss='own_prediction' takes the clean inputs as targets (shape "
                    f"{tuple(inputs.shape)}), got shape {tuple(targets.shape)}"
                )
            targets = self.predict(targets.to(inputs.dtype)).argmax(1)
        if self.loss in LABEL_LOSSES:
            if targets.is_floating_point() or targets.dim() != 1:
                raise ValueError(
                    f"targets: expected integer class labels of shape (N,), got {targets.dtype} "
                    f"{tuple(targets.shape)}"
                )
            n_classes = probe.shape[1]
            out_of_range = (targets < 0) | (targets >= n_classes)
            if out_of_range.any():
                raise ValueError(
                    f"targets: label {int(targets[out_of_range][0])} out of range; model {self._name()} has "
                    f"{n_classes} outputs, so labels must lie in [0, {n_classes - 1}]"
                )
            return targets.long()
        if probe.dim() == 1:  # the records' metrics and views read outputs per sample as (N, ...)
            raise ValueError(
                f"model {self._name()} outputs one value per sample as shape (N,); return (N, 1) (a wrapper "
                "whose forward returns model(x)[:, None]) and give the targets as (N, 1)"
            )
        if isinstance(self.loss, str) and targets.shape[1:] != probe.shape[1:]:
            one_value = targets.dim() == 1 and tuple(probe.shape[1:]) == (1,)
            raise ValueError(
                f"targets: shape {tuple(targets.shape[1:])} per sample, but model {self._name()} outputs "
                f"{tuple(probe.shape[1:])}" + ("; give the targets as (N, 1): labels[:, None]" if one_value else "")
            )
        return targets.to(inputs.dtype)

    def _probe(self, x: torch.Tensor) -> torch.Tensor:
        """One forward/backward on a sample: does the output depend differentiably on the input?"""
        z = x.to(self.device).requires_grad_(True)
        try:
            out = self.model(z)
        except RuntimeError as err:  # wrong shape/dtype for this model: say which model and which input
            raise ValueError(
                f"model {self._name()} cannot take inputs of shape {tuple(x.shape[1:])} (per sample, "
                f"{x.dtype}): {str(err).splitlines()[0]}"
            ) from None
        if isinstance(out, (dict, tuple, list)):
            raise ValueError(
                f"model {self._name()} returns a {type(out).__name__}, not one tensor; say which output to read: "
                "pv.adapt(model, output_key=KEY_OR_INDEX)"
            )
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise ValueError(
                f"model {self._name()}: its output does not depend differentiably on its input (no gradient "
                "reaches the output); projection needs a differentiable model (no argmax, rounding, "
                "torch.no_grad or .detach() on the path from input to output)"
            )
        (grad,) = torch.autograd.grad(out.float().sum(), z, allow_unused=True)
        if grad is None:
            raise ValueError(
                f"model {self._name()}: its output does not depend on its input (gradient is None)"
            )
        return out.detach()

    # ------------------------------------------------------------------------------------------ engine
    def _losses(self, z: torch.Tensor, start: torch.Tensor, targets: torch.Tensor):
        """Forward pass: task loss per sample, objective (with regulariser), model outputs."""
        out = self.model(z)
        task = self.loss_fn(out, targets)
        if task.shape != (z.shape[0],):
            raise ValueError(
                f"loss: expected per-sample losses of shape ({z.shape[0]},), got {tuple(task.shape)}"
            )
        objective = task
        if self.regularizer is not None and self.reg_weight > 0:
            objective = task + self.reg_weight * input_penalty(self.regularizer, z - start)
        return task, objective, out

    def _scales(self, inputs: torch.Tensor, scale: float | None) -> torch.Tensor | None:
        """Under ``lr="auto"``, the scale each input's steps are sized by: its own, else (a constant input)
        ``scale``, else the median of the others' own scales; NaN where there is none. None for a fixed lr."""
        if self.lr != "auto":
            return None
        own = own_scales(inputs)
        has = own > 0
        if scale is None:
            scale = float(own[has].median()) if has.any() else float("nan")
        return torch.where(has, own, torch.full_like(own, scale))

    def _step_sizes(self, start: torch.Tensor, scales: torch.Tensor | None) -> torch.Tensor:
        """The step size of each row of ``start`` (its ``scales``: :meth:`_scales` of those rows); NaN for a
        row with no scale to size it by (status ``no_scale``)."""
        if scales is not None:
            return self.lr_fraction * scales.to(start.device)
        return torch.full((start.shape[0],), float(self.lr), dtype=start.dtype, device=start.device)

    def _fresh_state(self, x: torch.Tensor, loss=None, out=None, *, lr) -> dict[str, torch.Tensor]:
        """Per-sample optimiser state of samples entering the working batch (only what the rule needs); with
        their ``loss`` and output ``out`` at ``x``, x is their lowest-loss point so far."""
        n, dev = x.shape[0], x.device
        state = {
            "t": torch.zeros(n, dtype=torch.long, device=dev),  # steps taken, counted against max_steps
            "lr": lr,
            "stuck": torch.zeros(n, dtype=torch.bool, device=dev),  # the last step left it where it was
            "wild": torch.zeros(n, dtype=torch.bool, device=dev),  # the last step was NaN/Inf
        }
        if loss is not None:  # the lowest-loss finite point so far (replaced, never written in place)
            state.update(low_z=x, low_loss=loss, low_out=out)
        if self.optimizer in ("adam", "polyak"):  # Polyak's hard tail continues with Adam
            state.update(
                m=torch.zeros_like(x), v=torch.zeros_like(x), k=torch.zeros(n, dtype=torch.long, device=dev)
            )
        if self.optimizer == "polyak":
            state.update(
                gain=torch.full((n,), POLYAK_GAIN, dtype=x.dtype, device=dev),
                last=torch.full((n,), float("inf"), dtype=x.dtype, device=dev),  # loss at ``base``
                base=torch.zeros_like(x),  # the last point whose step was kept, and its gradient
                base_grad=torch.zeros_like(x),
                best=torch.full((n,), float("inf"), dtype=x.dtype, device=dev),  # for stall detection
                since=torch.zeros(n, dtype=torch.long, device=dev),
                late=torch.zeros(n, dtype=torch.bool, device=dev),  # restarted with Adam
            )
        return state

    def _update(self, z, grad, state, active, task, start):
        """One optimiser step for the rows in ``active`` (bool mask); ``task`` is each row's loss at ``z``,
        ``start`` the transformed inputs the rows started from."""
        view = (-1,) + (1,) * (z.dim() - 1)
        state["t"][active] += 1
        if self.optimizer == "sgd":
            delta, steady = state["lr"].view(view) * grad, active
        elif self.optimizer == "adam":
            delta, steady = self._adam_step(grad, state, active), active
        else:
            steady = active & state["late"]  # rows on Adam already (one restarting now takes no step)
            z, delta = self._polyak_update(z, grad, state, active, task, start)
        # a zero step of plain gradient descent or Adam (zero gradient and momentum) repeats itself for ever; a
        # NaN/Inf step leaves a non-finite input (one pass over the step tells both)
        size = delta.flatten(1).abs().sum(1)
        state["stuck"], state["wild"] = steady & (size == 0), active & ~torch.isfinite(size)
        z = z - delta * active.view(view).to(z.dtype)
        if self.clamp is not None:
            z = z.clamp(*self.clamp)
        return z

    def _polyak_update(self, z, grad, state, active, task, start):
        """Polyak steps (a step that raised the loss is retried from where it started, shorter). A sample that
        stalls — no 10 % fall of its loss in POLYAK_PATIENCE steps: long steps can lead where the gradient
        vanishes, e.g. below a model's dB floor — starts again from xT with Adam and the steps it has left of
        its budget (Polyak's count against it too). Returns the point to step from and the step."""
        view = (-1,) + (1,) * (z.dim() - 1)
        late = active & state["late"]
        rose = (task > state["last"]) & ~late
        back = rose.view(view)
        z = torch.where(back, state["base"], z)
        grad = torch.where(back, state["base_grad"], grad)
        task = torch.where(rose, state["last"], task)
        grown = (state["gain"] * 1.5).clamp(max=POLYAK_GAIN)
        state.update(gain=torch.where(rose, state["gain"] / 2, grown), last=task, base=z, base_grad=grad)
        fell = task < 0.9 * state["best"]
        state["best"] = torch.where(fell, task, state["best"])
        state["since"] = torch.where(fell, 0, state["since"] + 1)
        delta = _polyak_step(
            grad, state["gain"] * (task - POLYAK_AIM * self.cutoff), POLYAK_TRUST * state["lr"]
        )
        restart = active & ~late & (state["since"] >= POLYAK_PATIENCE)
        if late.any() or restart.any():
            delta = torch.where(late.view(view), self._adam_step(grad, state, late), delta)
            again = restart.view(view)
            z, delta = torch.where(again, start, z), torch.where(again, 0.0, delta)
            state["late"] = state["late"] | restart
        return z, delta

    def _adam_step(self, grad, state, rows):
        """Adam's step for ``rows`` (its moments and step count advance only there; per-sample bias correction)."""
        view = (-1,) + (1,) * (grad.dim() - 1)
        b1, b2 = self.betas
        state["k"] = state["k"] + rows.long()
        on = rows.view(view)
        m = state["m"] = torch.where(on, b1 * state["m"] + (1 - b1) * grad, state["m"])
        v = state["v"] = torch.where(on, b2 * state["v"] + (1 - b2) * grad * grad, state["v"])
        k = state["k"].to(grad.dtype).clamp_min(1).view(view)
        return state["lr"].view(view) * (m / (1 - b1**k)) / ((v / (1 - b2**k)).sqrt() + self.eps)

    def _project_per_sample(self, inputs, targets, on_done, scales) -> ProjectionResult:
        n = inputs.shape[0]
        res = _Outputs(inputs)
        queue = 0  # next sample index to enter the working batch
        idx = torch.empty(0, dtype=torch.long)
        z = start = tgt = None
        state: dict[str, torch.Tensor] = {}
        while queue < n or idx.numel():
            while idx.numel() < self.batch_size and queue < n:  # refill from the queue
                new = torch.arange(queue, min(n, queue + self.batch_size - idx.numel()))
                queue += new.numel()
                new, x_new, t_new, fresh = self._admit(new, inputs, targets, res, on_done, scales)
                if not new.numel():
                    continue
                if idx.numel():
                    z, start = torch.cat([z, x_new]), torch.cat([start, x_new])
                    tgt = torch.cat([tgt, t_new])
                    state = {k: torch.cat([state[k], fresh[k]]) for k in state}
                else:
                    z, start, tgt, state = x_new.clone(), x_new, t_new, fresh
                idx = torch.cat([idx, new])
            if not idx.numel():
                continue
            z = z.detach().requires_grad_(True)
            task, objective, out = self._losses(z, start, tgt)
            loss = task.detach()
            finite = torch.isfinite(loss) & ~state["wild"]
            _keep_lowest(state, finite & (loss < state["low_loss"]), z.detach(), loss, out.detach())
            converged = loss < self.cutoff
            done = converged | ~finite | state["stuck"] | (state["t"] >= self.max_steps)
            if done.any():
                status = _status(converged, ~finite, stuck=state["stuck"])[done]
                res.set_after(idx[done.cpu()], state["low_z"][done], state["t"][done], state["low_loss"][done],
                              state["low_out"][done], self.cutoff, status)  # fmt: skip
                if on_done:
                    on_done(int(done.sum()))
            keep = ~done
            if not keep.any():
                idx = idx[:0]
                continue
            (grad,) = torch.autograd.grad(objective[keep].sum(), z)
            with torch.no_grad():
                z = self._update(z.detach(), grad, state, keep, loss, start)
            if not keep.all():  # compaction: the rows done leave the working batch
                keep_cpu = keep.cpu()
                idx, z, start, tgt = idx[keep_cpu], z[keep], start[keep], tgt[keep]
                state = {k: s[keep] for k, s in state.items()}
        return res.result()

    def _admit(self, rows, inputs, targets, res, on_done, scales):
        """Samples entering the working batch: one forward pass without gradients gives their loss before
        projection; those already within the cutoff (or with no step budget, a non-finite loss or no scale to
        size steps by) are done there and then, so a record the model already gets right costs that one forward
        pass and no backward pass. Returns the rows (and their inputs, targets and fresh optimiser state) that
        need steps."""
        x, tgt = inputs[rows].to(self.device), targets[rows].to(self.device)
        with torch.no_grad():
            task, _, out = self._losses(x, x, tgt)
        res.set_before(rows, task, out)
        lr = self._step_sizes(x, None if scales is None else scales[rows])
        status = _status(
            task < self.cutoff, ~torch.isfinite(task), no_scale=torch.isnan(lr) & (self.max_steps > 0)
        )
        done = (status != _CODE["budget"]) | (self.max_steps == 0)
        if done.any():
            zero = torch.zeros(int(done.sum()), dtype=torch.long)
            res.set_after(rows[done.cpu()], x[done], zero, task[done], out[done], self.cutoff, status[done])
            if on_done:
                on_done(int(done.sum()))
        need = ~done
        fresh = self._fresh_state(x[need], task[need], out[need], lr=lr[need])
        return rows[need.cpu()], x[need], tgt[need], fresh

    def _project_batch_mean(self, inputs, targets, on_done, scales) -> ProjectionResult:
        """The reference rule: each chunk steps together until its mean loss is below the cutoff (as the
        reference does, it keeps each sample's last point; a sample below the cutoff in a chunk that stopped
        gets status ``converged``, one above it ``batch_mean``)."""
        res = _Outputs(inputs)
        for chunk in torch.arange(inputs.shape[0]).split(self.batch_size):
            start = inputs[chunk].to(self.device)
            tgt = targets[chunk].to(self.device)
            z = start.clone()
            lr = self._step_sizes(start, None if scales is None else scales[chunk])
            state = self._fresh_state(start, lr=torch.nan_to_num(lr, nan=0.0))  # no scale: no move
            everyone = torch.ones(chunk.numel(), dtype=torch.bool, device=self.device)
            while True:
                z = z.detach().requires_grad_(True)
                task, objective, out = self._losses(z, start, tgt)
                if int(state["t"][0]) == 0:
                    res.set_before(chunk, task, out)
                budget = int(state["t"][0]) >= self.max_steps
                if task.mean().item() < self.cutoff or budget:
                    status = _status(task < self.cutoff, ~torch.isfinite(task), no_scale=torch.isnan(lr))
                    if not budget:
                        status = torch.where(status == _CODE["budget"], _CODE["batch_mean"], status)
                    res.set_after(chunk, z, state["t"], task, out, self.cutoff, status)
                    break
                (grad,) = torch.autograd.grad(objective.sum(), z)
                with torch.no_grad():
                    z = self._update(z.detach(), grad, state, everyone, task.detach(), start)
            if on_done:
                on_done(chunk.numel())
        return res.result()


def own_scales(x: torch.Tensor) -> torch.Tensor:
    """Each sample's own scale under ``lr="auto"``: the standard deviation of its elements (a one-element input:
    its magnitude); 0 for a constant input (spread below :data:`SCALE_FLOOR` of its largest magnitude)."""
    flat = x.detach().reshape(x.shape[0], -1)
    if flat.shape[1] == 1:
        scale = flat[:, 0].abs()
        return torch.where(torch.isfinite(scale), scale, 0.0)
    scale = flat.std(1)
    constant = ~(scale > SCALE_FLOOR * flat.abs().amax(1)) | ~torch.isfinite(scale)
    return torch.where(constant, 0.0, scale)


def _status(converged, nonfinite, stuck=None, no_scale=None) -> torch.Tensor:
    """Status codes of samples that stop now: converged, else nonfinite, else no_scale, else stalled, else
    budget (bool masks; ``stuck`` and ``no_scale`` optional)."""
    code = torch.full(converged.shape, _CODE["budget"], dtype=torch.long, device=converged.device)
    for mask, name in (
        (stuck, "stalled"),
        (no_scale, "no_scale"),
        (nonfinite, "nonfinite"),
        (converged, "converged"),
    ):
        if mask is not None:
            code = torch.where(mask, _CODE[name], code)
    return code


def _keep_lowest(state: dict, better: torch.Tensor, z: torch.Tensor, loss: torch.Tensor, out: torch.Tensor):
    """Where ``better``, the point ``z`` (its loss and output) becomes the sample's lowest-loss point so far."""
    if not better.any():
        return
    if better.all():  # the usual step: no copy (points are replaced, never written in place)
        state.update(low_z=z, low_loss=loss, low_out=out)
        return
    at = (-1,) + (1,) * (z.dim() - 1)
    state["low_z"] = torch.where(better.view(at), z, state["low_z"])
    state["low_loss"] = torch.where(better, loss, state["low_loss"])
    state["low_out"] = torch.where(better.view((-1,) + (1,) * (out.dim() - 1)), out, state["low_out"])


def _polyak_step(grad: torch.Tensor, gap: torch.Tensor, max_rms: torch.Tensor) -> torch.Tensor:
    """The step along the gradient that a linear model of the loss says closes ``gap`` (Polyak's step size
    ``gap / |g|²``; Polyak 1987, "Introduction to Optimization"), shortened to RMS ``max_rms`` where it is
    longer. It follows the gradient's magnitude, so the change goes where the model is sensitive (unlike
    Adam's per-element normalisation, which moves every element at a similar rate), and its length adapts to
    how far each sample is from the cutoff: a few steps where Adam's fixed rate takes tens."""
    view = (-1,) + (1,) * (grad.dim() - 1)
    flat = grad.flatten(1)
    tiny = torch.finfo(grad.dtype).tiny
    delta = grad * (gap.clamp_min(0) / flat.pow(2).sum(1).clamp_min(tiny)).view(view)
    rms = delta.flatten(1).pow(2).mean(1).sqrt()
    return delta * (max_rms / rms.clamp_min(tiny)).clamp(max=1.0).view(view)


class _Outputs:
    """Pre-allocated CPU result tensors, filled as samples enter and leave the working batch."""

    def __init__(self, inputs: torch.Tensor):
        n = inputs.shape[0]
        self.inputs = inputs.clone()
        self.steps = torch.zeros(n, dtype=torch.long)
        self.converged = torch.zeros(n, dtype=torch.bool)
        self.loss_before = torch.zeros(n, dtype=inputs.dtype)
        self.loss_after = torch.zeros(n, dtype=inputs.dtype)
        self.status = torch.zeros(n, dtype=torch.long)
        self.out_before: torch.Tensor | None = None
        self.out_after: torch.Tensor | None = None

    def set_before(self, rows, task, out):
        if self.out_before is None:
            self.out_before = torch.zeros((self.inputs.shape[0], *out.shape[1:]), dtype=out.dtype)
        self.loss_before[rows] = task.detach().cpu().to(self.loss_before.dtype)
        self.out_before[rows] = out.detach().cpu()

    def set_after(self, rows, z, steps, task, out, cutoff, status):
        if self.out_after is None:
            self.out_after = torch.zeros((self.inputs.shape[0], *out.shape[1:]), dtype=out.dtype)
        self.inputs[rows] = z.detach().cpu().to(self.inputs.dtype)
        self.steps[rows] = steps.cpu()
        task = task.detach().cpu().to(self.loss_after.dtype)
        self.loss_after[rows] = task
        self.converged[rows] = task < cutoff
        self.status[rows] = status.cpu()
        self.out_after[rows] = out.detach().cpu()

    def result(self) -> ProjectionResult:
        return ProjectionResult(
            self.inputs,
            self.steps,
            self.converged,
            self.loss_before,
            self.loss_after,
            self.out_before,
            self.out_after,
            self.status,
        )


class _Frozen:
    """Context: model in eval mode with parameter gradients off; both restored on exit (the mode module by
    module: a wrapper in training mode may hold a model in eval mode)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.flags = [(p, p.requires_grad) for p in self.model.parameters()]
        self.model.eval()
        for p, _ in self.flags:
            p.requires_grad_(False)
        return self.model

    def __exit__(self, *exc):
        for p, flag in self.flags:
            p.requires_grad_(flag)
        for module, mode in self.modes:  # parents come before their children, which then set their own
            module.train(mode)
        return False
