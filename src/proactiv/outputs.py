"""Output kinds: what a model returns, read the way the engine projects it.

A model declares its output with :func:`adapt` (or a config's ``model.output``, ``model.output_key``,
``model.preprocess``): the kinds are :data:`proactiv.schema.OUTPUT_KINDS`. The adapted model hands the engine one
of two forms, so projection losses, predictions, flips, attributions, radius and CKA work on every kind unchanged:

- **class logits (N, C)** for the label kinds. ``logits`` pass as they are. A ``binary_logit`` ``s`` becomes the
  pair ``(0, s)``: its softmax is ``(1 − σ(s), σ(s))``, so cross-entropy to a 0/1 label *is* the binary
  cross-entropy of ``s`` and the argmax is ``s > 0``. ``probabilities`` become their logarithms, whose
  log-softmax they are, so cross-entropy is the negative log-likelihood and the argmax is the likeliest class; a
  single sigmoid probability ``q`` becomes ``(log(1 − q), log q)``.
- **the tensor itself** for ``multilabel_logits`` (binary cross-entropy per label; a record is correct when every
  label's logit is > 0 exactly when the label is 1) and ``tensor`` (regression, image-to-image).

Why an adapter rather than sweep options: the output belongs to the model, and every later consumer of the model
(``run.model()``, the analyses that need it) must read it the same way, so the reading travels with the module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from proactiv.config import ModelSpec
from proactiv.models import import_object
from proactiv.schema import OUTPUT_KINDS, default_output

#: a softmax row may miss 1 by this much (float32 rounding) before it is refused as not probabilities
ROW_SUM_TOLERANCE = 1e-3


class Adapted(nn.Module):
    """``model`` read as ``output`` says (see the module docstring), after ``preprocess`` and with ``output_key``
    picking one output of a dict or tuple. Made by :func:`adapt`, which checks the arguments."""

    def __init__(self, model: nn.Module, output: str, output_key: str | int | None,
                 preprocess: Callable[[torch.Tensor], torch.Tensor] | None):  # fmt: skip
        super().__init__()
        self.model = model
        self.output = output
        self.output_key = output_key
        self.preprocess = preprocess
        self.train(model.training)  # a wrapper of a model in eval mode is in eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return as_engine_output(self.output, pick_output(self.model(x), self.output_key))

    def describe(self) -> dict:
        """How the run's schema names this reading: output kind, key and preprocess (by name)."""
        return {"kind": self.output, "key": self.output_key, "preprocess": _name(self.preprocess)}


