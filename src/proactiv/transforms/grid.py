"""The grid: the product of several transforms' value lists, applied in a declared order.

Grid point ids are the row-major index into that product (first transform slowest), so they are stable for a
given grid spec and can be recomputed anywhere.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from proactiv.transforms.base import BatchGenerator, Transform, derive_seed, get

#: Domains applied to the raw input, before a task's frontend; "feature" transforms come after it.
INPUT_DOMAINS = ("tensor", "waveform", "image")


def _values_key(combo: tuple[float, ...]) -> int:
    """A seed part for off-grid values: negative, so it never equals a grid point id, and stable."""
    return -1 - derive_seed(*(int(struct.unpack("<q", struct.pack("<d", v))[0]) for v in combo))


@dataclass(frozen=True)
class GridPoint:
    """One co-occurring transformation: a stable id and the value of every transform parameter."""

    id: int
    values: dict[str, float]


class Grid:
    """The product of value lists of several transforms, e.g. SNR × speed × pitch."""

    def __init__(self, transforms: Sequence[Transform]):
        transforms = list(transforms)
        columns = [t.column for t in transforms]
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise ValueError(
                f"grid: column {dupes[0]!r} appears twice; give one of the transforms another name="
            )
        self.transforms = transforms
        self.columns = columns
        self._combos = list(itertools.product(*(t.values for t in transforms)))

    def __len__(self) -> int:
        return len(self._combos)

    def __getitem__(self, point_id: int) -> GridPoint:
        if not 0 <= point_id < len(self):
            raise IndexError(f"grid point {point_id} out of range (the grid has {len(self)} points)")
        return GridPoint(point_id, dict(zip(self.columns, self._combos[point_id], strict=True)))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def identity_point(self) -> int | None:
        """Id of the point where every transform is at its identity value, if the grid has one."""
        ident = tuple(t.param.identity for t in self.transforms)
        return self._combos.index(ident) if ident in self._combos else None

    def apply(
        self,
        x: torch.Tensor,
        instances: Sequence[int],
        point_id: int,
        seed: int,
        stage: str = "input",
    ) -> torch.Tensor:
        """Apply grid point ``point_id`` to a batch of instances.

        ``stage="input"`` applies the transforms of the raw-input domains, ``stage="feature"`` those of the
        feature domain (after a task's frontend). Each transform draws from generators seeded by
        (seed, instance id, point id, transform position).
        """
        return self._apply(x, instances, self._combos[point_id], point_id, seed, stage)

    def apply_values(
        self,
        x: torch.Tensor,
        instances: Sequence[int],
        values: dict[str, float],
        seed: int,
        stage: str = "input",
        draws: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Apply any parameter values, on the grid or between its points (``values``: column → value; columns
        left out stay at their identity). Random draws are seeded by (seed, instance, the values, transform
        position), so the same values give the same transformed input every time; ``draws`` seeds them by
        other values instead — a search along a parameter that holds its start's draws sees one noise
        realisation scaled, so whether an instance flips changes with the parameter alone."""
        unknown = sorted((set(values) | set(draws or {})) - set(self.columns))
        if unknown:
            raise KeyError(f"grid: no transform column {unknown[0]!r}; columns: {', '.join(self.columns)}")
        combo, key = (
            tuple(float(v.get(t.column, t.param.identity)) for t in self.transforms)
            for v in (values, values if draws is None else draws)
        )
        point_id = self._combos.index(key) if key in self._combos else _values_key(key)
        return self._apply(x, instances, combo, point_id, seed, stage)

    def _apply(self, x, instances, combo, point_id: int, seed: int, stage: str) -> torch.Tensor:
        if len(instances) != x.shape[0]:
            raise ValueError(f"grid.apply: {x.shape[0]} inputs but {len(instances)} instance ids")
        for pos, (transform, value) in enumerate(zip(self.transforms, combo, strict=True)):
            in_stage = (
                transform.domain in INPUT_DOMAINS if stage == "input" else transform.domain == "feature"
            )
            if not in_stage or value == transform.param.identity:
                continue
            gen = BatchGenerator([derive_seed(seed, i, point_id, pos) for i in instances])
            x = transform.apply(x, value, gen)
        return x

    def has_stage(self, stage: str) -> bool:
        """Whether any transform acts in this stage ("input" or "feature")."""
        if stage == "feature":
            return any(t.domain == "feature" for t in self.transforms)
        return any(t.domain in INPUT_DOMAINS for t in self.transforms)

    def spec(self) -> list[dict]:
        """Plain description (recorded in run.json; rebuilt by :meth:`from_spec`)."""
        return [t.spec() for t in self.transforms]

    @classmethod
    def from_spec(cls, spec: Sequence[dict]) -> Grid:
        transforms = []
        for entry in spec:
            entry = dict(entry)
            transforms.append(get(entry.pop("type"), **entry))
        return cls(transforms)

    def __repr__(self) -> str:
        return f"Grid({', '.join(map(repr, self.transforms))}; {len(self)} points)"
