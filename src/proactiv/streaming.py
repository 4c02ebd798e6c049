"""Streaming models: a model with a state input and output, run over whole clips chunk by chunk.

Deployed keyword spotters and voice-activity detectors take a short chunk of audio and the state their last call
returned, and give an output and the next state. :func:`stream` wraps such a model into one that takes a whole
clip: it cuts the clip's last axis into chunks, runs the model on each with the state carried from the chunk
before (and any fixed extra inputs, such as a sample rate, given once), and pools the chunk outputs to one output
per clip by a named rule. The result is an ordinary differentiable module, so it sweeps, projects (the gradient
flows back through every chunk and the carried state) and explains like any other model; declare what its pooled
output is with :func:`proactiv.outputs.adapt`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from proactiv.outputs import pick_output

#: how the chunk outputs of a clip become one: their mean, their maximum, or the mean of the ``top_k`` largest
#: (per output element)
POOLS = ("mean", "max", "top_k_mean")


class Streamed(nn.Module):
    """``model`` run over clips chunk by chunk with its state carried, its chunk outputs pooled (see the
    module docstring). Made by :func:`stream`, which checks the arguments."""

    def __init__(self, model: nn.Module, chunk: int, hop: int, state: Callable[[int], torch.Tensor] | torch.Tensor,
                 pool: str, top_k: int, extra: tuple, output_key: str | int, state_key: str | int):  # fmt: skip
        super().__init__()
        self.model = model
        self.chunk, self.hop, self.pool, self.top_k = chunk, hop, pool, top_k
        self.state_fn = state if callable(state) else None
        # a state tensor is a buffer: it moves with the model and is part of its fingerprint
        self.register_buffer("state", None if callable(state) else state.detach().clone())
        self.extra = extra
        self.output_key, self.state_key = output_key, state_key
        self.train(model.training)  # a wrapper of a model in eval mode is in eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.initial_state(x.shape[0])
        outputs = []
        extra = [e.to(x.device) if isinstance(e, torch.Tensor) else e for e in self.extra]
        for piece in self.chunks(x):
            out = self.model(piece, state, *extra)
            outputs.append(pick_output(out, self.output_key))
            state = pick_output(out, self.state_key)
        return pool_outputs(torch.stack(outputs, 1), self.pool, self.top_k)

    def initial_state(self, n: int) -> torch.Tensor:
        """The state of ``n`` clips before their first chunk: ``state(n)``, or the one-clip state tensor
        repeated along its first (batch) axis."""
        if self.state_fn is not None:
            return self.state_fn(n)
        return self.state.expand(n, *self.state.shape[1:]).clone()

    def chunks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The chunks of clips ``x`` along their last axis, every ``hop`` samples; a clip shorter than a whole
        number of hops is padded with zeros so its end is heard."""
        length = x.shape[-1]
        if length <= self.chunk:
            starts = [0]
        else:
            starts = list(range(0, length - self.chunk + self.hop, self.hop))
        needed = starts[-1] + self.chunk - length
        if needed > 0:
            x = nn.functional.pad(x, (0, needed))
        return [x[..., s : s + self.chunk] for s in starts]

    def describe_stream(self) -> dict:
        """How the run's schema names this streaming: chunk and hop (samples of the last axis), pooling rule."""
        return {"chunk": self.chunk, "hop": self.hop, "pool": self.pool, "top_k": self.top_k}


def stream(
    model: nn.Module,
    chunk: int,
    state: Callable[[int], torch.Tensor] | torch.Tensor,
    *,
    hop: int | None = None,
    pool: str = "mean",
    top_k: int = 3,
    extra: Sequence = (),
    output_key: str | int = 0,
    state_key: str | int = 1,
) -> Streamed:
    """``model`` (called as ``model(chunk, state, *extra)``, returning its output and its next state) as a model
    of whole clips.

    Parameters
    ----------
    model : the streaming model.
    chunk : samples of the clip's last axis per call.
    state : the state before a clip's first chunk: a tensor for one clip (batch axis first, size 1), repeated for
        every clip, or a callable ``state(n)`` for ``n`` clips (for a state whose batch axis is not the first).
    hop : samples between chunk starts (default: ``chunk``, chunks side by side).
    pool : how the chunk outputs of a clip become one: ``"mean"``, ``"max"`` or ``"top_k_mean"`` (the mean of the
        ``top_k`` largest, per output element: a keyword heard in a few chunks of a long clip).
    top_k : chunks averaged by ``"top_k_mean"`` (all of them when a clip has fewer).
    extra : fixed inputs given after the state at every call (e.g. a sample rate tensor).
    output_key, state_key : where the output and the next state are in what the model returns (tuple indices or
        dict keys).

    Examples
    --------
    >>> clips = pv.adapt(pv.stream(kws, chunk=1600, state=torch.zeros(1, 64), pool="max"), "logits")
    >>> run = pv.sweep(clips, (waveforms, labels), grid, "runs/streaming")
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    hop = chunk if hop is None else hop
    for name, value in (("chunk", chunk), ("hop", hop), ("top_k", top_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a whole number of samples >= 1")
    if pool not in POOLS:
        raise ValueError(f"pool={pool!r}: expected one of {', '.join(POOLS)}")
    if not callable(state) and not (
        isinstance(state, torch.Tensor) and state.dim() >= 1 and state.shape[0] == 1
    ):
        raise ValueError(
            "state: expected a tensor for one clip (batch axis first, of size 1) or a callable state(n); got "
            + (
                f"a tensor of shape {tuple(state.shape)}"
                if isinstance(state, torch.Tensor)
                else type(state).__name__
            )
        )
    return Streamed(model, chunk, hop, state, pool, top_k, tuple(extra), output_key, state_key)


def pool_outputs(outputs: torch.Tensor, pool: str, top_k: int) -> torch.Tensor:
    """Chunk outputs (N, chunks, ...) pooled over the chunk axis by ``pool`` (:data:`POOLS`)."""
    if pool == "mean":
        return outputs.mean(1)
    if pool == "max":
        return outputs.amax(1)
    return outputs.topk(min(top_k, outputs.shape[1]), dim=1).values.mean(1)
