"""Executors: what computes a sweep's units of work — this process (local) or the tasks of a Ray cluster.

The sweep cuts its work into units (a block of grid points × a block of instances), hands the units still to do
to an executor and writes each result through the store as it arrives (shards, then the completion marker).
Executors only compute. The driver stays the one writer of the run, so the store's rules (atomic shards,
completion markers, the run's lock, resume) hold whoever computed a unit, and a Ray cluster needs no file system
shared with the driver (a ``ray://`` client writes the run on the client's disk).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import socket
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from proactiv.config import EXECUTORS
from proactiv.extras import MissingExtra, require
from proactiv.store import unit_name

#: what one unit gives: its records, the arrays of its kept pairs (or None), the clean inputs if kept (or None)
UnitResult = tuple[pd.DataFrame, dict | None, np.ndarray | None]


class ExecutorError(RuntimeError):
    """An executor that cannot run (Ray missing or unreachable) or a unit that failed for good."""


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of work: the instances ``ids`` (instance block ``iblock``) at the grid points ``points`` (grid
    block ``gblock``); it is stored as one shard named :attr:`name`."""

    gblock: int
    iblock: int
    ids: np.ndarray
    points: np.ndarray

    @property
    def name(self) -> str:
        return unit_name(self.gblock, self.iblock)

    @property
    def size(self) -> int:
        """Its number of projections (records)."""
        return len(self.ids) * len(self.points)


class Computes(Protocol):
    """What every unit of a sweep shares (the sweep's ``_Units``): computes one unit."""

    def run(self, ids: np.ndarray, points: np.ndarray, advance: Callable[[int], None]) -> UnitResult: ...


class Executor(Protocol):
    """Computes units and yields ``(unit, result)`` as each finishes, in any order; calls ``advance(k)`` as
    projections finish (for the progress bar)."""

    name: str

    def run(
        self, units: Computes, todo: Sequence[Unit], advance: Callable[[int], None]
    ) -> Iterator[tuple[Unit, UnitResult]]: ...


class LocalExecutor:
    """The units one after the other in this process (the default); progress counts every projection."""

    name = "local"

    def run(self, units: Computes, todo: Sequence[Unit], advance: Callable[[int], None]):
        for unit in todo:
            yield unit, units.run(unit.ids, unit.points, advance)


