"""The run directory: config and fingerprints, Parquet record shards, chunked arrays, lock, resume.

```
RUN/run.json                     config, fingerprints, schema (what kind of run), status, counts
RUN/model.pt                     a copy of an in-memory model (``pv.sweep`` without a model spec), for analyses
RUN/data.pt                      and of its raw inputs, labels, metadata and frontend (``Run.task``)
RUN/records/part-<unit>.parquet  one row per (instance, grid point) of one unit of work
RUN/arrays/part-<unit>.npz       xT and x̂T of the kept pairs of that unit; clean-<iblock>.npy the clean inputs
RUN/done/<unit>.json             completion marker, written last: a shard without one does not exist; it
                                 holds the unit's row count and file sizes, so a damaged shard is found
RUN/.lock                        held by the sweep writing the run (pid@host); stale locks are taken over
```
Every file is written to a temporary name and renamed (:mod:`proactiv.io`), so a killed sweep leaves whole files
or none. A unit whose files no longer match their marker (truncated, corrupt, missing) is recomputed when the sweep
resumes; a write that fails (a full disk, a read-only folder) keeps every unit written before it, and the run stays
resumable.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import pickle
import socket
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from proactiv.io import atomic_write as atomic_write  # re-exported: the run's writers are imported from here
from proactiv.io import write_json, write_npz, write_parquet, write_torch
from proactiv.io import write_text as write_text
from proactiv.schema import RunSchema, complete_schema, derive_schema
from proactiv.transforms import Grid

FORMAT_VERSION = 1
MODEL_FILE = "model.pt"
#: the ``status`` of records written before the column existed: the engine then stopped only below the cutoff
#: or when the step budget ran out
OLD_STATUS = {True: "converged", False: "budget"}
DATA_FILE = "data.pt"


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # pickling fails in many ways (local classes, lambdas, open handles)
        return False
    return True


def _named(obj) -> str:
    """What a kept object is called in a note: a source by what it reads, anything else by its class."""
    about = obj.describe() if hasattr(obj, "describe") else {}
    return about.get("type") or about.get("path") or type(obj).__name__


class RunError(RuntimeError):
    """A run directory that cannot be used as asked (locked, different config, corrupt)."""


def unit_name(gblock: int, iblock: int) -> str:
    return f"g{gblock:05d}-i{iblock:05d}"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _cannot_write(path: Path, what: str, err: OSError) -> RunError:
    """A failed write as a RunError naming the run, what was being written and the system's reason."""
    where = f": {err.filename}" if err.filename else ""
    return RunError(f"run {path}: cannot write {what} ({err.strerror or err}{where})")


def _unit_files(path: Path, name: str) -> tuple[Path, Path, Path]:
    """The completion marker, record shard and array file of unit ``name``."""
    return (
        path / "done" / f"{name}.json",
        path / "records" / f"part-{name}.parquet",
        path / "arrays" / f"part-{name}.npz",
    )


def _unit_problem(path: Path, name: str) -> str | None:
    """What is wrong with a completed unit's files, or None: the marker must parse, the files it lists must have
    the sizes it recorded, and the shard's Parquet footer must read and count the rows it recorded (markers
    written before sizes were recorded are checked by the footer alone)."""
    marker, shard, arrays = _unit_files(path, name)
    try:
        info = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return f"{marker.name}: unreadable completion marker"
    for file, size in ((f, info.get("bytes", {}).get(f.name)) for f in (shard, arrays)):
        actual = file.stat().st_size if file.exists() else None
        if size is not None and actual != size:
            found = "missing" if actual is None else f"{actual} bytes"
            return f"{file.name}: {found}, its completion marker says {size} bytes"
    try:
        rows = pq.read_metadata(shard).num_rows
    except (OSError, ValueError, pa.ArrowException) as err:
        return f"{shard.name}: unreadable ({str(err).splitlines()[0]})"
    if rows != info.get("rows", rows):
        return f"{shard.name}: {rows} rows, its completion marker says {info['rows']}"
    return None


