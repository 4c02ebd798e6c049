"""Metadata conditions of an anchor: values of the instance's own metadata (speaker, engine, gender …) under which
its rule over the transform parameters holds for the other instances of the run that share them.

An anchor is found for one record, and an instance's metadata is fixed: over that instance alone a condition
such as ``meta.gender = female`` is always met and says nothing. What it can say is how far the rule reaches.
With it, the rule's precision is measured over the run's instances that share the value, each sampled under the
rule's parameter ranges: the anchors paper's perturbation distribution with the instance itself among the
perturbed features, a neighbour being another instance of the run. So "fails whenever audio_noise.snr_db ≤ 6 and
meta.gender = female" claims that every clip of a female speaker fails at those SNRs, not only this one.

The search asks first whether the rule holds for every instance (no condition needed), then for the instances
sharing one value, then two; at the first size where some do, the set reaching the most instances wins. When
none holds (or the budget runs out first), the anchor stays the record's own: its rule is checked for its
instance alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from proactiv.analysis.bandit import clears, kl_lucb

#: a numeric metadata column with more distinct values than this measures something (a rate, a pitch): it gives
#: no condition unless named
CATEGORIES = 12
#: the most metadata conditions in one rule
MOST = 2


@dataclass(frozen=True)
class MetaCondition:
    """``column = value``: the instance's own value of a metadata column (``meta.*``), shared by ``instances``
    of the run's instances (the record's own among them)."""

    column: str
    value: str
    instances: int

    def text(self) -> str:
        return f"{self.column} = {self.value}"


@dataclass(frozen=True)
class Reach:
    """Where a rule was shown to hold beyond its record: the ``conditions`` (none: every instance) met by
    ``instances`` instances, and the ``samples`` drawn over them of which ``hits`` kept the record's outcome."""

    conditions: tuple[MetaCondition, ...]
    instances: int
    samples: int
    hits: int

    @property
    def precision(self) -> float:
        return self.hits / max(self.samples, 1)


def _labels(metadata: pd.DataFrame, name: str) -> pd.Series:
    return metadata[name].astype(str).where(metadata[name].notna())


def metadata_conditions(
    metadata: pd.DataFrame | None, instance: int, columns: bool | Sequence[str] = True
) -> list[MetaCondition]:
    """The candidate conditions of ``instance``: its value in each metadata column (``columns``: True for every
    categorical one, or their names, with or without ``meta.``), kept when some but not all other instances
    share it (a value of its own or of everyone's gives no reach). An unknown column is a ``ValueError``."""
    if columns is False:
        return []
    named = columns is not True
    if metadata is None or metadata.empty:
        if named and columns:
            raise ValueError(f"metadata columns {list(columns)}: this run keeps no instance metadata")
        return []
    wanted = [c.removeprefix("meta.") for c in columns] if named else list(metadata.columns)
    unknown = [c for c in wanted if c not in metadata.columns]
    if unknown:
        raise ValueError(
            f"metadata columns {unknown}: not in the run's metadata ({', '.join(f'meta.{c}' for c in metadata)})"
        )
    out = []
    for name in wanted:
        labels = _labels(metadata, name)
        numeric = pd.api.types.is_numeric_dtype(metadata[name])
        if not named and numeric and metadata[name].nunique() > CATEGORIES:
            continue
        own = labels.iloc[instance]
        shared = int((labels == own).sum()) if isinstance(own, str) else 0
        if 1 < shared < len(labels):
            out.append(MetaCondition(f"meta.{name}", own, shared))
    return out


