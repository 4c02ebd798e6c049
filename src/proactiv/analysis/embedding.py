"""Difference embeddings, the ProactiV global views.

Each record's difference vector (``d_x``, ``d_y``, ``loss_t``, ``loss_proj``, ``loss_change``, ``flipped``)
is scaled per metric, then concatenated **per grid point** over instances (points that affect instances
alike land together: breakpoints show as a jump between groups) or **per instance** over grid points
(instances the model treats alike land together: class and voice biases show as clusters), and embedded in
2-D with openTSNE (default), UMAP or PCA. Coordinates come with the grid values or class and metadata, and
with each row's accuracy and mean ``d_x``, so any view can colour by them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from proactiv.analysis.runview import DIFFERENCE_METRICS, AnalysisError, RunView, open_view, q
from proactiv.analysis.steps import TableStep, register
from proactiv.extras import require
from proactiv.store import Run

METHODS = ("tsne", "umap", "pca")
BY = ("point", "instance")
#: below this many rows t-SNE and UMAP have no neighbourhoods to speak of; PCA is used instead
MIN_ROWS_NONLINEAR = 10
#: rows are reduced to this many principal components before t-SNE/UMAP when they are wider
PCA_DIMENSIONS = 50


def _scale(values: np.ndarray, metric: str) -> np.ndarray:
    """Compress heavy tails (losses, distances) with a signed log1p, then standardise."""
    if metric != "flipped":
        values = np.sign(values) * np.log1p(np.abs(values))
    centred = values - values.mean()
    sd = centred.std()
    # a constant metric (rounding leaves a tiny sd) carries no information: all zeros, not amplified noise
    return centred / sd if sd > 1e-9 * (1.0 + np.abs(values).max()) else np.zeros_like(values)


def difference_matrix(
    run: Run | str | os.PathLike | RunView, by: str = "point", metrics: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows to embed: ``(ids, matrix)`` with one row per grid point (``by="point"``) or instance.

    A row is the scaled difference vectors of that point's instances (or that instance's points), in id
    order; pairs without a record (an unfinished run) are 0, the mean of each scaled metric.
    """
    if by not in BY:
        raise ValueError(f"by={by!r}: expected one of {BY}")
    view = run if isinstance(run, RunView) else open_view(run)
    metrics = [m for m in (metrics or DIFFERENCE_METRICS) if view.schema.has(m)]
    if not metrics:
        raise AnalysisError(
            f"run {view.run.path}: none of the metrics {list(DIFFERENCE_METRICS)} is in its records"
        )
    cols = ", ".join(f"{q(m)}::DOUBLE AS {q(m)}" for m in metrics)
    frame = view.query(f"SELECT instance, point, {cols} FROM records")
    inst, inst_idx = np.unique(frame.instance.to_numpy(), return_inverse=True)
    pts, pt_idx = np.unique(frame.point.to_numpy(), return_inverse=True)
    cube = np.zeros((len(inst), len(pts), len(metrics)), dtype=np.float32)
    for k, m in enumerate(metrics):
        cube[inst_idx, pt_idx, k] = _scale(frame[m].fillna(0.0).to_numpy(), m)
    if by == "point":
        return pts, cube.transpose(1, 0, 2).reshape(len(pts), -1)
    return inst, cube.reshape(len(inst), -1)


