"""Attribution shift: how the evidence moved between x, xT and x̂T of a record, and under which transform values.

Per record, from |attribution| normalised to unit mass per input (where the evidence is, whatever its sign):
``attr.shift_t_proj`` (total-variation distance of the xT and x̂T masses: 0 = the same place, 1 = disjoint) and
``attr.spearman_t_proj`` (their rank correlation), the same between x and xT (``_x_t``), the share of mass per
region of a coarse grid along the input's axes (``attr.share_<input>.r<i>c<j>``: row band i (low mel bands / top
image rows first) × column band j (early frames / left first); 1-D inputs ``c<j>`` only), and the share of mass
outside the clean input's support (``attr.outside_<input>``, see :func:`support_mask`): e.g. frames outside the
spoken word, pixels off the strokes. Per transform value, the mean of each of those of :data:`SUMMARY`
(:func:`shift_by_value`), and one sentence on where the evidence strayed most (:func:`shift_sentence`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from proactiv.schema import InputSpec
from proactiv.store import Run

if TYPE_CHECKING:
    from proactiv.analysis.record_attributions import Attributions

#: how an input is named in shift columns (as in loss_t / loss_proj)
SUFFIX = {"x": "x", "x_t": "t", "x_proj": "proj"}
PREFIX = "attr."
#: support of a spectrogram or waveform: frames (10 ms windows) within this many dB of the loudest one
SUPPORT_DB = 30.0
#: support of an image: pixels departing from its median (the background) by this fraction of the value range
SUPPORT_FRACTION = 0.1


def _mass(maps: np.ndarray) -> np.ndarray:
    """|maps| per record normalised to unit sum, (N, D); NaN rows where a map has no mass."""
    a = np.abs(maps.reshape(len(maps), -1)).astype(np.float64)
    total = a.sum(1, keepdims=True)
    return a / np.where(total > 0, total, np.nan)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rank correlation of each row of ``a`` with the same row of ``b`` (ties share their mean rank; NaN where
    a row is constant)."""
    from scipy.stats import rankdata

    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    return (ra * rb).sum(1) / np.where(den > 0, den, np.nan)


def layout_rank(spec: InputSpec) -> int:
    """Axes the region grid splits: rows × columns of spectrograms and images, time of waveforms and vectors."""
    return 2 if spec.kind in ("spectrogram", "image") else 1


def region_shares(maps: np.ndarray, spec: InputSpec, regions: int = 3) -> dict[str, np.ndarray]:
    """Share of |attribution| mass per region: ``regions`` near-equal bands along each layout axis, keyed
    ``r<i>c<j>`` (2-D) or ``c<j>`` (1-D); row 0 is the first row of the array (lowest mel band, top image row)."""
    mass = _mass(maps).reshape(maps.shape)
    rank = min(layout_rank(spec), maps.ndim - 1)
    lead = tuple(range(1, maps.ndim - rank))
    if lead:
        mass = mass.sum(lead)
    for axis in range(1, rank + 1):
        size = mass.shape[axis]
        edges = [int(e) for e in np.linspace(0, size, min(regions, size) + 1)[:-1].round()]
        mass = np.add.reduceat(mass, edges, axis=axis)
    if rank == 1:
        return {f"c{j}": mass[:, j] for j in range(mass.shape[1])}
    return {f"r{i}c{j}": mass[:, i, j] for i in range(mass.shape[1]) for j in range(mass.shape[2])}