def adapt(
    model: nn.Module,
    output: str = "logits",
    *,
    output_key: str | int | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Adapted:
    """``model`` with its output declared, to sweep or project like any other model.

    Parameters
    ----------
    model : the model as it is (its output may be a tensor, a dict or a tuple).
    output : what it returns: ``"logits"`` (class logits (N, C)), ``"binary_logit"`` (one logit of the positive
        class per sample), ``"probabilities"`` (softmax rows (N, C), or one sigmoid probability per sample),
        ``"multilabel_logits"`` (independent logits (N, L), labels are 0/1 rows), ``"tensor"`` (regression,
        image-to-image).
    output_key : the key (dict output, e.g. a Hugging Face model's ``"logits"``) or index (tuple output) of the
        output to read; None for a model that returns one tensor.
    preprocess : a differentiable callable from data to model inputs (e.g. normalisation); projection acts on
        its input, so x̂T is in the data's units.

    Examples
    --------
    >>> model = pv.adapt(net, "binary_logit", output_key="logits")
    >>> run = pv.sweep(model, (inputs, labels), grid, "runs/binary")
    >>> run.schema.output_kind.correct
    "the positive class's logit is > 0 exactly when the desired class is 1 (loss: binary cross-entropy)"
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if output not in OUTPUT_KINDS:
        raise ValueError(f"output={output!r}: expected one of {', '.join(OUTPUT_KINDS)}")
    if output_key is not None and (isinstance(output_key, bool) or not isinstance(output_key, (str, int))):
        raise TypeError(
            f"output_key={output_key!r}: expected a key (str) of a dict output or an index (int) of a tuple output"
        )
    if preprocess is not None and not callable(preprocess):
        raise TypeError(
            f"preprocess: expected a callable from data to model inputs, got {type(preprocess).__name__}"
        )
    return Adapted(model, output, output_key, preprocess)


def adapt_spec(model: nn.Module, spec: ModelSpec | None) -> nn.Module:
    """``model`` adapted as a config's model section says (``output`` defaults to logits when only a key or a
    preprocess is given); ``model`` itself when the section says nothing about its output."""
    if spec is None or (spec.output is None and spec.output_key is None and spec.preprocess is None):
        return model
    preprocess = None if spec.preprocess is None else import_object(spec.preprocess, "model.preprocess")
    return adapt(model, spec.output or "logits", output_key=spec.output_key, preprocess=preprocess)


def output_of(model: nn.Module, target: str) -> dict:
    """The output a sweep of ``model`` records in its schema: the adapted model's, else the default reading of
    a ``target`` ("label" or "tensor") run; with ``stream`` settings for a streamed model
    (:class:`proactiv.streaming.Streamed`)."""
    adapted = isinstance(model, Adapted)
    output = model.describe() if adapted else default_output(target)
    inner = model.model if adapted else model
    if callable(getattr(inner, "describe_stream", None)):
        output["stream"] = inner.describe_stream()
    return output


def pick_output(out, key: str | int | None) -> torch.Tensor:
    """The output tensor ``key`` names in ``out`` (a tensor, dict or tuple); errors name the key and what the
    model returned."""
    if isinstance(out, torch.Tensor):
        if key is not None:
            raise ValueError(f"output_key={key!r}: the model returns a single tensor; leave output_key out")
        return out
    if isinstance(out, Mapping):
        if key is None or key not in out:
            what = (
                "name the output to read with" if key is None else f"output_key={key!r} is not one of them;"
            )
            raise ValueError(
                f"the model returns a dict with keys {list(out)}; {what} output_key= (e.g. pv.adapt(model, "
                f"output_key={next(iter(out), 'logits')!r}))"
            )
        picked = out[key]
    elif isinstance(out, (tuple, list)):
        if not isinstance(key, int) or not -len(out) <= key < len(out):
            what = (
                "name the output to read with output_key="
                if key is None
                else f"output_key={key!r} is not one"
            )
            raise ValueError(
                f"the model returns a {type(out).__name__} of {len(out)} outputs; {what} (expected an index "
                f"in 0..{len(out) - 1})"
            )
        picked = out[key]
    else:
        raise ValueError(
            f"the model returns a {type(out).__name__}; expected a tensor, a dict or a tuple of them"
        )
    if not isinstance(picked, torch.Tensor):
        raise ValueError(
            f"output_key={key!r}: the model's output there is a {type(picked).__name__}, not a tensor"
        )
    return picked


def as_engine_output(kind: str, out: torch.Tensor) -> torch.Tensor:
    """What the engine projects of a model output of ``kind``: class logits (N, C) for the label kinds, the
    output itself for the others (see the module docstring)."""
    shape = tuple(out.shape)
    one_per_sample = out.dim() == 1 or (out.dim() == 2 and shape[1] == 1)
    if kind in ("logits", "multilabel_logits"):
        if out.dim() != 2:
            raise ValueError(
                f"output={kind!r}: expected one row of logits per sample (N, C), got shape {shape}"
                + ("; one logit per sample is output='binary_logit'" if one_per_sample else "")
            )
        return out
    if kind == "binary_logit":
        if not one_per_sample:
            raise ValueError(
                f"output='binary_logit': expected one logit per sample, (N,) or (N, 1), got shape {shape}; "
                "a row of class logits is output='logits'"
            )
        logit = out.reshape(-1)
        return torch.stack([torch.zeros_like(logit), logit], 1)
    if kind == "probabilities":
        return _log_probabilities(out, one_per_sample)
    return out


def _log_probabilities(p: torch.Tensor, one_per_sample: bool) -> torch.Tensor:
    """Log-probabilities (N, C) of softmax rows, or of (1 − q, q) for one sigmoid probability q per sample;
    floored at the smallest positive float, so a probability that underflowed to 0 has a finite loss."""
    detached = p.detach()
    if not bool(((detached >= 0) & (detached <= 1)).all()):
        raise ValueError(
            f"output='probabilities': values from {float(detached.min()):.3g} to {float(detached.max()):.3g} "
            "are not probabilities in [0, 1]; a model returning logits is output='logits' or 'binary_logit'"
        )
    if one_per_sample:
        q = p.reshape(-1)
        p = torch.stack([1 - q, q], 1)
    elif p.dim() != 2:
        raise ValueError(
            f"output='probabilities': expected softmax rows (N, C) or (N,), got shape {tuple(p.shape)}"
        )
    else:
        sums = detached.sum(1)
        if not bool(((sums - 1).abs() <= ROW_SUM_TOLERANCE).all()):
            raise ValueError(
                f"output='probabilities': rows sum to {float(sums.min()):.3g}..{float(sums.max()):.3g}, not 1; "
                "expected softmax rows (independent sigmoid probabilities per label are not supported: give "
                "their logits as output='multilabel_logits')"
            )
    return p.clamp_min(torch.finfo(p.dtype).tiny).log()


def _name(fn) -> str | None:
    """``module:qualname`` of a callable (its class's, for an object), or None."""
    if fn is None:
        return None
    named = fn if hasattr(fn, "__qualname__") else type(fn)
    return f"{named.__module__}:{named.__qualname__}"
