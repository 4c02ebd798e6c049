"""Choosing what to label: an unlabelled pool ranked for labelling by strategy, and weak labels from consistency.

After Kang et al., "Model Assertions for Monitoring and Improving ML Models" (MLSys 2020), which uses the
assertions that monitor a model to pick the inputs worth a person's labels: an input an assertion flags is
likely one the model gets wrong. Which assertion's flags are worth labels is not known in advance (one may
flag the model's real errors, another mostly harmless quirks), so the paper learns it with a bandit over
assertions, rewarding an assertion by the reduction in violations its labels bought. Written here because
the method needs the monitor's own assertions and a refit between rounds, which no active-learning library
offers; the baselines are the usual ones.

Strategies (:func:`select`), over a pool described by :class:`PoolScores`:

``random``
    ``budget`` inputs drawn uniformly (seeded).
``uncertainty``
    the inputs with the smallest margin between the model's two most probable classes (or the largest
    entropy of its output).
``assertions``
    :class:`AssertionBandit`: labels spent in rounds; the first round spreads them over the assertions,
    each later one goes to the assertion whose labels reduced its violations most per label so far
    (epsilon-greedy, the paper's exploration), its flagged inputs most severe first.
``weak``
    no person at all: :func:`weak_labels` labels the inputs whose transformed copies agree on a majority
    decision with that decision (the consistency assertion's own evidence).

:func:`proactiv.monitor.labelling_experiment.experiment` measures them. The pool comes from a monitor store
(:meth:`PoolScores.from_steps`), so any model and any stream :func:`proactiv.monitor` runs on can be ranked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

STRATEGIES = ("random", "uncertainty", "assertions", "weak")


# ------------------------------------------------------------------------------------------ the pool
@dataclass(frozen=True)
class PoolScores:
    """What a model and its assertions make of an unlabelled pool, one row per pool input: ``probs`` (N, K)
    the model's posteriors, ``severity`` (N, A) each assertion's severity (0 where it holds), named by
    ``assertions``, and ``versions`` (N, 1 + C) the decision on the input, then on each transformed copy."""

    probs: np.ndarray
    severity: np.ndarray
    assertions: tuple[str, ...]
    versions: np.ndarray

    def __post_init__(self):
        n = len(self.probs)
        if self.probs.ndim != 2 or self.severity.shape != (n, len(self.assertions)):
            raise ValueError(
                f"pool scores: probs {self.probs.shape}, severity {self.severity.shape} for assertions "
                f"{list(self.assertions)}; expected (N, classes) and (N, assertions)"
            )
        if self.versions.ndim != 2 or len(self.versions) != n or self.versions.shape[1] < 1:
            raise ValueError(f"pool scores: versions {self.versions.shape}; expected (N, 1 + copies)")

    def __len__(self) -> int:
        return len(self.probs)

    @property
    def decision(self) -> np.ndarray:
        return self.versions[:, 0]

    @classmethod
    def from_steps(
        cls, steps: pd.DataFrame, class_names: Sequence[str], lags: dict[str, int] | None = None
    ) -> PoolScores:
        """The pool scores of a monitor store's steps (``store.steps``): posteriors ``p.<class>``, severities
        ``a.<name>``, decisions ``decision`` and ``copy.<copy>``. ``lags``: assertions that report a
        violation some steps after the input that caused it (a flicker is known one step after it ended:
        ``{"flicker": 1}``), moved back onto that input."""
        names = [c[2:] for c in steps.columns if c.startswith("a.")]
        severity = steps[[f"a.{n}" for n in names]].to_numpy(np.float64).copy()
        for name, lag in (lags or {}).items():
            if name not in names:
                raise ValueError(f"lags: no assertion {name!r} in these steps (they hold {names})")
            column = severity[:, names.index(name)]
            column[: len(column) - lag] = column[lag:].copy()
            column[len(column) - lag :] = 0.0
        copies = [c for c in steps.columns if c.startswith("copy.")]
        return cls(
            probs=steps[[f"p.{n}" for n in class_names]].to_numpy(np.float64),
            severity=severity,
            assertions=tuple(names),
            versions=steps[["decision", *copies]].to_numpy(np.int64),
        )

    def take(self, rows: np.ndarray) -> PoolScores:
        """The scores of some rows (indices or a mask), in that order."""
        return PoolScores(self.probs[rows], self.severity[rows], self.assertions, self.versions[rows])

    @staticmethod
    def concat(parts: Sequence[PoolScores]) -> PoolScores:
        """Pools one after another; an assertion some part lacks (a stream assertion on independent clips)
        holds there (severity 0)."""
        names = list(dict.fromkeys(a for p in parts for a in p.assertions))
        if len({p.versions.shape[1] for p in parts}) > 1:
            raise ValueError("pool scores: the parts have different numbers of transformed copies")
        severity = []
        for p in parts:
            s = np.zeros((len(p), len(names)))
            for j, a in enumerate(p.assertions):
                s[:, names.index(a)] = p.severity[:, j]
            severity.append(s)
        return PoolScores(np.concatenate([p.probs for p in parts]), np.concatenate(severity), tuple(names),
                          np.concatenate([p.versions for p in parts]))  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """The pool inputs a strategy chose, in the order chosen; ``labels``: weak labels it gives them (None: a
    person labels them); ``rounds``: the assertion bandit's rounds (arm, labels per assertion, reward)."""

    strategy: str
    indices: np.ndarray
    labels: np.ndarray | None = None
    rounds: tuple[dict, ...] = field(default=())