def support_mask(x: np.ndarray, spec: InputSpec) -> np.ndarray | None:
    """Where each clean input (N, *input) carries its content, as a boolean array of its shape (None for
    vectors, which have no layout):

    - spectrograms (dB): every band of the frames whose loudest band is within :data:`SUPPORT_DB` of the
      loudest frame's — the spoken word;
    - waveforms: the samples of 10 ms windows whose RMS is within :data:`SUPPORT_DB` of the loudest window's;
    - images: pixels departing from the image's median (its background) by more than
      :data:`SUPPORT_FRACTION` of the value range (of the image's own range without one) — the strokes.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if spec.spectrogram:
        loudness = x.max(axis=-2)
        if loudness.ndim > 2:
            loudness = loudness.reshape(n, -1, loudness.shape[-1]).max(1)
        on = loudness >= loudness.max(1, keepdims=True) - SUPPORT_DB
        return np.broadcast_to(on.reshape(n, *[1] * (x.ndim - 2), on.shape[-1]), x.shape).copy()
    if spec.kind == "waveform":
        flat = x.reshape(n, -1)
        width = max(1, int(spec.sample_rate or flat.shape[1]) // 100)
        pad = (-flat.shape[1]) % width
        windows = np.pad(flat, ((0, 0), (0, pad))).reshape(n, -1, width)
        level = 10 * np.log10((windows**2).mean(2) + 1e-20)
        on = level >= level.max(1, keepdims=True) - SUPPORT_DB
        return np.repeat(on, width, axis=1)[:, : flat.shape[1]].reshape(x.shape)
    if spec.image:
        flat = x.reshape(n, -1)
        span = (
            np.full(n, spec.value_range[1] - spec.value_range[0])
            if spec.value_range is not None
            else np.ptp(flat, axis=1)
        )
        background = np.median(flat, axis=1, keepdims=True)
        return (np.abs(flat - background) > SUPPORT_FRACTION * span[:, None]).reshape(x.shape)
    return None


def attribution_shift(att: Attributions, spec: InputSpec, regions: int = 3) -> pd.DataFrame:
    """Per record of ``att``: instance, point and the shift columns of the module docstring (those its inputs
    allow: xT vs x̂T needs both, x vs xT and the support need x)."""
    table = pd.DataFrame({"instance": att.instance, "point": att.point})
    maps = att.maps
    for a, b in (("x_t", "x_proj"), ("x", "x_t")):
        if a in maps and b in maps:
            tag = f"{SUFFIX[a]}_{SUFFIX[b]}"
            table[f"{PREFIX}shift_{tag}"] = 0.5 * np.abs(_mass(maps[a]) - _mass(maps[b])).sum(1)
            table[f"{PREFIX}spearman_{tag}"] = spearman(np.abs(maps[a]), np.abs(maps[b]))
    support = support_mask(att.inputs["x"], spec) if "x" in att.inputs else None
    for name, m in maps.items():
        if support is not None:
            outside = (~support).reshape(len(m), -1)
            table[f"{PREFIX}outside_{SUFFIX[name]}"] = (_mass(m) * outside).sum(1)
        for key, share in region_shares(m, spec, regions).items():
            table[f"{PREFIX}share_{SUFFIX[name]}.{key}"] = share
    return table


#: the per-record figures aggregated per transform value, with what they mean
SUMMARY = {
    "outside_x": "outside the support, x",
    "outside_t": "outside the support, xT",
    "outside_proj": "outside the support, x̂T",
    "spearman_x_t": "Spearman ρ(x, xT)",
    "spearman_t_proj": "Spearman ρ(xT, x̂T)",
    "shift_x_t": "shift x → xT",
    "shift_t_proj": "shift xT → x̂T",
}


def shift_by_value(table: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Mean of each shift figure of :data:`SUMMARY` per value of each grid column with several values (the
    other columns pooled): columns ``column``, ``value``, ``metric``, ``mean``, ``n``."""
    grid = pd.DataFrame([p.values for p in run.grid])
    grid["point"] = np.arange(len(grid))
    frame = table.merge(grid, on="point", how="left")
    metrics = [m for m in SUMMARY if PREFIX + m in frame]
    rows = []
    for column in run.grid.columns:
        if frame[column].nunique() < 2:
            continue
        means = frame.groupby(column)[[PREFIX + m for m in metrics]].agg(["mean", "count"])
        for value, row in means.iterrows():
            for m in metrics:
                rows.append(
                    {
                        "column": column,
                        "value": float(value),
                        "metric": m,
                        "mean": float(row[(PREFIX + m, "mean")]),
                        "n": int(row[(PREFIX + m, "count")]),
                    }
                )
    return pd.DataFrame(rows, columns=["column", "value", "metric", "mean", "n"])


def shift_sentence(summary: pd.DataFrame) -> str:
    """One sentence from the data: the transform value under which xT's evidence lies most outside the clean
    input's support, against x's (or, without x, where xT and x̂T agree least)."""
    out = summary[summary.metric == "outside_t"].dropna(subset=["mean"])
    if not out.empty:
        top = out.loc[out["mean"].idxmax()]
        ref = summary[(summary.metric == "outside_x") & (summary.column == top.column)]["mean"].mean()
        than = f" (x: {ref:.0%})" if np.isfinite(ref) else ""
        return (
            f"Most evidence outside the clean input's support: under {top.column} = {top.value:g}, "
            f"{top['mean']:.0%} of the attribution on xT lies outside it{than}."
        )
    rho = summary[summary.metric == "spearman_t_proj"].dropna(subset=["mean"])
    if rho.empty:
        return "No attribution shift was computed."
    low = rho.loc[rho["mean"].idxmin()]
    return (
        f"The evidence moves most between xT and x̂T under {low.column} = {low.value:g} "
        f"(mean Spearman ρ {low['mean']:.2f})."
    )
