"""Assertions over a stream: each looks at a window of recent steps (inputs' energy, outputs, decisions, the
decisions on transformed copies) and returns a severity for the current step, 0 where it holds.

After Kang et al., "Model Assertions for Monitoring and Improving ML Models" (MLSys 2020), which flags a
video detector's flickering boxes and inconsistent outputs at run time; here for classifiers over streams.
A violation is reported at the step where it becomes known (a flicker when the decision comes back, i.e.
one step after it ended), so an assertion only ever reads the past and can run live.

Built in: :class:`Flicker`, :class:`Alternation`, :class:`Refractory`, :class:`Consistency`,
:class:`EnergyFloor`. Your own, in a few lines, with the :func:`assertion` decorator::

    @assertion(lookback_s=0.5)
    def loud_unknown(recent):
        return float(recent.decision[-1] == 0 and recent.energy_db[-1] > -10)

or as a subclass of :class:`Assertion` with ``name``, ``check(recent)`` and, when it looks back,
``lookback_s``. Severities are stored per step in the monitor's store (``a.<name>``), so a ranking of windows
for labelling can read them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from proactiv.monitor.streams import positive_seconds
from proactiv.transforms import BatchGenerator, Transform, derive_seed
from proactiv.transforms.audio import Shift
from proactiv.transforms.generic import Gain


# ------------------------------------------------------------------------------------------ copies
@dataclass(frozen=True)
class Copy:
    """One transformed copy of every window: a package transform at one parameter value (random transforms
    draw from a generator seeded by (monitor seed, step, copy position), so a resumed monitor draws the same)."""

    transform: Transform
    value: float

    @property
    def name(self) -> str:
        return f"{self.transform.name}{self.value:+g}"

    def apply(self, x: torch.Tensor, steps: np.ndarray, seed: int, position: int) -> torch.Tensor:
        generator = None
        if self.transform.random:
            generator = BatchGenerator([derive_seed(seed, int(s), position) for s in steps])
        return self.transform.apply(x, self.value, generator)

    def spec(self) -> dict:
        return {"transform": self.transform.spec(), "value": self.value}


#: the small changes a keyword decision should not depend on: 3 dB louder, 10 ms later
DEFAULT_COPIES = (Copy(Gain(), 3.0), Copy(Shift(), 10.0))


# ------------------------------------------------------------------------------------------ recent steps
@dataclass(frozen=True)
class Recent:
    """The steps an assertion sees, oldest first, the current step last: global ``step`` indices, window
    ``start_s``/``end_s``, ``decision`` (class index), ``confidence`` (its probability), ``posteriors``
    (steps, classes), ``energy_db`` (mean power of the input, dB), ``copies`` (steps, copies: the decision on
    each transformed copy, named by ``copy_names``), ``class_names`` and ``hop_s``."""

    step: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    decision: np.ndarray
    confidence: np.ndarray
    posteriors: np.ndarray
    energy_db: np.ndarray
    copies: np.ndarray
    copy_names: tuple[str, ...]
    class_names: tuple[str, ...]
    hop_s: float

    def changed(self, i: int = -1) -> bool:
        """Whether the decision at position ``i`` differs from the step before (False at the stream's start)."""
        i = i % len(self.step)
        return i > 0 and self.decision[i] != self.decision[i - 1]


def resolve_classes(classes: Sequence[str | int] | None, class_names: Sequence[str]) -> frozenset[int] | None:
    """Class names or indices → indices (None: every class); an unknown name is refused by name."""
    if classes is None:
        return None
    out = set()
    for c in classes:
        if isinstance(c, str):
            if c not in class_names:
                raise ValueError(f"class {c!r}: not one of the model's classes {list(class_names)}")
            out.add(list(class_names).index(c))
        else:
            if not 0 <= int(c) < len(class_names):
                raise ValueError(f"class index {c}: outside 0..{len(class_names) - 1}")
            out.add(int(c))
    return frozenset(out)


# ------------------------------------------------------------------------------------------ the base
class Assertion:
    """An assertion over recent steps. Subclasses set ``name`` and implement :meth:`check`; ``lookback_s``:
    how far back it reads (its :class:`Recent` holds at least that much, plus the step before); ``copies``:
    the transformed copies it needs; ``classes``: the class names or indices it watches (None: all)."""

    name: str = ""
    lookback_s: float = 0.0
    copies: tuple[Copy, ...] = ()
    classes: Sequence[str | int] | None = None

    def bind(self, class_names: Sequence[str]) -> None:
        """Resolve ``classes`` against the model's class names (done by the monitor before the first step)."""
        self._watched = resolve_classes(self.classes, class_names)

    def watches(self, cls: int) -> bool:
        watched = getattr(self, "_watched", None)
        return watched is None or int(cls) in watched

    def steps_back(self, hop_s: float) -> int:
        """How many steps the :class:`Recent` it gets must hold (the current one included)."""
        return math.ceil(self.lookback_s / hop_s - 1e-9) + 2

    def check(self, recent: Recent) -> float:
        raise NotImplementedError

    def spec(self) -> dict:
        """What the store's header records (a resumed monitor refuses other assertions)."""
        return {"name": self.name, "type": type(self).__name__, "lookback_s": self.lookback_s,
                "classes": None if self.classes is None else list(self.classes),
                "copies": [c.name for c in self.copies], **self.options()}  # fmt: skip

    def options(self) -> dict:
        return {}


class Flicker(Assertion):
    """A decision that lasted fewer than ``hops`` steps between two others: severity 1 − length / hops, at
    the step after it (when it is known to have ended). The stream's first decision is not judged."""

    name = "flicker"

    def __init__(self, hops: int = 3, classes: Sequence[str | int] | None = None):
        if isinstance(hops, bool) or not isinstance(hops, int) or hops < 2:
            raise ValueError(
                f"flicker hops = {hops!r}: expected an integer >= 2 (a run shorter than it flickers)"
            )
        self.hops, self.classes = hops, classes

    def steps_back(self, hop_s: float) -> int:
        return self.hops + 1

    def check(self, recent: Recent) -> float:
        if not recent.changed(-1):
            return 0.0
        d, n = recent.decision, len(recent.decision)
        length = 1
        while length < n - 1 and d[n - 2 - length] == d[n - 2]:
            length += 1
        begins = n - 1 - length  # position where the run began
        if length >= self.hops or recent.step[begins] == 0 or not self.watches(d[n - 2]):
            return 0.0  # long enough, or the stream began with it (no decision before to flicker from)
        return 1.0 - length / self.hops

    def options(self) -> dict:
        return {"hops": self.hops}


class Alternation(Assertion):
    """Two different watched classes decided within ``within_s`` seconds: 1 at the step the second begins."""

    name = "alternation"

    def __init__(self, within_s: float = 1.0, classes: Sequence[str | int] | None = None):
        self.lookback_s = positive_seconds("alternation within_s", within_s)
        self.classes = classes

    def check(self, recent: Recent) -> float:
        now = recent.decision[-1]
        if not recent.changed(-1) or not self.watches(now):
            return 0.0
        near = recent.start_s[-1] - recent.start_s < self.lookback_s - 1e-9
        for d in recent.decision[:-1][near[:-1]]:
            if d != now and self.watches(d):
                return 1.0
        return 0.0

    def options(self) -> dict:
        return {"within_s": self.lookback_s}


class Refractory(Assertion):
    """The same watched class beginning twice within its refractory time (``refractory_s``, seconds, or a
    mapping class name → seconds): severity 1 − gap / refractory time at the second beginning."""

    name = "refractory"

    def __init__(
        self, refractory_s: float | dict[str, float] = 1.0, classes: Sequence[str | int] | None = None
    ):
        times = refractory_s if isinstance(refractory_s, dict) else {None: refractory_s}
        self.times = {
            k: positive_seconds(f"refractory_s[{k}]" if k else "refractory_s", v) for k, v in times.items()
        }
        self.lookback_s = max(self.times.values())
        self.classes = classes if classes is not None or None in self.times else list(self.times)

    def bind(self, class_names: Sequence[str]) -> None:
        super().bind(class_names)
        self._time = [self.times.get(n, self.times.get(None, 0.0)) for n in class_names]

    def check(self, recent: Recent) -> float:
        now = recent.decision[-1]
        quiet = self._time[int(now)]
        if not recent.changed(-1) or not self.watches(now) or quiet <= 0:
            return 0.0
        for i in range(len(recent.step) - 2, 0, -1):
            gap = recent.start_s[-1] - recent.start_s[i]
            if gap >= quiet - 1e-9:
                break
            if recent.decision[i] == now and recent.changed(i):
                return 1.0 - gap / quiet
        return 0.0

    def options(self) -> dict:
        return {"refractory_s": {str(k) if k else "*": v for k, v in self.times.items()}}


class Consistency(Assertion):
    """The decision should not change under small transforms (``copies``, by default 3 dB louder and 10 ms
    later): severity = the share of copies decided otherwise, counted where either decision is watched."""

    name = "consistency"

    def __init__(self, copies: Sequence[Copy] = DEFAULT_COPIES, classes: Sequence[str | int] | None = None):
        if not copies:
            raise ValueError("consistency: copies is empty; give at least one Copy(transform, value)")
        self.copies, self.classes = tuple(copies), classes

    def steps_back(self, hop_s: float) -> int:
        return 1

    def check(self, recent: Recent) -> float:
        now = recent.decision[-1]
        own = [recent.copy_names.index(c.name) for c in self.copies]
        seen = recent.copies[-1, own]
        differ = [(c != now) and (self.watches(now) or self.watches(c)) for c in seen]
        return float(np.mean(differ))


class EnergyFloor(Assertion):
    """A confident watched decision (probability >= ``confidence``) on an input whose mean power is below
    ``floor_db`` (dB; dBFS for waveforms in [-1, 1]): severity = that probability."""

    name = "energy_floor"

    def __init__(
        self, floor_db: float = -50.0, confidence: float = 0.8, classes: Sequence[str | int] | None = None
    ):
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"energy_floor confidence = {confidence!r}: expected a probability in [0, 1]")
        if not math.isfinite(floor_db):
            raise ValueError(f"energy_floor floor_db = {floor_db!r}: expected a finite level in dB")
        self.floor_db, self.confidence, self.classes = float(floor_db), float(confidence), classes

    def steps_back(self, hop_s: float) -> int:
        return 1

    def check(self, recent: Recent) -> float:
        p = float(recent.confidence[-1])
        quiet = recent.energy_db[-1] < self.floor_db
        return p if quiet and p >= self.confidence and self.watches(recent.decision[-1]) else 0.0

    def options(self) -> dict:
        return {"floor_db": self.floor_db, "confidence": self.confidence}


# ------------------------------------------------------------------------------------------ your own
class FunctionAssertion(Assertion):
    """An assertion made of a function ``check(recent) -> severity`` (see :func:`assertion`)."""

    def __init__(
        self, check: Callable[[Recent], float], name: str, lookback_s: float, copies: Sequence[Copy]
    ):
        self._check, self.name, self.lookback_s, self.copies = check, name, float(lookback_s), tuple(copies)

    def check(self, recent: Recent) -> float:
        return float(self._check(recent))


def assertion(
    fn: Callable[[Recent], float] | None = None,
    *,
    name: str | None = None,
    lookback_s: float = 0.0,
    copies: Sequence[Copy] = (),
):
    """Decorator: a function of :class:`Recent` returning a severity (0 holds) becomes an :class:`Assertion`
    named after it; ``lookback_s`` says how far back it reads, ``copies`` which transformed copies it needs."""

    def wrap(f: Callable[[Recent], float]) -> FunctionAssertion:
        return FunctionAssertion(f, name or f.__name__, lookback_s, copies)

    return wrap(fn) if fn is not None else wrap