# ------------------------------------------------------------------------------------------ baselines
def margin(probs: np.ndarray) -> np.ndarray:
    """The probability of the most probable class minus the second's (small: the model hesitates)."""
    top = np.sort(probs, axis=1)
    return top[:, -1] - top[:, -2]


def entropy(probs: np.ndarray) -> np.ndarray:
    return -(probs * np.log(np.clip(probs, 1e-12, None))).sum(1)


def check_budget(budget: int, n: int) -> int:
    """``budget`` as an int, refused by name unless a number of labels from 1 to the pool size ``n``."""
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or not 1 <= budget <= n:
        raise ValueError(f"budget = {budget!r}: expected a number of labels from 1 to the pool's {n} inputs")
    return int(budget)


def rank_random(n: int, budget: int, seed: int = 0) -> np.ndarray:
    """``budget`` distinct indices of ``n`` drawn uniformly, reproducibly by ``seed``."""
    return np.random.default_rng(seed).permutation(n)[: check_budget(budget, n)]


def rank_uncertainty(scores: PoolScores, budget: int, measure: str = "margin") -> np.ndarray:
    """The ``budget`` inputs the model is least sure of: smallest ``margin`` or largest ``entropy``."""
    if measure not in ("margin", "entropy"):
        raise ValueError(f"uncertainty measure {measure!r}: expected 'margin' or 'entropy'")
    key = margin(scores.probs) if measure == "margin" else -entropy(scores.probs)
    return np.argsort(key, kind="stable")[: check_budget(budget, len(scores))]


# ------------------------------------------------------------------------------------------ weak labels
def majority(versions: np.ndarray) -> np.ndarray:
    """Per row, the decision more than half of the versions agree on; -1 where none has a majority."""
    out = np.full(len(versions), -1, dtype=np.int64)
    for i, row in enumerate(versions):
        values, counts = np.unique(row, return_counts=True)
        if counts.max() * 2 > len(row):
            out[i] = values[counts.argmax()]
    return out


def weak_labels(scores: PoolScores, budget: int | None = None) -> Selection:
    """Weak labels without a person: the majority decision over each input and its transformed copies, for
    the inputs that have one (the others are skipped). Up to ``budget`` of them (None: all), those whose
    copies disagree most with the input's own decision first (where the label corrects the model, then where
    it confirms a wavering decision), then the least sure."""
    label = majority(scores.versions)
    keep = np.flatnonzero(label >= 0)
    if scores.versions.shape[1] > 1:
        disagree = (scores.versions[:, 1:] != scores.versions[:, :1]).mean(1)
    else:
        disagree = np.zeros(len(scores))
    order = keep[np.lexsort((margin(scores.probs)[keep], -disagree[keep]))]
    if budget is not None:
        order = order[: check_budget(budget, len(scores))]
    return Selection("weak", order, label[order])


