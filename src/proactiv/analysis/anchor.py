"""Anchors: a local rule over conditions a person reads — ranges of the run's transform parameters — under which
one record's outcome (the model right or wrong on it) holds with high precision (Ribeiro, Singh and Guestrin,
"Anchors: High-Precision Model-Agnostic Explanations", AAAI 2018), and beside it a local linear surrogate of the
outcome over the same parameters (LIME, Ribeiro et al. 2016).

Samples are parameter vectors drawn uniformly over the span the grid swept (between grid values too) and
evaluated through the what-if studio (:meth:`proactiv.whatif.Studio.outcomes`), the sweep's own transform
path. A condition is an interval of one parameter around the record's value, bounded by the grid values or
the quintiles of the span; coverage is therefore exact (the share of the box a rule keeps). Among candidate
rules, the KL-LUCB bandit (:mod:`proactiv.analysis.bandit`, as the anchors paper uses it) picks the most
precise with the fewest samples. Written here rather than taken from ``anchor-exp`` or ``alibi``: both
discretise tabular features into quartile bins of a training set, while our conditions are ranges over a
continuous space sampled on demand through a model-specific transform path.

    found = anchor("runs/kws-demo", instance=3, point=17)
    found.describe()   # 'fails whenever audio_noise.snr_db ≤ 15 (precision 0.95, coverage 0.80, 272 samples)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from proactiv.analysis.anchor_metadata import MetaCondition, metadata_conditions, reach
from proactiv.analysis.bandit import clears, kl_lucb

#: edges of candidate intervals besides the grid values: this many evenly spaced cuts of each span (its quintiles)
EDGES = 6


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Condition:
    """``low ≤ column ≤ high``; a bound at the edge of the swept span (``span``) is no bound at all. ``below``
    and ``above`` bracket each real bound between the nearest candidate edges on either side of it: where the
    outcome changes, to the resolution of the search."""

    column: str
    low: float
    high: float
    span: tuple[float, float]
    below: tuple[float, float] | None = None  # (edge under low, edge over low) when low bounds
    above: tuple[float, float] | None = None  # (edge under high, edge over high) when high bounds

    @property
    def share(self) -> float:
        """The share of the span the condition keeps."""
        width = self.span[1] - self.span[0]
        return 1.0 if width <= 0 else (self.high - self.low) / width

    def contains(self, value: float) -> bool:
        """Whether ``value`` meets the condition; a value beyond the span (a clean SNR of +∞) meets one left open
        upward."""
        return self.low <= value <= self.high or (value > self.span[1] and self.high >= self.span[1])

    def text(self) -> str:
        bounded_low, bounded_high = self.below is not None, self.above is not None
        if bounded_low and bounded_high:
            return f"{self.low:.3g} ≤ {self.column} ≤ {self.high:.3g}"
        if bounded_high:
            return f"{self.column} ≤ {self.high:.3g}"
        if bounded_low:
            return f"{self.column} ≥ {self.low:.3g}"
        return f"any {self.column}"


@dataclass(frozen=True)
class LocalSurrogate:
    """A weighted ridge regression of the outcome score (the probability of the desired class) on the parameters
    around the record: ``slopes`` per unit of each parameter, ``fidelity`` its weighted R² on its samples."""

    intercept: float
    slopes: dict[str, float]
    fidelity: float
    samples: int
    kernel_width: float

    def describe(self) -> str:
        terms = ", ".join(
            f"{c} {s:+.3g}/unit" for c, s in sorted(self.slopes.items(), key=lambda kv: -abs(kv[1]))
        )
        return f"locally, score ≈ {self.intercept:.2f} with {terms} (weighted R² {self.fidelity:.2f})"


@dataclass(frozen=True)
class Anchor:
    """One record's anchor: its ``conditions`` (empty: the outcome holds over the whole swept box), under which
    the outcome ``fails`` (the model wrong) or not holds with ``precision`` (estimated on ``precision_samples``
    draws inside the rule; ``valid`` when its KL lower bound clears the target) over a share ``coverage`` of the
    box; ``samples`` is every model evaluation the search made. ``metadata`` conditions and ``instances`` say how
    far the rule reaches: over 1 instance, the record's own alone; over more, the run's instances meeting the
    metadata conditions (every instance when there are none), ``precision`` then measured over them
    (:mod:`proactiv.analysis.anchor_metadata`)."""

    instance: int
    point: int
    values: dict[str, float]
    fails: bool
    conditions: tuple[Condition, ...]
    precision: float
    precision_samples: int
    coverage: float
    samples: int
    target: float
    valid: bool
    surrogate: LocalSurrogate | None = None
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    metadata: tuple[MetaCondition, ...] = ()
    instances: int = 1

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.conditions)

    def describe(self) -> str:
        verb = "fails" if self.fails else "passes"
        texts = [c.text() for c in self.conditions] + [m.text() for m in self.metadata]
        rule = " and ".join(texts) or "any value of the swept parameters"
        hedge = "" if self.valid else f", under the {self.target:.2f} target"
        scope = ", for any instance of the run" if self.instances > 1 and not self.metadata else ""
        over = f" over {self.instances} instances" if self.instances > 1 else ""
        return (
            f"{verb} whenever {rule}{scope} (precision {self.precision:.2f}{over}{hedge}, coverage "
            f"{self.coverage:.2f}, {self.samples} samples)"
        )


# ---------------------------------------------------------------------------------------------- the search
class _Space:
    """The box the samples come from (each parameter's finite grid span), the candidate intervals, and every
    sample drawn so far with the rule it was drawn under.

    A sample drawn under rule S counts for rule R when it satisfies R and S is no narrower than R on any
    parameter: given that it landed in R, it is then uniform over R, as a draw under R would be. This is how the
    anchors paper's own code reuses samples across candidates; it spares most of the model evaluations.
    """

    def __init__(self, parameters, values: dict[str, float], studio, instance: int, fails: bool,
                 rng: np.random.Generator, budget: int):  # fmt: skip
        self.rng, self.studio, self.instance, self.fails, self.budget = rng, studio, instance, fails, budget
        self.spans: dict[str, tuple[float, float]] = {}
        self.edges: dict[str, np.ndarray] = {}
        self.values = values
        for p in parameters:
            finite = [v for v in p.grid_values if math.isfinite(v)]
            if not finite:
                continue
            lo, hi = max(min(finite), p.low), min(max(finite), p.high)
            self.spans[p.column] = (lo, hi)
            self.edges[p.column] = np.unique(np.r_[finite, np.linspace(lo, hi, EDGES)].clip(lo, hi))
        self.columns = tuple(c for c, (lo, hi) in self.spans.items() if hi > lo)
        d = len(self.columns)
        self.x, self.from_low, self.from_high = np.empty((0, d)), np.empty((0, d)), np.empty((0, d))
        self.same = np.empty(0, bool)

    def own(self, column: str) -> float:
        lo, hi = self.spans[column]
        return float(np.clip(self.values[column], lo, hi))

    def intervals(self, column: str) -> list[Condition]:
        """Every interval between candidate edges that holds the record's own value, the whole span left out."""
        edges, v, span = self.edges[column], self.own(column), self.spans[column]
        out = []
        for a in edges[edges <= v]:
            for b in edges[edges >= v]:
                if (a, b) == span or a == b:
                    continue
                out.append(Condition(column, float(a), float(b), span, self._bracket(edges, a, span),
                                     self._bracket(edges, b, span)))  # fmt: skip
        return out

    @staticmethod
    def _bracket(edges: np.ndarray, bound: float, span) -> tuple[float, float] | None:
        if bound in span:
            return None
        k = int(np.searchsorted(edges, bound))
        return float(edges[k - 1]), float(edges[k + 1])

    def box(self, rule: tuple[Condition, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The rule's lower and upper bound per parameter (the span where it sets none)."""
        held = {c.column: c for c in rule}
        low = np.array([held[c].low if c in held else self.spans[c][0] for c in self.columns])
        high = np.array([held[c].high if c in held else self.spans[c][1] for c in self.columns])
        return low, high

    def draw(self, rule: tuple[Condition, ...], k: int) -> list[dict[str, float]]:
        """``k`` parameter vectors uniform over the box restricted to ``rule``; parameters the box does not vary
        stay at the record's own values."""
        low, high = self.box(rule)
        x = self.rng.uniform(low, high, (k, len(self.columns)))
        return [{**self.values, **dict(zip(self.columns, map(float, row), strict=True))} for row in x]

    def pull(self, rules: list[tuple[Condition, ...]], k: int) -> None:
        """``k`` samples under each of ``rules``, evaluated by the model together, kept with their rules."""
        if not rules:
            return
        drawn = [v for r in rules for v in self.draw(r, k)]
        right, _ = self.studio.outcomes(self.instance, drawn)
        boxes = [self.box(r) for r in rules]
        self.x = np.vstack([self.x, [[v[c] for c in self.columns] for v in drawn]])
        self.from_low = np.vstack([self.from_low, *[np.tile(lo, (k, 1)) for lo, _ in boxes]])
        self.from_high = np.vstack([self.from_high, *[np.tile(hi, (k, 1)) for _, hi in boxes]])
        self.same = np.r_[self.same, right == (not self.fails)]

    def stats(self, rules: list[tuple[Condition, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """Samples that count for each rule, and how many of them keep the record's outcome."""
        n, hits = np.zeros(len(rules)), np.zeros(len(rules))
        for j, r in enumerate(rules):
            low, high = self.box(r)
            keep = (
                (self.x >= low) & (self.x <= high) & (self.from_low <= low) & (self.from_high >= high)
            ).all(1)
            n[j], hits[j] = keep.sum(), self.same[keep].sum()
        return n, hits

    @property
    def spent(self) -> int:
        return len(self.same)

    @property
    def left(self) -> int:
        return self.budget - self.spent


def _coverage(rule: tuple[Condition, ...]) -> float:
    return float(np.prod([c.share for c in rule])) if rule else 1.0


def anchor(
    run,
    instance: int,
    point: int,
    precision: float = 0.95,
    delta: float = 0.1,
    epsilon: float = 0.15,
    batch: int = 16,
    beam: int = 1,
    max_conditions: int | None = None,
    budget: int = 2000,
    surrogate_samples: int = 300,
    metadata: bool | Sequence[str] = True,
    metadata_budget: int = 600,
    seed: int = 0,
    studio=None,
    device: str = "auto",
) -> Anchor:
    """The anchor of one record (``instance`` at grid ``point``) of a run: the smallest set of parameter ranges
    under which its outcome holds with precision ≥ ``precision`` (at confidence 1 − ``delta``), the widest such,
    and its local linear surrogate. When no rule clears the target, the most precise one found, ``valid`` False.

    Parameters
    ----------
    run : an open run or its directory (rebuilt through :class:`proactiv.whatif.Studio`; pass ``studio`` to
        reuse one already built).
    delta, epsilon : the confidence and tolerance of KL-LUCB and of the precision check (the anchors paper's δ
        and ε; these defaults are those of alibi's implementation).
    batch : samples per pull of a candidate rule (the model sees a pull's samples together).
    beam : rules carried from one number of conditions to the next (the anchors paper's beam search).
    budget : the most model evaluations the search may make, its metadata conditions' included (the surrogate's
        come on top): they dominate the time, from about 0.1 ms each for a vector model to 10 ms for a KWS clip
        under speed and pitch.
    surrogate_samples : samples of the local linear surrogate (0: none).
    metadata : which metadata columns of the instance may become conditions once a rule is found (True: every
        categorical one; a list of names; False: none, the rule is the record's own); with them the rule is
        checked over the other instances sharing the record's values, with at most ``metadata_budget`` of the
        evaluations the rule's search left (:mod:`proactiv.analysis.anchor_metadata` says why the anchor of one
        record reads them so).

    Examples
    --------
    >>> found = anchor("runs/kws-demo", instance=3, point=17)  # doctest: +SKIP
    >>> found.describe()  # doctest: +SKIP
    'fails whenever audio_noise.snr_db ≤ 15 (precision 0.95, coverage 0.80, 272 samples)'
    """
    from proactiv.whatif import Studio  # the studio rebuilds the model: loaded when an anchor is asked for

    if not 0.5 < precision < 1:
        raise ValueError(f"precision = {precision}: expected a target in (0.5, 1)")
    studio = studio if studio is not None else Studio(run, device=device)
    if isinstance(point, bool) or not 0 <= int(point) < len(studio.grid):
        raise ValueError(f"point {point}: run {studio.run.path} has grid points 0 to {len(studio.grid) - 1}")
    values = dict(studio.grid[int(point)].values)
    right, _ = studio.outcomes(instance, [values])
    candidates = metadata_conditions(
        studio.task.metadata, int(instance), metadata
    )  # before the search: a bad name
    fails = not bool(right[0])
    rng = np.random.default_rng([seed, int(instance), int(point)])
    space = _Space(studio.parameters(), values, studio, int(instance), fails, rng, int(budget))
    space.pull([()], 16 * batch)  # the open box first: its samples count for every rule

    best = None
    found_any = False
    kept: list[tuple[Condition, ...]] = [()]
    limit = len(space.columns) if max_conditions is None else min(max_conditions, len(space.columns))
    for _size in range(1, limit + 1):
        pool = []
        for rule in kept:
            used = {c.column for c in rule}
            for column in (c for c in space.columns if c not in used):
                for cond in space.intervals(column):
                    new = tuple(sorted((*rule, cond), key=lambda c: space.columns.index(c.column)))
                    if new not in pool:
                        pool.append(new)
        pool = _fill(space, pool, batch)
        seen: list[tuple[Condition, ...]] = []
        while pool and space.left > 0:
            picks = kl_lucb(lambda arm, k, pool=pool: space.pull([pool[arm]], k), lambda pool=pool: space.stats(pool),
                            top=beam, delta=delta, epsilon=epsilon, batch=batch, budget=space.left)  # fmt: skip
            top = [pool[a] for a in picks]
            seen.extend(r for r in top if r not in seen)
            valid = [r for r in top if _verify(space, r, precision, delta, epsilon, batch, len(pool))]
            if not valid:
                break  # the most precise left fall short: the rest do too
            widest = max(valid, key=_coverage)
            if not found_any or _coverage(widest) > _coverage(best):
                best, found_any = widest, True
            pool = _fill(space, [r for r in pool if r not in top and _coverage(r) > _coverage(best)], batch)
        if found_any:
            break
        seen = seen or pool  # the budget ran out before any rule was chosen: the sampled ones stand in
        n, hits = space.stats(seen)
        ranked = [seen[j] for j in np.argsort(-(hits / np.maximum(n, 1)), kind="stable")]
        if best is None or (len(ranked) and _precision(space, ranked[0]) >= _precision(space, best)):
            best = ranked[0] if ranked else best
        kept = ranked[:beam]
        if space.left <= 0:
            break
    rule = best if best is not None else ()
    n, hits = space.stats([rule])
    valid = found_any or (not space.columns and bool(space.same.all()))
    found, spent = None, 0
    if valid and metadata is not False and studio.n_instances > 1:
        found, spent = reach(studio, fails, lambda k: space.draw(rule, k), candidates, precision, delta, epsilon,
                             batch, min(int(metadata_budget), space.left), rng)  # fmt: skip
    return Anchor(
        int(instance),
        int(point),
        values,
        fails,
        rule,
        found.precision if found else float(hits[0] / max(n[0], 1)),
        found.samples if found else int(n[0]),
        _coverage(rule),
        space.spent + spent,
        float(precision),
        valid,
        _local_surrogate(studio, instance, space, surrogate_samples) if surrogate_samples else None,
        dict(space.spans),
        found.conditions if found else (),
        found.instances if found else 1,
    )


def _precision(space: _Space, rule) -> float:
    n, hits = space.stats([rule])
    return float(hits[0] / max(n[0], 1))


def _fill(space: _Space, pool, batch: int) -> list:
    """Give every rule of ``pool`` at least ``batch`` samples, pulling the widest short ones first (their samples
    count for the narrower rules inside them); the rules that have any once the budget allows no more."""
    for rule in sorted(pool, key=_coverage, reverse=True):
        if space.left <= 0:
            break
        n, _ = space.stats([rule])
        if n[0] < batch:
            space.pull([rule], batch)
    n, _ = space.stats(pool)
    return [r for r, k in zip(pool, n, strict=True) if k > 0]


def _verify(space: _Space, rule, target, delta, epsilon, batch, arms) -> bool:
    """Whether ``rule``'s precision clears ``target`` (:func:`proactiv.analysis.bandit.clears`), sampling it as
    needed."""
    return clears(lambda: tuple(v[0] for v in space.stats([rule])), lambda k: space.pull([rule], k),
                  lambda: space.left, target, delta, epsilon, batch, arms)  # fmt: skip


def _local_surrogate(studio, instance: int, space: _Space, k: int) -> LocalSurrogate | None:
    """LIME over the parameters: samples uniform over the box, weighted by an exponential kernel of their
    span-scaled distance to the record, and a ridge regression of the score on them."""
    from sklearn.linear_model import Ridge

    cols = space.columns
    if not cols:
        return None
    widths = np.array([space.spans[c][1] - space.spans[c][0] for c in cols])
    drawn = space.draw((), k)
    x = np.array([[v[c] for c in cols] for v in drawn])
    _, score = studio.outcomes(instance, drawn)
    z = (x - np.array([space.own(c) for c in cols])) / widths
    # LIME's width is 0.75·√d on standardised features; a side of the unit box has a standard deviation of 0.29
    kernel = 0.75 * 0.29 * math.sqrt(len(cols))
    weights = np.exp(-(z**2).sum(1) / kernel**2)
    model = Ridge(alpha=1e-3).fit(z, score, sample_weight=weights)
    fidelity = float(model.score(z, score, sample_weight=weights))
    return LocalSurrogate(
        float(model.intercept_),
        {c: float(s / w) for c, s, w in zip(cols, model.coef_, widths, strict=True)},
        fidelity if math.isfinite(fidelity) else 0.0,
        int(k),
        kernel,
    )
