"""Corrective actions: rules that change a stream's decisions on the fly, recorded beside the raw decision so
their effect can be measured (e.g. false accepts per hour and hit rate before → after).

A correction sees one step at a time (the decision it is given and the decisions on the step's transformed
copies) and returns the decision it lets through; it keeps what it needs to remember in plain fields that
:meth:`Correction.state` hands to the store, so a resumed monitor continues exactly where it stopped.

Built in: :class:`SuppressFlicker` (a new decision must last ``hops`` steps before it is let through),
:class:`HoldRefractory` (a watched class, once let through, is held for its refractory time) and
:class:`MajorityOfCopies` (the decision most of the copies agree on).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from proactiv.monitor.assertions import DEFAULT_COPIES, Copy, resolve_classes


class Correction:
    """A corrective action. Subclasses set ``name``, keep their memory in the fields listed by ``memory`` and
    implement :meth:`correct`; ``copies``: the transformed copies it reads."""

    name: str = ""
    copies: tuple[Copy, ...] = ()
    memory: tuple[str, ...] = ()

    def bind(self, class_names: Sequence[str], hop_s: float, copy_names: Sequence[str]) -> None:
        """Prepare for a stream (done by the monitor before the first step) and forget the past."""
        self._own = [list(copy_names).index(c.name) for c in self.copies]
        self.reset()

    def reset(self) -> None:
        pass

    def correct(self, decision: int, copies: np.ndarray) -> int:
        raise NotImplementedError

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.memory}

    def restore(self, state: dict) -> None:
        for k in self.memory:
            setattr(self, k, state[k])

    def spec(self) -> dict:
        return {"name": self.name, "type": type(self).__name__, **self.options()}

    def options(self) -> dict:
        return {}


class SuppressFlicker(Correction):
    """Let a new decision through only once it has been given ``hops`` steps in a row (until then the last
    decision let through stands): a decision shorter than ``hops`` steps never shows, at ``hops - 1`` steps
    of delay for every change."""

    name = "suppress_flicker"
    memory = ("out", "candidate", "count")

    def __init__(self, hops: int = 3):
        if isinstance(hops, bool) or not isinstance(hops, int) or hops < 1:
            raise ValueError(f"suppress_flicker hops = {hops!r}: expected an integer >= 1")
        self.hops = hops

    def reset(self) -> None:
        self.out, self.candidate, self.count = None, None, 0

    def correct(self, decision: int, copies: np.ndarray) -> int:
        if self.out is None or decision == self.out:
            self.out, self.candidate, self.count = decision, None, 0
            return decision
        self.count = self.count + 1 if decision == self.candidate else 1
        self.candidate = decision
        if self.count >= self.hops:
            self.out, self.candidate, self.count = decision, None, 0
        return self.out

    def options(self) -> dict:
        return {"hops": self.hops}


class HoldRefractory(Correction):
    """Once a watched class is let through, hold it for ``refractory_s`` seconds; a decision that began
    during the hold stays suppressed until it ends, so no class (watched or not) fires again within the
    refractory time, and none fires late from a run the hold swallowed."""

    name = "hold_refractory"
    memory = ("out", "left", "previous", "swallowed")

    def __init__(self, refractory_s: float = 1.0, classes: Sequence[str | int] | None = None):
        if isinstance(refractory_s, bool) or not math.isfinite(refractory_s) or refractory_s <= 0:
            raise ValueError(
                f"hold_refractory refractory_s = {refractory_s!r}: expected a positive number of seconds"
            )
        self.refractory_s, self.classes = float(refractory_s), classes

    def bind(self, class_names: Sequence[str], hop_s: float, copy_names: Sequence[str]) -> None:
        self._watched = resolve_classes(self.classes, class_names)
        self._quiet = round(self.refractory_s / hop_s)
        super().bind(class_names, hop_s, copy_names)

    def reset(self) -> None:
        self.out, self.left, self.previous, self.swallowed = None, 0, None, False

    def correct(self, decision: int, copies: np.ndarray) -> int:
        began = decision != self.previous
        self.previous = decision
        if self.left > 0:
            self.left -= 1
            self.swallowed = self.swallowed or began
            return self.out
        if self.swallowed and not began:
            return self.out
        self.swallowed = False
        if decision != self.out and (self._watched is None or decision in self._watched):
            self.left = self._quiet
        self.out = decision
        return decision

    def options(self) -> dict:
        classes = None if self.classes is None else list(self.classes)
        return {"refractory_s": self.refractory_s, "classes": classes}


class MajorityOfCopies(Correction):
    """The decision most of the step's versions agree on (the decision given and one per copy); a tie keeps
    the decision given."""

    name = "majority"

    def __init__(self, copies: Sequence[Copy] = DEFAULT_COPIES):
        if not copies:
            raise ValueError("majority: copies is empty; give at least one Copy(transform, value)")
        self.copies = tuple(copies)

    def correct(self, decision: int, copies: np.ndarray) -> int:
        votes = Counter([int(decision), *(int(c) for c in copies[self._own])])
        top = max(votes.values())
        if votes[int(decision)] == top:
            return int(decision)
        return min(c for c, n in votes.items() if n == top)

    def options(self) -> dict:
        return {"copies": [c.name for c in self.copies]}