class RayExecutor:
    """The units as Ray tasks (with one GPU each when the cluster has GPUs); progress counts every finished unit.

    What the units share (model, projector, grid, inputs) goes to the cluster's object store once; a task carries
    a reference to it and its unit's ids, and each worker process unpickles the shared part once. A worker that
    dies mid-task is replaced and its unit recomputed (``max_retries``); an error inside a unit stops the sweep
    with that error.

    A task computes with as many torch threads as this process does (and asks Ray for as many CPUs): torch's
    CPU kernels round differently with another thread count, and the records are to be the same as a local
    run's. Set ``OMP_NUM_THREADS=1`` (or ``torch.set_num_threads(1)``) for the most tasks at once.

    Parameters
    ----------
    address : a running cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:10001"``); None starts a local Ray
        on this machine for the sweep and stops it after. A Ray already initialised in this process is used as is.
    gpus : None: one GPU per task when the cluster has GPUs; False: CPUs only; True: one GPU per task, required.
    max_retries : how often a unit whose worker died is recomputed before the sweep gives up.
    in_flight : units submitted ahead of those finished (default: twice as many as can run at once) — bounds
        what the object store holds while the driver writes.
    threads : torch threads (and Ray CPUs) per task (default: this process's ``torch.get_num_threads()``).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        gpus: bool | None = None,
        max_retries: int = 3,
        in_flight: int | None = None,
        threads: int | None = None,
    ):
        _import_ray()  # refuse before a run directory is touched
        if int(max_retries) < 0:
            raise ValueError(f"max_retries={max_retries!r}: expected an integer >= 0")
        if in_flight is not None and int(in_flight) < 1:
            raise ValueError(f"in_flight={in_flight!r}: expected an integer >= 1")
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads={threads!r}: expected an integer >= 1")
        if address is not None:
            _check_reachable(address)  # Ray itself retries an address where nothing listens for minutes
        self.address, self.gpus = address, gpus
        self.max_retries, self.in_flight, self.threads = int(max_retries), in_flight, threads

    def run(self, units: Computes, todo: Sequence[Unit], advance: Callable[[int], None]):
        ray = _import_ray()
        started = self._connect(ray)
        pending: dict = {}
        try:
            resources = ray.cluster_resources()
            has_gpus = resources.get("GPU", 0) > 0
            if self.gpus and not has_gpus:
                raise ExecutorError(
                    f"Ray cluster {self._where(ray)} has no GPU to give each task ({resources})"
                )
            threads = self._threads(ray)
            remote = ray.remote(_compute).options(
                num_cpus=threads,
                num_gpus=1 if has_gpus and self.gpus is not False else 0,
                max_retries=self.max_retries,
                retry_exceptions=False,
            )
            shared = [ray.put(_on_device(units, torch.device("cpu")))]  # a list: tasks resolve it themselves
            token = uuid.uuid4().hex
            queue = iter(todo)
            limit = self.in_flight or max(2, 2 * int(resources.get("CPU", 1)) // threads)

            def submit() -> None:
                unit = next(queue, None)
                if unit is not None:
                    pending[remote.remote(token, shared, unit.ids, unit.points, threads)] = unit

            for _ in range(limit):
                submit()
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(ref)
                result = self._result(ray, ref, unit)
                submit()
                advance(unit.size)
                yield unit, result
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()

    def _connect(self, ray) -> bool:
        """Initialise Ray unless it is; True when this call started it (and must stop it)."""
        if ray.is_initialized():
            return False
        options = {"include_dashboard": False} if self.address is None else {}
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ExecutorError(
                f"cannot connect to the Ray cluster at address={self.address!r}: {err}"
            ) from None
        return True

    def _threads(self, ray) -> int:
        """Threads per task: as asked (default this process's), at most the CPUs of the largest node."""
        wanted = int(self.threads or torch.get_num_threads())
        largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        if largest and wanted > largest:
            warnings.warn(
                f"Ray tasks get {int(largest)} threads, the CPUs of the cluster's largest node, not {wanted} as "
                f"this process has: records may differ from a local run's in the last bits",
                stacklevel=3,
            )
            return int(largest)
        return wanted

    def _where(self, ray) -> str:
        return self.address or ray.get_runtime_context().gcs_address

    def _result(self, ray, ref, unit: Unit) -> UnitResult:
        """The unit's result; the original error of a unit that raised; an :class:`ExecutorError` for a unit
        whose worker kept dying."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise ExecutorError(f"unit {unit.name}: {err}") from None
        except ray.exceptions.RayError as err:
            raise ExecutorError(
                f"unit {unit.name} failed on the Ray cluster after {self.max_retries} retries "
                f"({type(err).__name__}: {err}); the units already written are kept: resume the run to go on"
            ) from None


def get_executor(executor: str | Executor = "local", address: str | None = None, device: str = "auto"):
    """The executor named ``"local"`` or ``"ray"`` (an executor object passes through). For Ray, ``address``
    picks the cluster and ``device`` whether tasks ask for GPUs (``"cpu"``: never; ``"cuda…"``: always;
    ``"auto"``: when the cluster has them)."""
    if not isinstance(executor, str):
        return executor
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r}: expected one of {EXECUTORS}")
    if executor == "local":
        if address is not None:
            raise ValueError(
                f"address={address!r}: only the Ray executor connects to a cluster (executor='ray')"
            )
        return LocalExecutor()
    gpus = None if device == "auto" else str(device).startswith("cuda")
    return RayExecutor(address=address, gpus=gpus)


def _import_ray():
    try:
        return require("ray", "ray", "the Ray executor")
    except MissingExtra as err:
        raise ExecutorError(str(err)) from None


def _check_reachable(address: str) -> None:
    """Refuse a ``HOST:PORT`` or ``ray://HOST:PORT`` address where nothing accepts a connection."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not (colon and host and port.isdigit()):
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise ExecutorError(
            f"cannot connect to the Ray cluster at address={address!r}: nothing answers at {host}:{port} ({err})"
        ) from None


def _on_device(units, device: torch.device):
    """``units`` whose projector computes on ``device`` (a copy when it has to move; the original is left)."""
    projector = units.projector
    if projector.device == device:
        return units
    moved = copy.copy(projector)
    moved.model, moved.device = copy.deepcopy(projector.model).to(device), device
    return dataclasses.replace(units, projector=moved)


#: in a Ray worker process: the shared part of the sweep it serves, unpickled once (token → units)
_SHARED: dict[str, Computes] = {}


def _compute(token: str, shared: list, ids: np.ndarray, points: np.ndarray, threads: int) -> UnitResult:
    """One unit in a Ray worker, with the driver's thread count, on the GPU Ray gave the task if any."""
    import ray

    torch.set_num_threads(threads)
    units = _SHARED.get(token)
    if units is None:
        _SHARED.clear()  # a worker serves one sweep at a time: drop the previous one's model and inputs
        try:
            loaded = ray.get(shared[0])
        except ray.exceptions.RaySystemError as err:  # e.g. the model's class is not importable here
            raise ExecutorError(
                f"a Ray worker cannot load the sweep's model and inputs ({str(err).splitlines()[0]}); every "
                "node needs proactiv and the packages that define the model, frontend and transforms"
            ) from None
        device = torch.device("cuda" if ray.get_gpu_ids() else "cpu")
        units = _SHARED[token] = _on_device(loaded, device)
    ids, points = np.array(ids), np.array(points)  # writable copies of the read-only arrays Ray hands over
    return units.run(ids, points, lambda k: None)
