"""Centred kernel alignment (CKA; Kornblith et al. 2019, "Similarity of Neural Network Representations
Revisited"): where inside the network the representation of a transformed input departs from the clean one,
and how the layers of two models correspond.

CKA compares two representations of the same n inputs (n × d1 and n × d2 matrices) through their n × n
similarity (Gram) matrices: 1 when one is an orthogonal transform and isotropic scaling of the other, near 0
when they are unrelated; unlike CCA it is not invariant to every invertible linear map, which keeps it
meaningful for layers wider than the number of inputs. :func:`cka` is the paper's in-memory estimator.
:class:`MinibatchCKA` accumulates the unbiased HSIC estimator (Song et al. 2012) over minibatches (minibatch
CKA, Nguyen, Raghu & Kornblith 2021), so thousands of inputs never need an n × n matrix: memory grows with the
minibatch, not with n.

Layers are read with forward hooks (:func:`layer_activations`); by default every convolution and linear module
(:func:`model_layers`), its output flattened per sample — the layers that hold weights, so a heatmap row is a
learnt transformation and not a norm or activation after it.

The ``cka`` step regenerates xT exactly as the sweep did (:func:`proactiv.sweep.model_inputs`) and measures per
layer and grid point the minibatch CKA between activations on clean x and on xT; per value of each transform
parameter it reports the mean over the grid points at that value, the other parameters marginalised
(:func:`transform_cka`).

Written here rather than taken from a library: the estimators are a few matrix products, and what the method
needs — pairing each regenerated xT with its clean x and streaming them through hooks — no library offers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from proactiv.analysis.runview import AnalysisError, format_value
from proactiv.analysis.steps import StepContext, TableStep, register
from proactiv.sweep import model_inputs
from proactiv.transforms.grid import Grid

KERNELS = ("linear", "rbf")
#: RBF bandwidth as a fraction of the median pairwise distance (the paper's choice)
RBF_SIGMA = 0.8
#: module types whose outputs are the default layers
LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
               nn.Linear)  # fmt: skip
#: the report names, per parameter, the first layer whose CKA falls below this
DEPARTURE = 0.9

Matrix = np.ndarray | torch.Tensor


def _matrix(a: Matrix, name: str) -> torch.Tensor:
    """A representation as an (n, d) tensor: numpy or torch, any trailing shape flattened per sample."""
    t = torch.as_tensor(a).detach()
    if t.dim() < 2:
        raise ValueError(
            f"{name}: expected n × d activations (one row per input), got shape {tuple(t.shape)}"
        )
    if not t.is_floating_point():
        t = t.double()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: the activations contain NaN/Inf")
    return t.flatten(1)


def _sigma(kernel: str, sigma: float | None) -> float | None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel {kernel!r}: expected one of {KERNELS}")
    if kernel == "linear":
        if sigma is not None:
            raise ValueError("sigma sets the bandwidth of the rbf kernel; the linear kernel has none")
        return None
    sigma = RBF_SIGMA if sigma is None else float(sigma)
    if not sigma > 0:
        raise ValueError(f"sigma = {sigma}: the rbf bandwidth factor must be positive")
    return sigma


def gram(a: torch.Tensor, kernel: str = "linear", sigma: float | None = None) -> torch.Tensor:
    """The n × n similarity matrix of the rows of ``a`` (n, d), in float64: ``linear`` = dot products of the
    centred rows; ``rbf`` = exp(−‖aᵢ − aⱼ‖² / 2h²) with h = ``sigma`` × the median distance between distinct
    rows (``sigma`` default 0.8)."""
    sigma = _sigma(kernel, sigma)
    a = a - a.mean(0, keepdim=True)  # centring changes no CKA and keeps the products small
    g = (a @ a.T).double()
    if kernel == "linear":
        return g
    norms = g.diagonal()
    sq = (norms[:, None] + norms[None, :] - 2 * g).clamp_min(0)
    n = len(sq)
    median = (
        sq[~torch.eye(n, dtype=torch.bool, device=sq.device)].sqrt().median() if n > 1 else sq.new_zeros(())
    )
    if median == 0:  # all rows equal: every input is alike, and CKA is undefined (0 / 0 → NaN)
        return torch.ones_like(sq)
    return torch.exp(-sq / (2 * (sigma * median) ** 2))


def _ratio(kl, kk, ll):
    """HSIC(K, L) / √(HSIC(K, K) HSIC(L, L)), NaN where a representation has no variance."""
    kl, kk, ll = (np.asarray(v, dtype=float) for v in (kl, kk, ll))
    denom = kk * ll
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, kl / np.sqrt(np.where(denom > 0, denom, 1.0)), np.nan)


def _centred(k: torch.Tensor) -> torch.Tensor:
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def cka(a: Matrix, b: Matrix, kernel: str = "linear", sigma: float | None = None) -> float:
    """CKA between two representations of the same n inputs (n × d1 and n × d2; numpy or torch), as in
    Kornblith et al. 2019: the biased HSIC estimator on the whole set in memory. ``kernel="rbf"`` uses a
    bandwidth of ``sigma`` (default 0.8) × the median pairwise distance. NaN when either has no variance."""
    a, b = _matrix(a, "a").double(), _matrix(b, "b").double()
    sigma = _sigma(kernel, sigma)
    if len(a) != len(b):
        raise ValueError(f"cka: {len(a)} rows in a but {len(b)} in b; both must describe the same inputs")
    if len(a) < 2:
        raise ValueError("cka: needs at least 2 inputs")
    if kernel == "linear" and len(a) > max(a.shape[1], b.shape[1]):
        # more inputs than features: the d × d products cost less than the n × n Gram matrices
        a, b = a - a.mean(0), b - b.mean(0)
        return float(_ratio((b.T @ a).square().sum(), (a.T @ a).square().sum(), (b.T @ b).square().sum()))
    ka, kb = _centred(gram(a, kernel, sigma)), _centred(gram(b, kernel, sigma))
    return float(_ratio((ka * kb).sum(), (ka * ka).sum(), (kb * kb).sum()))


def unbiased_hsic(k: torch.Tensor, l: torch.Tensor) -> float:  # noqa: E741 (the papers' K and L)
    """The unbiased HSIC estimator of Song et al. 2012 on two n × n Gram matrices (n ≥ 4)."""
    n = len(k)
    if n < 4:
        raise ValueError(f"the unbiased HSIC estimator needs at least 4 inputs per minibatch, got {n}")
    k = k.clone().fill_diagonal_(0)
    l = l.clone().fill_diagonal_(0)  # noqa: E741
    rk, rl = k.sum(1), l.sum(1)
    value = (k * l).sum() + rk.sum() * rl.sum() / ((n - 1) * (n - 2)) - 2 * (rk @ rl) / (n - 2)
    return float(value / (n * (n - 3)))


class MinibatchCKA:
    """Minibatch CKA: sums the unbiased HSIC estimates of HSIC(K, L), HSIC(K, K) and HSIC(L, L) over
    minibatches (weighted by their size) and returns their CKA ratio, so only one minibatch's n × n Gram
    matrices exist at a time.

    Each :meth:`update` takes one minibatch of both sides (at least 4 inputs, the unbiased estimator's minimum:
    :func:`minibatch_cka` and the other callers here cut them so) — a matrix, or a list of matrices (one per
    layer) for the same inputs. ``cross=False`` pairs ``a[i]`` with ``b[i]`` (a layer on x and on xT); ``cross=True``
    pairs every ``a[i]`` with every ``b[j]`` (the layers of two models). Unlike :func:`cka` the estimate is
    unbiased, so it can differ slightly from it on few inputs and fall below 0; it never leaves [−1, 1] (the
    unbiased HSIC is an inner product of U-centred Gram matrices, Székely & Rizzo 2014, so Cauchy–Schwarz bounds
    each minibatch's ratio and their sums).
    """

    def __init__(self, kernel: str = "linear", sigma: float | None = None, cross: bool = False):
        self.sigma = _sigma(kernel, sigma)
        self.kernel = kernel
        self.cross = cross
        #: inputs seen (summed over minibatches)
        self.n = 0
        self._kl: np.ndarray | None = None
        self._kk: np.ndarray | None = None
        self._ll: np.ndarray | None = None

    def update(self, a: Matrix | Sequence[Matrix], b: Matrix | Sequence[Matrix]) -> None:
        """Add one minibatch: ``a`` and ``b`` describe the same inputs, row by row."""
        ka = [gram(_matrix(m, "a"), self.kernel, self.sigma) for m in _layers(a)]
        kb = [gram(_matrix(m, "b"), self.kernel, self.sigma) for m in _layers(b)]
        self.add_grams(ka, kb)

    def add_grams(self, ka: Sequence[torch.Tensor], kb: Sequence[torch.Tensor]) -> None:
        """Add one minibatch given as Gram matrices (:func:`gram`); lets a caller reuse the Gram matrices of
        one side (the clean inputs) for several others."""
        sizes = {len(k) for k in [*ka, *kb]}
        if len(sizes) != 1:
            raise ValueError(
                f"minibatch CKA: the matrices describe different numbers of inputs {sorted(sizes)}"
            )
        if not self.cross and len(ka) != len(kb):
            raise ValueError(
                f"minibatch CKA pairs a[i] with b[i]: got {len(ka)} and {len(kb)} representations"
            )
        n = sizes.pop()
        kk = np.array([unbiased_hsic(k, k) for k in ka])
        ll = np.array([unbiased_hsic(k, k) for k in kb])
        if self.cross:
            kl = np.array([[unbiased_hsic(x, y) for y in kb] for x in ka])
        else:
            kl = np.array([unbiased_hsic(x, y) for x, y in zip(ka, kb, strict=True)])
        if self._kl is None:
            self._kl, self._kk, self._ll = n * kl, n * kk, n * ll
        elif self._kl.shape != kl.shape:
            raise ValueError(f"minibatch CKA: {kl.shape} representation pairs now, {self._kl.shape} before")
        else:
            self._kl += n * kl
            self._kk += n * kk
            self._ll += n * ll
        self.n += n

    def value(self) -> np.ndarray:
        """CKA per pair: shape (layers,), or (layers of a, layers of b) with ``cross``."""
        if self._kl is None:
            raise ValueError("minibatch CKA: no minibatch was added")
        if self.cross:
            return _ratio(self._kl, self._kk[:, None], self._ll[None, :])
        return _ratio(self._kl, self._kk, self._ll)


def _layers(a) -> list:
    return list(a) if isinstance(a, (list, tuple)) else [a]


def _batches(n: int, batch_size: int) -> list[np.ndarray]:
    """Indices 0..n−1 in near-equal consecutive minibatches, none smaller than 4 when n ≥ 4 (the unbiased
    estimator's minimum): of at most ``batch_size`` where that allows it, else the most minibatches that keep 4
    each (n = 10 at ``batch_size`` 4: 5 + 5, not 4 + 3 + 3), which then hold 4 to 7 inputs."""
    if batch_size < 4:
        raise ValueError(f"batch_size = {batch_size}: minibatch CKA needs at least 4 inputs per minibatch")
    return np.array_split(np.arange(n), max(1, min(math.ceil(n / batch_size), n // 4)))


def minibatch_cka(
    a: Matrix, b: Matrix, batch_size: int = 256, kernel: str = "linear", sigma: float | None = None
) -> float:
    """Minibatch CKA (:class:`MinibatchCKA`) of two in-memory representations (n ≥ 4 rows), in consecutive row
    minibatches of about ``batch_size`` (≥ 4; the cut: :func:`_batches`; shuffle the rows first if their order
    follows their content). With ``batch_size`` ≥ n it is the unbiased estimate on all rows at once."""
    a, b = _matrix(a, "a"), _matrix(b, "b")
    if len(a) != len(b):
        raise ValueError(f"minibatch_cka: {len(a)} rows in a but {len(b)} in b")
    acc = MinibatchCKA(kernel, sigma)
    for rows in _batches(len(a), batch_size):
        acc.update(a[rows], b[rows])
    return float(acc.value()[0])


def model_layers(model: nn.Module) -> list[str]:
    """The default layers of ``model``: the names of its convolution and linear modules, in module order."""
    return [name for name, m in model.named_modules() if isinstance(m, LAYER_TYPES)]


def _modules(model: nn.Module, layers: Sequence[str] | None) -> dict[str, nn.Module]:
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError(
            "a TorchScript model's layers cannot be hooked; give the nn.Module it was scripted from"
        )
    named = dict(model.named_modules())
    names = model_layers(model) if layers is None else list(layers)
    unknown = [n for n in names if n not in named]
    if unknown:
        raise ValueError(f"model has no layers {unknown}; its modules: {', '.join(n for n in named if n)}")
    if not names:
        raise ValueError(
            f"{type(model).__name__} has no convolution or linear layers; name the layers to read"
        )
    return {n: named[n] for n in names}


def _device(model: nn.Module) -> torch.device:
    for t in [*model.parameters(), *model.buffers()]:
        return t.device
    return torch.device("cpu")


def _capture(model: nn.Module, modules: dict[str, nn.Module], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One forward pass of ``x`` in eval mode without gradients; each named module's output, (b, d)."""
    out: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
            out[name] = output.detach().flatten(1).clone()  # a copy: later in-place ops must not alter it

        return hook

    handles = [m.register_forward_hook(keep(n)) for n, m in modules.items()]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x.to(_device(model)))
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    missing = [n for n in modules if n not in out]
    if missing:
        raise ValueError(f"layers {missing} were not called in the forward pass")
    return {n: out[n] for n in modules}


def layer_activations(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None, batch_size: int = 256
) -> Iterator[dict[str, torch.Tensor]]:
    """Per minibatch of ``x`` (near-equal consecutive slices as minibatch CKA cuts them, :func:`_batches`: at most
    ``batch_size`` unless that would leave one under 4), the output of each
    layer flattened per sample, ``{name: (b, d)}``, in layer order. ``layers`` are module names (default:
    :func:`model_layers`). The model runs in eval mode without gradients (its mode is restored); only one
    minibatch's activations exist at a time. A module called twice gives its last output."""
    modules = _modules(model, layers)
    for rows in _batches(len(x), batch_size):
        yield _capture(model, modules, x[torch.as_tensor(rows)])


def compare_models_cka(
    model_a: nn.Module,
    model_b: nn.Module,
    inputs: torch.Tensor,
    layers_a: Sequence[str] | None = None,
    layers_b: Sequence[str] | None = None,
    batch_size: int = 256,
    kernel: str = "linear",
    sigma: float | None = None,
) -> pd.DataFrame:
    """Layer × layer minibatch CKA between two models on the same inputs (two architectures, or one model
    before and after a change): a row per pair, ``layer_a``, ``index_a``, ``layer_b``, ``index_b``, ``cka``,
    ``n`` (inputs)."""
    names_a, names_b = list(_modules(model_a, layers_a)), list(_modules(model_b, layers_b))
    if len(inputs) < 4:
        raise ValueError(f"compare_models_cka: needs at least 4 inputs, got {len(inputs)}")
    acc = MinibatchCKA(kernel, sigma, cross=True)
    pairs = zip(layer_activations(model_a, inputs, names_a, batch_size),
                layer_activations(model_b, inputs, names_b, batch_size), strict=True)  # fmt: skip
    for acts_a, acts_b in pairs:
        acc.update(list(acts_a.values()), list(acts_b.values()))
    values = acc.value()
    return pd.DataFrame(
        [
            {"layer_a": la, "index_a": i, "layer_b": lb, "index_b": j, "cka": float(values[i, j]), "n": acc.n}
            for i, la in enumerate(names_a)
            for j, lb in enumerate(names_b)
        ]
    )


def transform_cka(
    task,
    grid: Grid,
    seed: int,
    max_instances: int = 200,
    batch_size: int = 64,
    kernel: str = "linear",
    layers: Sequence[str] | None = None,
    points: Sequence[int] | None = None,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Per layer, minibatch CKA between the model's activations on clean x and on xT, per value of each grid
    parameter with the other parameters marginalised: the mean of the CKA of every grid point at that value
    (``points`` limits them to some grid point ids, e.g. a sample of a large grid). A mean of per-point CKA,
    not one CKA of the pooled HSIC sums: strong transforms inflate a layer's variance, and pooled sums would
    let them outweigh the other points (a pooled value can fall below every point's own CKA).

    ``task`` holds the model, the raw inputs (instance order) and the frontend (:meth:`Run.task`); xT is
    regenerated as the sweep made it (same grid, ``seed`` and instance ids). Up to ``max_instances`` instances
    (a seeded sample beyond it) in minibatches of ``batch_size``; only one minibatch's activations and Gram
    matrices are held. Rows: ``layer``, ``layer_index``, ``column``, ``value``, ``cka``, ``n`` (x–xT pairs
    behind it) and ``points`` (grid points averaged)."""
    sigma = _sigma(kernel, None)
    try:
        modules = _modules(task.model, layers)
    except ValueError as err:
        raise AnalysisError(f"no layers to compare: {err}") from err
    n = len(task.inputs)
    ids = np.arange(n)
    if n > max_instances:
        ids = np.sort(np.random.default_rng(seed).choice(n, size=max_instances, replace=False))
    if len(ids) < 4:
        raise AnalysisError(
            f"CKA needs at least 4 instances; got {len(ids)} of {n} (max_instances = {max_instances})"
        )
    points = list(range(len(grid))) if points is None else sorted({int(p) for p in points})
    chunks = [ids[rows] for rows in _batches(len(ids), batch_size)]
    per_point = {p: MinibatchCKA(kernel, sigma) for p in points}
    total, done = len(chunks) * len(points), 0
    for chunk in chunks:
        x = task.inputs[torch.as_tensor(chunk)]
        clean = _capture(task.model, modules, model_inputs(grid, task.frontend, x, chunk, seed))
        k_clean = [gram(a, kernel, sigma) for a in clean.values()]
        for p, acc in per_point.items():
            xt = model_inputs(grid, task.frontend, x, chunk, seed, point=p)
            acts = _capture(task.model, modules, xt)
            acc.add_grams(k_clean, [gram(a, kernel, sigma) for a in acts.values()])
            done += 1
            if progress:
                progress(done / total)
    rows = []
    for column, transform in zip(grid.columns, grid.transforms, strict=True):
        for value in transform.values:
            at = [p for p in points if grid[p].values[column] == value]
            if not at:
                continue
            mean = np.mean([per_point[p].value() for p in at], axis=0)
            pairs = sum(per_point[p].n for p in at)
            for index, (name, v) in enumerate(zip(modules, mean, strict=True)):
                rows.append({"layer": name, "layer_index": index, "column": column, "value": float(value),
                             "cka": float(v), "n": pairs, "points": len(at)})  # fmt: skip
    return pd.DataFrame(rows)


def departures(table: pd.DataFrame, threshold: float = DEPARTURE) -> pd.DataFrame:
    """Per parameter of a :func:`transform_cka` table: its strongest value (the lowest CKA at the last layer),
    and the first layer where CKA at that value falls below ``threshold`` (``layer`` None when none does)."""
    rows = []
    for column, part in table.groupby("column", sort=False):
        last = part[part.layer_index == part.layer_index.max()]
        value = last.value.iloc[int(np.nanargmin(last.cka.to_numpy()))] if last.cka.notna().any() else np.nan
        at = part[part.value == value].sort_values("layer_index")
        below = at[at.cka < threshold]
        first = below.iloc[0] if len(below) else None
        rows.append({"column": column, "value": value, "layer": None if first is None else first.layer,
                     "layer_index": None if first is None else int(first.layer_index),
                     "cka": None if first is None else float(first.cka),
                     "last_cka": float(at.cka.iloc[-1]) if len(at) else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def departure_sentence(table: pd.DataFrame, threshold: float = DEPARTURE) -> str:
    """One sentence naming, per parameter, the first layer where CKA falls below ``threshold`` at its
    strongest value."""
    n_layers = table.layer_index.nunique()
    parts = []
    for r in departures(table, threshold).itertuples():
        at = f"{r.column} = {format_value(r.value)}"
        if pd.isna(r.layer_index):  # no layer falls below (None becomes NaN beside the columns that have one)
            parts.append(f"at {at} no layer falls below {threshold:g} (last layer {r.last_cka:.2f})")
        else:
            parts.append(f"at {at} CKA first falls below {threshold:g} at {r.layer} "
                         f"(layer {int(r.layer_index) + 1} of {n_layers}, CKA {r.cka:.2f})")  # fmt: skip
    return "At each parameter's strongest value (lowest CKA at the last layer): " + "; ".join(parts) + "."


class CKAStep(TableStep):
    """Representation similarity per layer between clean inputs and their transformed versions
    (:func:`transform_cka`), stored as one table."""

    name = "cka"
    title = "Representation similarity (CKA)"
    command = "cka"
    needs = frozenset({"model"})
    settings = {"max_instances": 200, "batch_size": 64, "kernel": "linear"}
    files = ("cka.parquet",)

    def compute(self, ctx: StepContext, settings, progress):
        task = ctx.task()
        return transform_cka(task, ctx.run.grid, int(ctx.run.config.get("seed", 0)), progress=progress,
                             max_instances=int(settings["max_instances"]), batch_size=int(settings["batch_size"]),
                             kernel=str(settings["kernel"]))  # fmt: skip

    def note(self, table):
        first = table.iloc[0]
        return (f"minibatch CKA (unbiased HSIC) of clean x vs xT over {table.layer_index.nunique()} layers; "
                f"{int(first.n) // int(first.points)} instances per grid point; per parameter value, the mean over "
                "the grid points at that value")  # fmt: skip


register(CKAStep())
