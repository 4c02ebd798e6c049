"""Transform families, the per-sample random source, and the registry.

A transform is one parameterised family ``T_θ`` with one named parameter (with a unit, a valid range and an
identity value) and the list of values a grid sweeps. Random transforms never touch global random state: they
draw from a :class:`BatchGenerator`, which holds one ``torch.Generator`` per sample seeded by
(run seed, instance id, grid point id, transform position), so a record does not depend on batching or order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

DOMAINS = ("tensor", "waveform", "feature", "image")


@dataclass(frozen=True)
class Param:
    """The named parameter of a transform family: unit, valid closed range, identity value."""

    name: str
    unit: str
    low: float
    high: float
    identity: float


def derive_seed(*parts: int) -> int:
    """A stable 63-bit seed from integers (same on every machine and Python version)."""
    digest = hashlib.blake2b(",".join(str(int(p)) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class BatchGenerator:
    """One ``torch.Generator`` per sample of a batch; draws are stacked along dim 0.

    Drawing sample by sample costs a short loop in the transform, not in projection, and it is what makes
    sample i's noise independent of which other samples share its batch.
    """

    def __init__(self, seeds: Sequence[int]):
        self.generators = []
        for seed in seeds:
            gen = torch.Generator()
            gen.manual_seed(int(seed))
            self.generators.append(gen)

    def __len__(self) -> int:
        return len(self.generators)

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal draws, shape ``(len(self), *shape)``."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.generators])

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) draws, shape ``(len(self), *shape)``."""
        return torch.stack([torch.rand(shape, generator=g) for g in self.generators])

    def uniform(self, low: float, high: float) -> torch.Tensor:
        """One uniform draw in [low, high) per sample, shape ``(len(self),)``."""
        return low + (high - low) * self.rand()


class Transform:
    """Base class of a transform family with one named parameter.

    Subclasses set ``name``, ``param``, ``domain`` and implement :meth:`transform`. ``values`` is the list a
    grid sweeps; ``apply`` returns the input unchanged at the identity value, whatever the subclass does.

    Parameters
    ----------
    values : the parameter values to sweep (each inside the parameter's range).
    name : optional column-name override, e.g. to put two noise families in one grid.
    """

    name: str = ""
    param: Param
    domain: str = "tensor"
    random: bool = False

    def __init__(self, values: Iterable[float] | float | None = None, *, name: str | None = None):
        if name is not None:
            self.name = name
        if values is None:
            values = [self.param.identity]
        if isinstance(values, (int, float)):
            values = [values]
        values = list(values)
        if not values:
            raise ValueError(
                f"{self.name}.{self.param.name}: the value list is empty; give at least one value"
            )
        for value in values:
            self.check_value(value)
        self.values = [float(v) for v in values]
        if self.domain not in DOMAINS:
            raise ValueError(f"transform {self.name!r}: domain {self.domain!r} is not one of {DOMAINS}")

    @property
    def column(self) -> str:
        """The record column holding this transform's parameter, ``<transform>.<param>``."""
        return f"{self.name}.{self.param.name}"

    def check_value(self, value: float) -> None:
        """Raise ``ValueError`` naming the parameter when ``value`` is not a finite number in range."""
        p = self.param
        if value == p.identity:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{self.name}.{p.name} = {value!r}: expected a finite number ({p.unit})")
        if not p.low <= value <= p.high:
            raise ValueError(
                f"{self.name}.{p.name} = {value} {p.unit}: outside the valid range [{p.low}, {p.high}] {p.unit}"
            )

    def options(self) -> dict:
        """Constructor options other than ``values`` (recorded in the run config and fingerprint)."""
        return {}

    def spec(self) -> dict:
        """A plain description of this transform, enough to rebuild it with :func:`get`."""
        return {
            "type": type(self).registry_name,
            "name": self.name,
            self.param.name: self.values,
            **self.options(),
        }

    def apply(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        """Transform a batch ``x`` (B, ...) at one parameter ``value``; identity returns ``x`` itself."""
        if value == self.param.identity:
            return x
        return self.transform(x, float(value), generator)

    def transform(self, x: torch.Tensor, value: float, generator: BatchGenerator) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.param.name}={self.values})"


_REGISTRY: dict[str, type[Transform]] = {}


def register(cls: type[Transform]) -> type[Transform]:
    """Class decorator: make a transform family findable by its name (so YAML can name it)."""
    cls.registry_name = cls.name
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Registered transform names."""
    return sorted(_REGISTRY)


def get(type_name: str, **kwargs) -> Transform:
    """Build a registered transform by name, e.g. ``get("noise", snr_db=[30, 20, 10])``.

    The keyword named like the family's parameter gives the values; the others are constructor options.
    """
    if type_name not in _REGISTRY:
        raise ValueError(f"unknown transform {type_name!r}; known transforms: {', '.join(names())}")
    cls = _REGISTRY[type_name]
    pname = cls.param.name
    values = kwargs.pop(pname, None)
    kwargs.pop("type", None)
    try:
        return cls(values, **kwargs)
    except TypeError as err:
        raise ValueError(f"transform {type_name!r}: bad option ({err}); its parameter is {pname!r}") from None