# --------------------------------------------------------------------------------------------- writing
class RunWriter:
    """Write side of a run: lock, resume checks, atomic shards. Used by the sweep."""

    def __init__(self, path: str | os.PathLike, header: dict, resume: bool):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            for sub in ("records", "arrays", "done"):
                (self.path / sub).mkdir(exist_ok=True)
            self._lock()
        except OSError as err:
            raise _cannot_write(self.path, "the run directory", err) from None
        try:
            self._start(header, resume)
        except OSError as err:
            self.release()
            raise _cannot_write(self.path, "its header", err) from None
        except BaseException:
            self.release()
            raise

    # lock -----------------------------------------------------------------------------------------
    def _lock(self) -> None:
        lock = self.path / ".lock"
        me = f"{os.getpid()}@{socket.gethostname()}"
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = lock.read_text().strip() if lock.exists() else ""
                if _alive(holder):
                    raise RunError(
                        f"run {self.path} is being written by another sweep (process {holder}); "
                        "wait for it to finish or stop it"
                    ) from None
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            self._lockfile = lock
            return
        raise RunError(f"run {self.path}: could not take the lock {lock}")

    def release(self) -> None:
        lock = getattr(self, "_lockfile", None)
        if lock is not None:
            lock.unlink(missing_ok=True)
            self._lockfile = None

    # header ---------------------------------------------------------------------------------------
    def _start(self, header: dict, resume: bool) -> None:
        meta_path = self.path / "run.json"
        if meta_path.exists():
            old = read_header(self.path)
            if not resume:
                raise RunError(
                    f"run {self.path} already exists (status: {old.get('status')}); pass --resume (resume=True) "
                    "to continue it, or choose another output directory"
                )
            diffs = _differences(old, header)
            if diffs:
                raise RunError(
                    f"cannot resume run {self.path}: it was made with a different setup:\n  "
                    + "\n  ".join(diffs)
                )
            self.header = old
            self.header.setdefault("schema", header.get("schema"))  # a run from before runs had a schema
            self.header["recomputed"] = self._drop_damaged()
        else:
            if any((self.path / "done").iterdir()):
                raise RunError(f"{self.path}: holds shards but no run.json; choose an empty output directory")
            self.header = {**header, "format": FORMAT_VERSION, "created": _now(), "status": "running"}
        self.header["status"] = "running"
        self.header["updated"] = _now()
        write_json(meta_path, self.header)

    def _drop_damaged(self) -> dict[str, str]:
        """Remove the completion marker (then the files) of every unit whose files do not match it, so the
        sweep computes it again; returns what was wrong with each."""
        damaged = {}
        for name in sorted(self.completed_units()):
            problem = _unit_problem(self.path, name)
            if problem is not None:
                damaged[name] = problem
                for file in _unit_files(self.path, name):
                    file.unlink(missing_ok=True)
        return damaged

    def completed_units(self) -> set[str]:
        return {p.stem for p in (self.path / "done").glob("*.json")}

    def write_unit(self, name: str, records: pd.DataFrame, arrays: dict[str, np.ndarray] | None) -> None:
        """Arrays, then records, then the completion marker (with the row count and file sizes), each atomically.
        A failed write raises a RunError saying the units written before are kept and the run can be resumed."""
        marker, shard, array_file = _unit_files(self.path, name)
        try:
            if arrays:
                write_npz(array_file, arrays)
            write_parquet(shard, records)
            sizes = {f.name: f.stat().st_size for f in (shard, array_file) if arrays or f == shard}
            write_json(marker, {"rows": len(records), "bytes": sizes, "written": _now()})
        except OSError as err:
            raise self._stopped(f"unit {name}", err) from err

    def _stopped(self, what: str, err: OSError) -> RunError:
        """A failed write of the sweep: the units written before it are kept and the run can be resumed."""
        return RunError(
            f"{_cannot_write(self.path, what, err)}; the {len(self.completed_units())} units written "
            "before it are kept: free some space or fix the folder's permissions, then resume the sweep "
            "(--resume, resume=True)"
        )

    def write_clean(
        self, iblock: int, clean: np.ndarray, instances: np.ndarray, targets: np.ndarray | None = None
    ) -> None:
        """The clean model inputs of an instance block, and for image-to-image / regression runs their target
        tensors ``y`` (written once; same content on every resume)."""
        path = self.path / "arrays" / f"clean-i{iblock:05d}.npz"
        arrays = {"instance": instances, "x": clean}
        if targets is not None:
            arrays["y"] = targets
        if not path.exists():
            try:
                write_npz(path, arrays)
            except OSError as err:
                raise self._stopped(f"the clean inputs of instance block {iblock}", err) from err

    def keep_model(self, model) -> bool:
        """Keep a copy of an in-memory model (pickled by torch) so analyses can rebuild it (``Run.model``); True
        when it is kept. TorchScript parts of the model, which torch cannot pickle (a wrapper around a model
        shipped as TorchScript), are kept by ``torch.jit.save`` beside the rest (the model spec names them). A
        model that still cannot be pickled (e.g. a class defined inside a function) leaves the run without a
        model spec and says why in run.json."""
        from proactiv.models import split_torchscript

        if (self.path / MODEL_FILE).exists():
            return True
        try:
            with split_torchscript(model) as (shell, parts):
                write_torch(
                    self.path / MODEL_FILE, {"shell": shell, "torchscript": parts} if parts else model
                )
        except Exception as err:  # pickling fails in many ways (local classes, lambdas, open handles)
            self.header["schema"]["model"] = None
            self.header["model_note"] = (
                f"{type(model).__name__} could not be saved with the run ({type(err).__name__}: {err})"
            )
            write_json(self.path / "run.json", self.header)
            return False
        if parts:
            self.header["schema"]["model"] = {"source": "run", "torchscript_parts": sorted(parts)}
            write_json(self.path / "run.json", self.header)
        return True

    def keep_data(self, data: dict) -> None:
        """Keep what the model was swept on (raw inputs — or the source that reads them —, labels, metadata,
        class names, frontend; pickled by torch) so analyses can transform the inputs again (``Run.task``). A
        frontend that cannot be pickled is left out, and a source that cannot be is too; ``Run.task`` says
        which."""
        if (self.path / DATA_FILE).exists():
            return
        try:
            write_torch(self.path / DATA_FILE, data)
            return
        except Exception:  # pickling fails in many ways (local classes, lambdas, open handles)
            pass
        for part in ("frontend", "inputs"):
            if data[part] is not None and not _picklable(data[part]):
                data = {**data, part: None, f"{part}_note": f"{_named(data[part])} not picklable"}
        write_torch(self.path / DATA_FILE, data)

    def finish(self, status: str = "complete") -> None:
        """Record the final status and release the lock. For an unfinished run a status that cannot be written
        (e.g. the disk is full) is let go: the error that stopped the sweep matters, and the completion markers,
        not the status, decide what a resumed sweep computes."""
        self.header["status"] = status
        self.header["updated"] = _now()
        try:
            with contextlib.suppress(OSError) if status != "complete" else contextlib.nullcontext():
                write_json(self.path / "run.json", self.header)
        finally:
            self.release()


