"""KL-LUCB (Kaufmann and Kalyanakrishnan, "Information Complexity in Bandit Subset Selection", COLT 2013): the
``top`` arms of highest mean among Bernoulli arms, to within ε at confidence 1 − δ, with confidence bounds from
the Kullback-Leibler divergence (tighter than Hoeffding's near 0 and 1, where anchors' precisions live), and the
check that one arm's mean clears a target (:func:`clears`). The anchors search (:mod:`proactiv.analysis.anchor`)
and its metadata conditions (:mod:`proactiv.analysis.anchor_metadata`) use them as the anchors paper does, with
its constants.
"""

from __future__ import annotations

import math

import numpy as np

#: the constants of the confidence radius β(t) = log(k·n·t^α/δ) of KL-LUCB, as in the anchors paper
_K, _ALPHA = 405.5, 1.1


def kl_bernoulli(p: np.ndarray | float, q: np.ndarray | float) -> np.ndarray:
    """The Kullback-Leibler divergence KL(Bernoulli(p) ‖ Bernoulli(q))."""
    p = np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)
    q = np.clip(np.asarray(q, float), 1e-12, 1 - 1e-12)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def kl_upper(p: np.ndarray | float, level: np.ndarray | float, steps: int = 30) -> np.ndarray:
    """The largest q ≥ p with KL(p ‖ q) ≤ ``level`` (bisection): an upper confidence bound on a Bernoulli mean
    observed as ``p`` when ``level`` = β/n."""
    p, level = np.broadcast_arrays(np.asarray(p, float), np.asarray(level, float))
    lo, hi = p.copy(), np.ones_like(p)
    for _ in range(steps):
        mid = (lo + hi) / 2
        over = kl_bernoulli(p, mid) > level
        hi, lo = np.where(over, mid, hi), np.where(over, lo, mid)
    return hi


def kl_lower(p: np.ndarray | float, level: np.ndarray | float, steps: int = 30) -> np.ndarray:
    """The smallest q ≤ p with KL(p ‖ q) ≤ ``level``: the matching lower confidence bound."""
    p, level = np.broadcast_arrays(np.asarray(p, float), np.asarray(level, float))
    lo, hi = np.zeros_like(p), p.copy()
    for _ in range(steps):
        mid = (lo + hi) / 2
        over = kl_bernoulli(p, mid) > level
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    return lo


def beta(arms: int, t: int, delta: float) -> float:
    """The exploration rate β(t) of KL-LUCB for ``arms`` arms after round ``t`` at confidence 1 − ``delta``."""
    temp = math.log(_K * arms * max(t, 1) ** _ALPHA / delta)
    return temp + math.log(temp)


def kl_lucb(pull, stats, top: int = 1, delta: float = 0.05, epsilon: float = 0.1, batch: int = 32,
            budget: int = 20_000) -> np.ndarray:  # fmt: skip
    """The ``top`` arms of highest mean, to within ``epsilon`` at confidence 1 − ``delta`` (KL-LUCB).

    ``stats()`` gives the samples and the ones seen so far per arm (every arm sampled at least once);
    ``pull(arm, k)`` draws ``k`` more Bernoulli outcomes of ``arm`` (they may count for other arms too). Each
    round pulls the chosen arm of lowest lower bound and the other arm of highest upper bound, until the two
    bounds are within ``epsilon`` or ``budget`` samples have been drawn. Returns the chosen arms' indices.
    """
    n, hits = stats()
    arms = len(n)
    top = min(top, arms)
    if top == arms:
        return np.arange(arms)
    spent, t = 0, 1
    while True:
        means = hits / n
        order = np.argsort(-means, kind="stable")
        chosen, rest = order[:top], order[top:]
        level = beta(arms, t, delta) / n
        upper, lower = kl_upper(means, level), kl_lower(means, level)
        ut = rest[np.argmax(upper[rest])]
        lt = chosen[np.argmin(lower[chosen])]
        if upper[ut] - lower[lt] <= epsilon or spent >= budget:
            return chosen
        pull(ut, batch)
        pull(lt, batch)
        n, hits = stats()
        spent, t = spent + 2 * batch, t + 1


def clears(stats, pull, left, target: float, delta: float, epsilon: float, batch: int, arms: int,
           rounds: int = 40) -> bool:  # fmt: skip
    """Whether one arm's mean clears ``target``: sample it until its mean is known to lie above ``target`` −
    ``epsilon`` or below ``target`` + ``epsilon`` (the anchors paper's precision check); True when its mean
    clears the target and its lower bound clears ``target`` − ``epsilon``.

    ``stats()`` gives the arm's samples and successes so far (at least one sample), ``pull(k)`` draws ``k`` more,
    ``left()`` how many the budget still allows; ``arms`` is how many arms were compared (it widens the bounds).
    """
    lower, mean = 0.0, 0.0
    for t in range(1, rounds + 1):
        n, hits = stats()
        mean, level = hits / n, beta(arms, t, delta) / n
        lower, upper = float(kl_lower(mean, level)), float(kl_upper(mean, level))
        if (mean >= target and lower >= target - epsilon) or (mean < target and upper < target + epsilon):
            break
        if left() <= 0:
            return False
        pull(batch)
    return bool(mean >= target and lower >= target - epsilon)