class _Neighbours:
    """Samples of a rule over sets of instances: each arm draws an instance uniformly from its set and parameter
    values from the rule (``draw``), and counts whether the model's outcome is the record's."""

    def __init__(self, studio, fails: bool, draw: Callable[[int], list[dict]], rng: np.random.Generator,
                 budget: int):  # fmt: skip
        self.studio, self.fails, self.draw, self.rng, self.budget = studio, fails, draw, rng, budget
        self.members: list[np.ndarray] = []
        self.n: list[float] = []
        self.hits: list[float] = []
        self.spent = 0

    def add(self, members: np.ndarray) -> int:
        self.members.append(members)
        self.n.append(0.0)
        self.hits.append(0.0)
        return len(self.members) - 1

    def pull(self, arm: int, k: int) -> None:
        who = self.rng.choice(self.members[arm], k)
        values = self.draw(k)
        same = np.zeros(k, bool)
        for i in np.unique(who):  # the studio evaluates one instance's values together
            at = np.flatnonzero(who == i)
            right, _ = self.studio.outcomes(int(i), [values[j] for j in at])
            same[at] = right == (not self.fails)
        self.n[arm] += k
        self.hits[arm] += float(same.sum())
        self.spent += k

    def stats(self, arms: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return np.array([self.n[a] for a in arms]), np.array([self.hits[a] for a in arms])

    @property
    def left(self) -> int:
        return self.budget - self.spent


def reach(
    studio,
    fails: bool,
    draw: Callable[[int], list[dict]],
    candidates: list[MetaCondition],
    target: float,
    delta: float,
    epsilon: float,
    batch: int,
    budget: int,
    rng: np.random.Generator,
    most: int = MOST,
) -> tuple[Reach | None, int]:
    """How far a record's rule reaches: the fewest metadata conditions (from ``candidates``) under which it holds
    with precision ≥ ``target`` over the run's instances meeting them, the set reaching the most instances
    among those of that size (None: it holds for the record alone, as far as ``budget`` samples show); and the
    samples spent. ``draw(k)`` gives ``k`` parameter vectors under the rule."""
    metadata = studio.task.metadata
    n_instances = studio.n_instances
    everyone = np.arange(n_instances)
    meets = {c: everyone[(_labels(metadata, c.column.removeprefix("meta.")) == c.value).to_numpy()]
             for c in candidates}  # fmt: skip
    arms = _Neighbours(studio, fails, draw, rng, budget)
    tried: set[frozenset] = set()
    for size in range(most + 1):
        pool, members = [], []
        for rule in itertools.combinations(candidates, size):
            if len({c.column for c in rule}) < size:
                continue
            who = _meeting(meets, rule) if rule else everyone
            key = frozenset(who.tolist())
            if len(who) <= 1 or key in tried:  # the record alone, or a set a shorter rule already tried
                continue
            tried.add(key)
            pool.append(rule)
            members.append(arms.add(who))
        for arm in members:
            if arms.left >= batch:
                arms.pull(arm, batch)
        live = [(r, a) for r, a in zip(pool, members, strict=True) if arms.n[a] > 0]
        best: tuple | None = None
        while live and arms.left > 0:
            ids = [a for _, a in live]
            pick = kl_lucb(lambda j, k, ids=ids: arms.pull(ids[j], k), lambda ids=ids: arms.stats(ids),
                           top=1, delta=delta, epsilon=epsilon, batch=batch, budget=arms.left)[0]  # fmt: skip
            rule, arm = live[pick]
            held = clears(lambda arm=arm: (arms.n[arm], arms.hits[arm]), lambda k, arm=arm: arms.pull(arm, k),
                          lambda: arms.left, target, delta, epsilon, batch, len(live))  # fmt: skip
            if not held:
                break  # the most precise left falls short: the rest do too
            if best is None or len(arms.members[arm]) > len(arms.members[best[1]]):
                best = (rule, arm)
            wider = len(arms.members[best[1]])
            live = [(r, a) for r, a in live if a != arm and len(arms.members[a]) > wider]
        if best is not None:
            rule, arm = best
            found = Reach(tuple(rule), len(arms.members[arm]), int(arms.n[arm]), int(arms.hits[arm]))
            return found, arms.spent
        if arms.left <= 0:
            break
    return None, arms.spent


def _meeting(meets: dict[MetaCondition, np.ndarray], rule: tuple[MetaCondition, ...]) -> np.ndarray:
    """The instances meeting every condition of ``rule``."""
    who = meets[rule[0]]
    for c in rule[1:]:
        who = np.intersect1d(who, meets[c])
    return who