def _alive(holder: str) -> bool:
    """Whether the lock holder ``pid@host`` is a live process (on another host: assume alive)."""
    pid, _, host = holder.partition("@")
    if not pid.isdigit():
        return False
    if host and host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie (killed, not yet reaped) is not alive
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def _differences(old: dict, new: dict) -> list[str]:
    """What differs between the stored and the requested setup (config and fingerprints)."""
    out = []
    for section in ("config", "fingerprints"):
        a, b = old.get(section, {}), new.get(section, {})
        for key in sorted(set(a) | set(b)):
            if key in (
                "package_version",
                "frontend",
            ):  # frontend: a repr older runs stored; now in the schema
                continue
            x, y = a.get(key), b.get(key)
            if _json(x) != _json(y):
                if isinstance(x, dict) and isinstance(y, dict):  # name the settings that differ, not all
                    changed = [k for k in sorted(set(x) | set(y)) if _json(x.get(k)) != _json(y.get(k))]
                    x, y = ({k: v.get(k) for k in changed} for v in (x, y))
                out.append(f"{section}.{key}: stored {_short(x)}, now {_short(y)}")
    return out


def _json(value) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


# --------------------------------------------------------------------------------------------- reading
def read_header(path: str | os.PathLike) -> dict:
    meta = Path(path) / "run.json"
    if not meta.exists():
        raise RunError(f"{path}: not a proactiv run (no run.json); make one with `proactiv sweep`")
    try:
        return json.loads(meta.read_text())
    except json.JSONDecodeError as err:
        raise RunError(f"{meta}: corrupt run header ({err})") from None