# ------------------------------------------------------------------------------------------ the bandit
class AssertionBandit:
    """Labels spent in rounds of ``round_size``, each on the assertion whose labelled inputs reduced its
    violations most per label so far (Kang et al.'s bandit-based active learning).

    Round 1 spreads the labels over every assertion that flags something (in turn, each its most severe
    flagged input). After each round ``refit(labelled indices)`` returns the pool's scores under the model
    retrained with them; an assertion's reward for the round is the drop in the number of inputs it flags
    among those still unlabelled, per label spent on its flags. Every later round goes to one assertion: with
    probability ``epsilon`` a random one (exploration), else the one with the best mean reward (one not yet
    tried first); its flagged inputs most severe first (ties: the smallest margin), the rest of the round
    spread as in round 1 when it has too few. When no assertion has ever reduced its violations, the round is
    spread; when none flags anything unlabelled, inputs are drawn at random. Without ``refit`` every round is
    spread.
    """

    def __init__(self, round_size: int = 50, epsilon: float = 0.1, seed: int = 0):
        if isinstance(round_size, bool) or not isinstance(round_size, int) or round_size < 1:
            raise ValueError(f"round_size = {round_size!r}: expected a positive number of labels per round")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon = {epsilon!r}: expected a probability in [0, 1]")
        self.round_size, self.epsilon, self.seed = round_size, float(epsilon), seed

    def select(
        self, scores: PoolScores, budget: int, refit: Callable[[np.ndarray], PoolScores] | None = None
    ) -> Selection:
        budget = check_budget(budget, len(scores))
        rng = np.random.default_rng(self.seed)
        names, arms = scores.assertions, len(scores.assertions)
        taken = np.zeros(len(scores), dtype=bool)
        chosen: list[int] = []
        reward_sum, tried = np.zeros(arms), np.zeros(arms)
        rounds, current = [], scores
        while len(chosen) < budget:
            size = min(self.round_size, budget - len(chosen))
            arm, why = self._arm(current, taken, reward_sum, tried, rng, refit is not None)
            picks, spent = self._draw(current, taken, arm, size, rng)
            chosen += picks
            taken[picks] = True
            record = {"round": len(rounds) + 1, "arm": names[arm] if arm is not None else None, "why": why,
                      "spent": dict(zip(names, spent.astype(int).tolist(), strict=True))}  # fmt: skip
            if refit is not None and len(chosen) < budget:
                before = self._violations(current, taken)
                current = refit(np.asarray(chosen))
                drop = before - self._violations(current, taken)
                used = spent > 0
                reward_sum[used] += drop[used] / spent[used]
                tried[used] += 1
                record["reward"] = {names[a]: float(drop[a] / spent[a]) for a in np.flatnonzero(used)}
            rounds.append(record)
        return Selection("assertions", np.asarray(chosen), None, tuple(rounds))

    @staticmethod
    def _violations(scores: PoolScores, taken: np.ndarray) -> np.ndarray:
        """Per assertion, how many inputs not labelled yet it flags."""
        return (scores.severity[~taken] > 0).sum(0).astype(np.float64)

    def _arm(self, scores, taken, reward_sum, tried, rng, learning: bool) -> tuple[int | None, str]:
        live = np.flatnonzero((scores.severity[~taken] > 0).any(0))
        if not learning or not tried.any() or len(live) == 0:
            return None, "spread"
        if rng.random() < self.epsilon:
            return int(rng.choice(live)), "explore"
        value = np.where(tried[live] > 0, reward_sum[live] / np.maximum(tried[live], 1), np.inf)
        if value.max() <= 0:
            return None, "spread (no assertion's labels reduced its violations)"
        return int(live[np.argmax(value)]), "best" if np.isfinite(value.max()) else "untried"

    @staticmethod
    def _draw(scores, taken, arm, size, rng) -> tuple[list[int], np.ndarray]:
        """``size`` inputs: the arm's flagged ones most severe first, the rest spread over the assertions in
        turn, the rest at random; and how many of them each assertion's flags paid for."""
        busy = taken.copy()
        uncertain = margin(scores.probs)
        queues = []
        for a in range(scores.severity.shape[1]):
            flagged = np.flatnonzero(scores.severity[:, a] > 0)
            order = np.lexsort((uncertain[flagged], -scores.severity[flagged, a]))
            queues.append(list(flagged[order]))
        picks, spent = [], np.zeros(len(queues))

        def next_of(a: int) -> int | None:
            while queues[a] and busy[queues[a][0]]:
                queues[a].pop(0)
            return queues[a].pop(0) if queues[a] else None

        while arm is not None and len(picks) < size and (i := next_of(arm)) is not None:
            picks.append(int(i))
            busy[i], spent[arm] = True, spent[arm] + 1
        while len(picks) < size:
            before = len(picks)
            for a in range(len(queues)):
                if len(picks) < size and (i := next_of(a)) is not None:
                    picks.append(int(i))
                    busy[i], spent[a] = True, spent[a] + 1
            if len(picks) == before:  # no assertion flags anything left
                rest = rng.permutation(np.flatnonzero(~busy))[: size - len(picks)]
                picks += [int(i) for i in rest]
                break
        return picks, spent


# ------------------------------------------------------------------------------------------ one verb
def select(
    strategy: str,
    scores: PoolScores,
    budget: int,
    *,
    seed: int = 0,
    refit: Callable[[np.ndarray], PoolScores] | None = None,
    measure: str = "margin",
    round_size: int = 50,
    epsilon: float = 0.1,
) -> Selection:
    """The pool inputs ``strategy`` (one of :data:`STRATEGIES`) would have labelled with ``budget`` labels;
    ``weak`` returns up to ``budget`` inputs with their weak labels. ``refit`` feeds the assertion bandit
    (see :class:`AssertionBandit`).

    Examples
    --------
    >>> import numpy as np
    >>> from proactiv.monitor.labelling import PoolScores, select
    >>> probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3]])
    >>> pool = PoolScores(probs, np.zeros((3, 0)), (), probs.argmax(1)[:, None])
    >>> select("uncertainty", pool, 2).indices.tolist()
    [1, 2]
    """
    if strategy == "random":
        return Selection(strategy, rank_random(len(scores), budget, seed))
    if strategy == "uncertainty":
        return Selection(strategy, rank_uncertainty(scores, budget, measure))
    if strategy == "assertions":
        return AssertionBandit(round_size, epsilon, seed).select(scores, budget, refit)
    if strategy == "weak":
        return weak_labels(scores, budget)
    raise ValueError(f"strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