def _reduce(matrix: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    if matrix.shape[1] <= PCA_DIMENSIONS:
        return matrix
    k = min(PCA_DIMENSIONS, matrix.shape[0])
    return PCA(k, random_state=seed).fit_transform(matrix)


def _pca2(matrix: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    k = min(2, *matrix.shape)
    coords = PCA(k, random_state=seed).fit_transform(matrix) if k else np.zeros((len(matrix), 0))
    return np.hstack([coords, np.zeros((len(matrix), 2 - coords.shape[1]))])


def _tsne(
    matrix: np.ndarray, seed: int, perplexity: float, progress: Callable[[float], None] | None
) -> np.ndarray:
    TSNE = require("openTSNE", "embed", "the t-SNE embedding").TSNE

    every, total, calls = 25, 750, [0]

    def tick(iteration, error, embedding):
        calls[0] += 1
        if progress:
            progress(min(1.0, calls[0] * every / total))
        return False

    tsne = TSNE(
        perplexity=min(perplexity, (len(matrix) - 1) / 3),
        early_exaggeration_iter=250,
        n_iter=500,
        random_state=seed,
        # one thread: on a shared 2-core machine more threads made t-SNE over 10x slower, not faster
        n_jobs=1,
        # exact neighbours beat the approximate index by ~8x at a few thousand rows
        neighbors="exact" if len(matrix) <= 10_000 else "auto",
        callbacks=tick,
        callbacks_every_iters=every,
    )
    return np.asarray(tsne.fit(_reduce(matrix, seed)))


def _umap(matrix: np.ndarray, seed: int) -> np.ndarray:
    umap = require("umap", "embed", "the UMAP embedding")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": determinism is the point
        model = umap.UMAP(n_neighbors=min(15, len(matrix) - 1), random_state=seed, n_jobs=1)
        return model.fit_transform(_reduce(matrix, seed))


def _colour_columns(view: RunView, by: str) -> pd.DataFrame:
    """Per-row values to colour an embedding by: grid values or class and metadata, plus outcome means."""
    acc = f"avg(correct_t::DOUBLE) AS {view.correct_metric}, " if view.correct_metric else ""
    acc += "avg(flipped::DOUBLE) AS flip_rate, " if view.schema.has("flipped") else ""
    outcome = f"{acc}avg(d_x) AS mean_d_x, avg(loss_t) AS mean_loss_t"
    if by == "point":
        frame = view.query(f"SELECT point, {outcome} FROM records GROUP BY point")
        for col in view.grid_columns:
            frame.insert(1, col, [view.run.grid[int(p)].values[col] for p in frame.point])
        return frame
    keep = ", ".join(f"any_value({q(c)}) AS {q(c)}" for c in ["label", "label_name", *view.meta_columns])
    return view.query(f"SELECT instance, {keep}, {outcome} FROM records GROUP BY instance")


def embed(
    run: Run | str | os.PathLike | RunView,
    by: str = "point",
    method: str = "tsne",
    metrics: Sequence[str] | None = None,
    max_rows: int = 3000,
    seed: int = 0,
    perplexity: float = 30.0,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """2-D embedding of the difference vectors per grid point (``by="point"``) or per instance.

    Beyond ``max_rows`` rows a random sample (seeded) is embedded. Returns a table with ``point`` or
    ``instance``, coordinates ``x``/``y``, the grid values (or ``label``, ``label_name``, ``meta.*``) and
    ``accuracy`` (``within_cutoff`` for runs without predictions), ``flip_rate``, ``mean_d_x``,
    ``mean_loss_t``; ``attrs`` say the method used and what was sampled (``note``).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    view = run if isinstance(run, RunView) else open_view(run)
    ids, matrix = difference_matrix(view, by, metrics)
    notes = []
    if len(ids) > max_rows:
        notes.append(f"embedded a random sample of {max_rows} of {len(ids)} {by}s (seed {seed})")
        chosen = np.sort(np.random.default_rng(seed).choice(len(ids), max_rows, replace=False))
        ids, matrix = ids[chosen], matrix[chosen]
    used = method
    if method != "pca" and len(ids) < MIN_ROWS_NONLINEAR:
        used = "pca"
        notes.append(f"{len(ids)} {by}s are too few for {method}; used PCA")
    if used == "tsne":
        coords = _tsne(matrix, seed, perplexity, progress)
    elif used == "umap":
        coords = _umap(matrix, seed)
    else:
        coords = _pca2(matrix, seed)
    table = pd.DataFrame({by: ids, "x": coords[:, 0], "y": coords[:, 1]})
    table = table.merge(_colour_columns(view, by), on=by, how="left")
    table.attrs.update(method=used, requested_method=method, by=by, rows=len(ids), note="; ".join(notes))
    return table


class EmbeddingStep(TableStep):
    """The difference embedding per grid point or per instance (:func:`embed`)."""

    settings = {"method": "tsne", "max_rows": 3000, "seed": 0}

    def __init__(self, by: str):
        self.by = by
        self.name = f"embedding_{by}s"
        self.title = f"Difference embedding per {'grid point' if by == 'point' else by}"
        self.files = (f"{self.name}.parquet",)

    def compute(self, ctx, settings, progress):
        return embed(ctx.view, by=self.by, progress=progress, **settings)

    def note(self, table):
        return "; ".join(n for n in (f"method {table.attrs['method']}", table.attrs["note"]) if n)


register(EmbeddingStep("point"))
register(EmbeddingStep("instance"))