class Run:
    """A stored sweep: ``config``, ``grid``, ``class_names``, ``records`` (pandas), DuckDB ``query``, arrays."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.header = read_header(self.path)
        self.config = self.header.get("config", {})
        self.fingerprints = self.header.get("fingerprints", {})
        self.status = self.header.get("status")
        self.grid = Grid.from_spec(self.config["grid"])
        self.class_names = self.config.get("class_names")
        self._records: pd.DataFrame | None = None
        self._array_index: dict[tuple[int, int], tuple[str, int]] | None = None
        self._schema: RunSchema | None = None

    @property
    def schema(self) -> RunSchema:
        """What kind of run this is (see :mod:`proactiv.schema`): stored by the sweep (fields added since it was
        written derived from its config), or derived once from the config, record columns and input shape for
        runs written before runs described themselves."""
        if self._schema is None:
            stored = self.header.get("schema")
            if stored is not None:
                try:
                    self._schema = RunSchema.from_dict(complete_schema(stored, self.header))
                except ValueError as err:
                    raise RunError(f"{self.path / 'run.json'}: {err}") from None
            else:
                columns = self.columns()
                self._schema = derive_schema(
                    self.header, columns, self.input_shape(), self._group_counts(columns)
                )
        return self._schema

    def columns(self) -> list[str]:
        """The record columns (read from the first completed shard's Parquet schema; [] without one)."""
        files = self.shard_files()
        return list(pq.read_schema(files[0]).names) if files else []

    def _group_counts(self, columns: list[str]) -> dict[str, int]:
        """Distinct values of each metadata column, for :func:`proactiv.schema.group_column`."""
        meta = [c for c in columns if c.startswith("meta.")]
        if not meta:
            return {}
        counts = self.query(
            "SELECT " + ", ".join(f'count(DISTINCT "{c}") AS "{c}"' for c in meta) + " FROM records"
        ).iloc[0]
        return {c.removeprefix("meta."): int(counts[c]) for c in meta}

    def input_shape(self) -> tuple[int, ...] | None:
        """The shape of one model input, read from an array file's header only; None when none is kept."""
        files = self.array_files() or self.clean_files()
        for f in files[:1]:
            with np.load(f) as z:
                key = "x_t" if "x_t" in z.files else "x"
                with z.zip.open(f"{key}.npy") as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if major == 1
                        else np.lib.format.read_array_header_2_0
                    )
                    shape = read(fh)[0]
            return tuple(int(d) for d in shape[1:])
        return None

    def task(self):
        """What the run swept, rebuilt: a :class:`~proactiv.task_data.TaskData` with the model (as
        :meth:`model` checks it), the raw inputs in instance order, labels, class names, metadata and frontend —
        for analyses that transform inputs again (at any parameter value) or read the model's layers."""
        from proactiv.task_data import TaskData

        spec = self._model_spec()
        if spec.get("source") == "config":
            task = self._config_task(spec)
        else:
            import torch

            file = self.path / DATA_FILE
            if not file.exists():
                raise RunError(f"run {self.path} keeps no copy of its inputs ({file} is missing)")
            data = torch.load(file, map_location="cpu", weights_only=False)
            for part in ("frontend", "inputs"):
                if data.get(f"{part}_note"):
                    raise RunError(f"run {self.path}: its {part} were not kept ({data[f'{part}_note']})")
            task = TaskData(
                model=self.model(device="cpu"),
                inputs=data["inputs"],
                labels=data["labels"],
                class_names=data.get("class_names"),
                metadata=data.get("metadata"),
                frontend=data["frontend"],
            )
        self._check_model(task.model)
        return task

    def _model_spec(self) -> dict:
        spec = self.schema.model
        if spec is None:
            raise RunError(
                f"run {self.path} keeps no way to rebuild its model"
                + (f": {self.header.get('model_note')}" if self.header.get("model_note") else "")
                + "; sweep with a config (model: ...) or give pv.sweep data=TaskData(..., model_spec=...)"
            )
        return spec

    def _config_task(self, spec: dict):
        from proactiv.config import parse_config
        from proactiv.rebuild import load_task

        cfg = dict(
            spec.get("config")
            or {k: self.config[k] for k in ("task", "domain", "model", "data") if k in self.config}
        )
        cfg["grid"] = self.config["grid"]  # the run's own grid spec (it keeps an infinite SNR as Infinity)
        return load_task(parse_config(cfg, f"{self.path / 'run.json'} (model spec)"))

    def _check_model(self, model) -> None:
        from proactiv.fingerprint import model_hash

        stored = self.fingerprints.get("model")
        if stored and model_hash(model) != stored:
            raise RunError(
                f"run {self.path}: the rebuilt model differs from the one swept (weights fingerprint "
                f"{model_hash(model)}, run has {stored}); was the model file changed, or a cached model "
                "retrained ($PROACTIV_CACHE)?"
            )

    def model(self, device: str = "auto"):
        """The model this run swept, rebuilt from the run's model spec (the config's task and model, or the copy
        kept in the run), in eval mode on ``device``; its weights are checked against the run's fingerprint."""
        from proactiv.device import resolve_device

        spec = self._model_spec()
        if spec.get("source") == "run":
            import torch

            from proactiv.models import join_torchscript

            file = self.path / MODEL_FILE
            if not file.exists():
                raise RunError(f"run {self.path}: the model copy {file} is missing")
            model = torch.load(file, map_location="cpu", weights_only=False)
            if spec.get("torchscript_parts"):  # kept apart by RunWriter.keep_model
                model = join_torchscript(model["shell"], model["torchscript"])
        elif spec.get("source") == "spec":
            from proactiv.config import ModelSpec
            from proactiv.models import load_model
            from proactiv.outputs import adapt_spec

            model_spec = ModelSpec.model_validate(spec.get("model") or {})
            model = adapt_spec(load_model(model_spec), model_spec)
        else:
            model = self._config_task(spec).model
        self._check_model(model)
        return model.to(resolve_device(device)).eval()

    def completed_units(self) -> set[str]:
        """Names of the units whose completion marker exists: only their files count as written."""
        return {p.stem for p in (self.path / "done").glob("*.json")}

    def damaged_units(self) -> dict[str, str]:
        """Completed units whose files do not match their completion marker, with what is wrong (a resumed
        sweep computes them again)."""
        found = {name: _unit_problem(self.path, name) for name in sorted(self.completed_units())}
        return {name: problem for name, problem in found.items() if problem is not None}

    @property
    def recomputed(self) -> dict[str, str]:
        """Units the last resume found damaged and computed again, with what was wrong with each."""
        return self.header.get("recomputed") or {}

    def unit_count(self) -> int | None:
        """How many units of work the sweep cut the run into (blocks of instances × blocks of grid points, as
        its config records them); None for runs that did not record their unit sizes."""
        units, n = self.config.get("units") or {}, self.config.get("n_instances")
        if not units or n is None:
            return None
        return math.ceil(n / units["instances"]) * math.ceil(len(self.grid) / units["points"])

    @property
    def in_progress(self) -> bool:
        """Whether a live sweep holds the run's lock, i.e. is writing it now."""
        try:
            holder = (self.path / ".lock").read_text().strip()
        except OSError:
            return False
        return _alive(holder)

    def state(self) -> str:
        """The run's state in words: ``complete``; ``in progress: k of n units`` while a sweep writes it; or
        ``interrupted: k of n units`` (its sweep stopped; resuming it completes the run). Reads the header, lock
        and markers afresh, so it follows a sweep that is still running."""
        status = read_header(self.path).get("status")
        if status == "complete" and not self.in_progress:
            return "complete"
        total = self.unit_count()
        done = (
            f"{len(self.completed_units())} of {total} units"
            if total
            else f"{len(self.completed_units())} units"
        )
        if self.in_progress:
            return f"in progress: {done}"
        return f"interrupted: {done}"

    def _parts(self, folder: str, suffix: str) -> list[Path]:
        done = self.completed_units()
        return sorted(p for p in (self.path / folder).glob(f"part-*{suffix}") if p.stem[5:] in done)

    def shard_files(self) -> list[Path]:
        """Record shards with a completion marker (a shard without one is an interrupted write)."""
        return self._parts("records", ".parquet")

    def array_files(self) -> list[Path]:
        """Array files (xT, x̂T of the kept pairs) of completed units."""
        return self._parts("arrays", ".npz")

    def clean_files(self) -> list[Path]:
        """Files of the clean inputs (and targets) of the kept instances, one per instance block."""
        return sorted((self.path / "arrays").glob("clean-i*.npz"))

    def fingerprint(self) -> str:
        """A digest of the completed shards (names, sizes, times): changes whenever the records change."""
        import hashlib

        digest = hashlib.blake2b(digest_size=12)
        for marker in sorted((self.path / "done").glob("*.json")):
            shard = self.path / "records" / f"part-{marker.stem}.parquet"
            for f in (marker, shard):
                stat = f.stat() if f.exists() else None
                digest.update(
                    f"{f.name}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1};".encode()
                )
        return digest.hexdigest()

    @property
    def analysis_dir(self) -> Path:
        """Where analyses of this run are stored (``RUN/analysis/``)."""
        return self.path / "analysis"

    @property
    def records(self) -> pd.DataFrame:
        """All records, sorted by (instance, point)."""
        if self._records is None:
            files = self.shard_files()
            if not files:
                self._records = pd.DataFrame()
            else:
                try:
                    parts = [pd.read_parquet(f) for f in files]
                except (OSError, ValueError, pa.ArrowException) as err:
                    raise self._unreadable(err) from None
                records = pd.concat(parts, ignore_index=True)
                if "converged" in records:  # shards from before the status column: derived from converged
                    derived = records["converged"].astype(bool).map(OLD_STATUS)
                    records["status"] = records["status"].fillna(derived) if "status" in records else derived
                self._records = records.sort_values(["instance", "point"]).reset_index(drop=True)
        return self._records

    def _unreadable(self, err: Exception) -> RunError:
        """A read error as a RunError naming the damaged units (when the markers show them)."""
        damaged = self.damaged_units()
        if not damaged:
            return RunError(f"run {self.path}: cannot read its record shards ({str(err).splitlines()[0]})")
        listed = "; ".join(f"unit {n}: {why}" for n, why in damaged.items())
        return RunError(
            f"run {self.path}: {len(damaged)} damaged unit(s) ({listed}); resume its sweep (--resume, "
            "resume=True) to compute them again"
        )

    def load_records(self, con: duckdb.DuckDBPyConnection, table: str = "records") -> int:
        """Load the completed records into a DuckDB table of ``con`` (shards written by different versions may
        differ in columns: they are matched by name); returns the number of rows."""
        files = self.shard_files()
        if not files:
            raise RunError(f"run {self.path} has no completed records yet")
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        try:
            con.execute(
                f'CREATE TABLE "{table}" AS SELECT * FROM read_parquet([{listing}], union_by_name = true)'
            )
        except duckdb.Error as err:
            raise self._unreadable(err) from None
        columns = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
        if "converged" in columns:  # shards from before the status column: derived from converged
            if "status" not in columns:
                con.execute(f'ALTER TABLE "{table}" ADD COLUMN status VARCHAR')
            con.execute(
                f"UPDATE \"{table}\" SET status = CASE WHEN converged THEN '{OLD_STATUS[True]}' "
                f"ELSE '{OLD_STATUS[False]}' END WHERE status IS NULL"
            )
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][
            0
        ]  # fetchone leaves the result open

    def query(self, sql: str) -> pd.DataFrame:
        """Run DuckDB SQL over the records, available as the table ``records``."""
        con = duckdb.connect()
        try:
            self.load_records(con)
            return con.execute(sql).df()
        finally:
            con.close()

    def _index(self) -> dict[tuple[int, int], tuple[str, int]]:
        if self._array_index is None:
            self._array_index = {}
            for f in self.array_files():
                with np.load(f) as z:
                    for row, (i, p) in enumerate(zip(z["instance"], z["point"], strict=True)):
                        self._array_index[(int(i), int(p))] = (str(f), row)
        return self._array_index

    def has_arrays(self, instance: int, point: int) -> bool:
        return (int(instance), int(point)) in self._index()

    def arrays(self, instance: int, point: int) -> dict[str, np.ndarray]:
        """``x`` (clean), ``x_t`` (transformed) and ``x_proj`` (projected) model inputs of one record; for
        image-to-image / regression runs also the outputs ``y_t`` = f(xT), ``y_proj`` = f(x̂T) and the target ``y``."""
        key = (int(instance), int(point))
        if key not in self._index():
            raise KeyError(
                f"run {self.path}: no arrays kept for instance {instance} at point {point} "
                f"(arrays.keep = {self.config.get('arrays', {}).get('keep')!r})"
            )
        file, row = self._index()[key]
        with np.load(file) as z:
            out = {k: z[k][row] for k in ("x_t", "x_proj", "y_t", "y_proj") if k in z.files}
        for f in self.clean_files():
            with np.load(f) as z:
                hit = np.nonzero(z["instance"] == key[0])[0]
                if hit.size:
                    out.update({k: z[k][hit[0]] for k in ("x", "y") if k in z.files})
                    break
        return out

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r}, points={len(self.grid)})"


def run_dirs(path: str | os.PathLike) -> list[Path]:
    """The runs at ``path``: itself when it is a run (it holds run.json), else the runs among its immediate
    children, by name (no deeper: a large tree is not walked). A :class:`RunError` naming the folder when it is
    neither, or does not exist."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: no such run directory")
    if (path / "run.json").is_file():
        return [path]
    with os.scandir(path) as entries:
        runs = sorted(Path(e.path) for e in entries if e.is_dir() and (Path(e.path) / "run.json").is_file())
    if not runs:
        raise RunError(
            f"{path}: neither a run nor a folder of runs; expected a run directory with run.json (written by "
            "`proactiv sweep`), or a folder whose sub-folders are such runs"
        )
    return runs


def open_run(path: str | os.PathLike) -> Run:
    """Open a run directory written by :func:`proactiv.sweep`."""
    return Run(path)
