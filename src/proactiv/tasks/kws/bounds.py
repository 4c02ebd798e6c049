"""The certified-radius bound rule of :class:`~proactiv.tasks.kws.models.UtteranceNorm`, which the kws task
registers with :mod:`proactiv.bounds`: the normalisation divides by the utterance's own spread, which has no
linear relaxation in :mod:`proactiv.analysis.certify`, so it is bounded by an interval only."""

from __future__ import annotations

import math

import torch
from torch import nn


def utterance_norm_box(norm: nn.Module, x: torch.Tensor, eps: torch.Tensor, p: str):
    """Sound interval of UtteranceNorm over the ball ‖δ‖_p ≤ eps around ``x``.

    The clamp max(x, peak − top_db) moves each value by at most max(|δ_i|, |Δpeak|) ≤ ‖δ‖_∞; mean and
    population std move by at most ‖Δz‖₂ / √n each; the quotient is bounded by interval division, ignoring
    that numerator and denominator move together (sound, loose)."""
    flat = x.flatten(1)
    n = flat.shape[1]
    e = eps.view(-1, 1)
    lo, hi, z0 = flat - e, flat + e, flat
    radius2 = eps * math.sqrt(n) if p == "linf" else eps.clone()
    if norm.top_db is not None:
        peak = flat.amax(1, keepdim=True)
        low_thr, high_thr = peak - e - norm.top_db, peak + e - norm.top_db
        z0 = torch.maximum(flat, peak - norm.top_db)
        may_clamp = (lo <= high_thr).sum(1).to(x.dtype)
        lo, hi = torch.maximum(lo, low_thr), torch.maximum(hi, high_thr)
        if p == "l2":
            radius2 = eps * (1 + may_clamp.sqrt())
    shift = (radius2 / math.sqrt(n)).view(-1, 1)
    mean = z0.mean(1, keepdim=True)
    std = z0.std(1, unbiased=False, keepdim=True)
    num_lo, num_hi = lo - (mean + shift), hi - (mean - shift)
    den_lo, den_hi = std - shift + norm.eps, std + shift + norm.eps
    quot = torch.stack([num_lo / den_lo, num_lo / den_hi, num_hi / den_lo, num_hi / den_hi])
    out_lo, out_hi = quot.amin(0), quot.amax(0)
    bad = (den_lo <= 0).expand_as(out_lo)
    out_lo, out_hi = out_lo.masked_fill(bad, -math.inf), out_hi.masked_fill(bad, math.inf)
    return out_lo.view_as(x), out_hi.view_as(x)
