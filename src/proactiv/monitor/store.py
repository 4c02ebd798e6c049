"""The monitor store: one row per step of a stream, in Parquet chunks, resumable, queryable with DuckDB. This
module is the only one that knows its layout.

```
STORE/monitor.json               what was monitored (stream, model fingerprint, classes, assertions, corrections,
                                 copies, chunk size, seed), status, counts
STORE/steps/part-<chunk>.parquet one row per step of one chunk of the stream
STORE/done/<chunk>.json          completion marker, written last: rows, file size, and the corrections' memory
                                 after the chunk (a resumed monitor continues from it exactly)
STORE/audio.npy                  the samples of a waveform given in memory (a stream read from a file keeps the
                                 file's path in monitor.json instead), so a window can be played
STORE/model.pt                   a copy of the monitored model and its frontend (torch), so a window can be swept
                                 again (:func:`proactiv.monitor.window_run`); a model torch cannot pickle is left
                                 out and monitor.json says why (``model_note``)
STORE/whatif/window-<step>/      the one-instance run of a window that window_run swept (a proactiv run)
STORE/.lock                      held (flock) while a monitor writes; released by the system if it dies
```
A row: ``step``, ``start_s``, ``end_s``, ``energy_db``, ``decision`` (class index), ``confidence``, ``p.<class>``
(posteriors), ``copy.<copy>`` (the decision on each transformed copy), ``a.<assertion>`` (severity, 0 where it
holds), ``c.<correction>`` (each correction alone on the raw decisions) and ``corrected`` (all of them, in
order). A chunk is written atomically; chunks are written in order, so a resumed monitor starts after the last
whole one and drops any it cannot read.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from proactiv.io import atomic_write, write_json, write_parquet, write_torch

if TYPE_CHECKING:
    import torch

HEADER = "monitor.json"
AUDIO = "audio.npy"
MODEL = "model.pt"


class MonitorError(RuntimeError):
    """A monitor store that cannot be used as asked (locked, made for another stream or model, damaged)."""


def is_monitor_store(path: str | os.PathLike) -> bool:
    return (Path(path) / HEADER).is_file()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _files(path: Path, chunk: int) -> tuple[Path, Path]:
    return path / "done" / f"{chunk:06d}.json", path / "steps" / f"part-{chunk:06d}.parquet"


def _chunk_problem(path: Path, chunk: int) -> str | None:
    marker, shard = _files(path, chunk)
    try:
        info = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return "no readable completion marker"
    try:
        size, rows = shard.stat().st_size, pq.read_metadata(shard).num_rows
    except (OSError, ValueError, pa.ArrowException) as err:
        return f"{shard.name} unreadable ({str(err).splitlines()[0]})"
    if size != info.get("bytes") or rows != info.get("rows"):
        return f"{shard.name}: {rows} rows, {size} bytes; its marker says {info.get('rows')} rows, {info.get('bytes')} bytes"
    return None


def _differences(old: dict, new: dict) -> list[str]:
    """The settings (top-level keys, and the stream's fields) that differ between two configs."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k}: stored {a.get(k)!r}, now {b.get(k)!r}" for k in sorted(set(a) | set(b))
                    if json.dumps(a.get(k), default=str) != json.dumps(b.get(k), default=str)]  # fmt: skip
        elif json.dumps(a, default=str, sort_keys=True) != json.dumps(b, default=str, sort_keys=True):
            out.append(
                f"{key}: stored {json.dumps(a, default=str)[:100]}, now {json.dumps(b, default=str)[:100]}"
            )
    return out


# --------------------------------------------------------------------------------------------- writing
class MonitorWriter:
    """Write side of a store: lock, resume checks, atomic chunks. Used by :func:`proactiv.monitor.monitor`."""

    def __init__(self, path: str | os.PathLike, config: dict, resume: bool):
        self.path = Path(path)
        try:
            for sub in ("steps", "done"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / ".lock", "w")  # noqa: SIM115 (held until finish)
        except OSError as err:
            raise MonitorError(f"monitor store {self.path}: cannot write ({err.strerror or err})") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise MonitorError(
                f"monitor store {self.path} is being written by another monitor; wait for it"
            ) from None
        try:
            self._start(config, resume)
        except BaseException:
            self.release()
            raise

    def _start(self, config: dict, resume: bool) -> None:
        head = self.path / HEADER
        if head.exists():
            old = read_header(self.path)
            if not resume:
                raise MonitorError(
                    f"monitor store {self.path} already exists ({old.get('status')}); pass --resume (resume=True) "
                    "to continue it, or choose another folder"
                )
            diffs = _differences(old.get("config", {}), config)
            if diffs:
                raise MonitorError(
                    f"cannot resume monitor store {self.path}: it was made with\n  " + "\n  ".join(diffs)
                )
            self.header = old
        else:
            if any((self.path / "done").iterdir()):
                raise MonitorError(f"{self.path}: holds chunks but no {HEADER}; choose an empty folder")
            self.header = {"config": config, "created": _now()}
        self.done = self._whole_chunks()
        self.header.update(status="running", updated=_now())
        write_json(head, self.header)

    def _whole_chunks(self) -> int:
        """How many chunks from the first are whole; the files of any later chunk are removed."""
        count = 0
        while _files(self.path, count)[0].exists() and _chunk_problem(self.path, count) is None:
            count += 1
        for marker in (self.path / "done").glob("*.json"):
            if int(marker.stem) >= count:
                for f in _files(self.path, int(marker.stem)):
                    f.unlink(missing_ok=True)
        for shard in (self.path / "steps").glob("part-*.parquet"):
            if int(shard.stem[5:]) >= count:
                shard.unlink(missing_ok=True)
        return count

    def memory(self) -> dict:
        """The corrections' memory after the last whole chunk ({} before the first)."""
        if self.done == 0:
            return {}
        return json.loads(_files(self.path, self.done - 1)[0].read_text()).get("memory", {})

    def tail(self, columns: list[str], rows: int) -> pd.DataFrame:
        """The last ``rows`` stored steps (those columns): the history a resumed monitor's assertions read."""
        parts = []
        for chunk in range(self.done - 1, -1, -1):
            parts.insert(0, pd.read_parquet(_files(self.path, chunk)[1], columns=columns))
            if sum(len(p) for p in parts) >= rows:
                break
        return pd.concat(parts, ignore_index=True).tail(rows) if parts else pd.DataFrame(columns=columns)

    def keep_audio(self, samples: np.ndarray) -> None:
        """Keep the samples of a stream given in memory (once), for playing its windows."""
        target = self.path / AUDIO
        if target.exists():
            return

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(samples, dtype=np.float32))

        atomic_write(target, save)

    def keep_model(self, model, frontend) -> None:
        """Keep a copy of the monitored model and its frontend (once), so a window can be swept again later.
        TorchScript parts are kept as :func:`torch.jit.save` bytes, as a run keeps them; a model that still
        cannot be pickled (a class defined inside a function) is left out, and the header says why."""
        from proactiv.models import split_torchscript

        if (self.path / MODEL).exists():
            return
        try:
            with split_torchscript(model) as (shell, parts):
                write_torch(self.path / MODEL, {"model": shell, "torchscript": parts, "frontend": frontend})
        except Exception as err:  # pickling fails in many ways (local classes, lambdas, open handles)
            first = (str(err).splitlines() or [""])[0]
            self.header["model_note"] = (
                f"{type(model).__name__} could not be kept ({type(err).__name__}: {first})"
            )

    def write_chunk(self, chunk: int, rows: pd.DataFrame, memory: dict) -> None:
        marker, shard = _files(self.path, chunk)
        try:
            write_parquet(shard, rows)
            write_json(
                marker,
                {"rows": len(rows), "bytes": shard.stat().st_size, "memory": memory, "written": _now()},
            )
        except OSError as err:
            raise MonitorError(
                f"monitor store {self.path}: cannot write chunk {chunk} ({err.strerror or err}); the {chunk} chunks "
                "before it are kept: free some space, then resume (--resume, resume=True)"
            ) from err
        self.done = chunk + 1

    def finish(self, status: str = "complete", **counts) -> None:
        self.header.update(status=status, updated=_now(), **counts)
        try:
            with contextlib.suppress(OSError) if status != "complete" else contextlib.nullcontext():
                write_json(self.path / HEADER, self.header)
        finally:
            self.release()

    def release(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()


# --------------------------------------------------------------------------------------------- reading
def read_header(path: str | os.PathLike) -> dict:
    head = Path(path) / HEADER
    if not head.is_file():
        raise MonitorError(f"{path}: not a monitor store (no {HEADER}); make one with `proactiv monitor`")
    try:
        return json.loads(head.read_text())
    except json.JSONDecodeError as err:
        raise MonitorError(f"{head}: corrupt header ({err})") from None


class MonitorStore:
    """A stored monitor: ``config``, ``class_names``, ``assertions``, ``corrections``, ``steps`` (pandas, by
    step), DuckDB ``query`` over the table ``steps``, ``summary()`` and ``samples(step)`` to play a window."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.header = read_header(self.path)
        self.config = self.header.get("config", {})
        self.stream = self.config.get("stream", {})
        self.class_names: list[str] = list(self.config.get("class_names", []))
        self.assertions: list[str] = [a["name"] for a in self.config.get("assertions", [])]
        self.corrections: list[str] = [c["name"] for c in self.config.get("corrections", [])]
        self.events: list[str] = list(self.config.get("events") or self.class_names)
        self._steps: pd.DataFrame | None = None

    @property
    def status(self) -> str:
        return read_header(self.path).get("status", "unknown")

    def shard_files(self) -> list[Path]:
        done = {int(p.stem) for p in (self.path / "done").glob("*.json")}
        return sorted(p for p in (self.path / "steps").glob("part-*.parquet") if int(p.stem[5:]) in done)

    @property
    def steps(self) -> pd.DataFrame:
        if self._steps is None:
            files = self.shard_files()
            try:
                parts = [pd.read_parquet(f) for f in files]
            except (OSError, ValueError, pa.ArrowException) as err:
                raise MonitorError(
                    f"monitor store {self.path}: cannot read its steps ({err}); resume it"
                ) from None
            self._steps = (pd.concat(parts, ignore_index=True).sort_values("step").reset_index(drop=True)
                           if parts else pd.DataFrame())  # fmt: skip
        return self._steps

    def query(self, sql: str) -> pd.DataFrame:
        """DuckDB SQL over the stored steps, available as the table ``steps``."""
        files = self.shard_files()
        if not files:
            raise MonitorError(f"monitor store {self.path} has no stored steps yet")
        con = duckdb.connect()
        try:
            listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE VIEW steps AS SELECT * FROM read_parquet([{listing}])")
            return con.execute(sql).df()
        finally:
            con.close()

    @property
    def seconds(self) -> float:
        """How long the stored part of the stream lasts (the stream's length once complete)."""
        steps = self.steps
        if steps.empty:
            return 0.0
        hop = float(self.stream.get("hop_s", 1.0))
        whole = self.stream.get("seconds")
        covered = float(steps["start_s"].iloc[-1]) + hop
        return float(min(whole, covered)) if whole else covered

    def window(self, step) -> pd.Series:
        """The stored row of window ``step``; a ValueError names a step that is no stored window."""
        if isinstance(step, bool) or not isinstance(step, (int, float, np.integer)) or int(step) != step:
            raise ValueError(f"window {step!r}: expected a window number")
        steps = self.steps
        rows = steps[steps.step == int(step)] if not steps.empty else steps
        if rows.empty:
            raise ValueError(f"window {step}: not one of the {len(steps)} windows stored in {self.path}")
        return rows.iloc[0]

    def decision_columns(self) -> list[str]:
        """``decision``, then each correction alone (``c.<name>``), then ``corrected`` when stored."""
        cols = ["decision", *(f"c.{c}" for c in self.corrections)]
        return cols + (["corrected"] if "corrected" in self.steps.columns else [])

    def firings(self, column: str = "decision") -> pd.DataFrame:
        """The steps where a decision column turns to an event class (``events``; every class by default):
        ``step``, ``start_s``, ``end_s``, ``class`` (index) and ``name``."""
        steps = self.steps
        if steps.empty:
            return pd.DataFrame(columns=["step", "start_s", "end_s", "class", "name"])
        d = steps[column].to_numpy()
        events = [self.class_names.index(e) for e in self.events]
        began = np.r_[True, d[1:] != d[:-1]] & np.isin(d, events)
        out = steps.loc[began, ["step", "start_s", "end_s"]].copy()
        out["class"] = d[began]
        out["name"] = [self.class_names[int(c)] for c in d[began]]
        return out.reset_index(drop=True)

    def summary(self) -> dict:
        """Steps and minutes covered; per assertion the steps it flagged, per minute and their mean severity;
        per decision column (raw, each correction, all) the firings and firings per hour."""
        steps, minutes = self.steps, self.seconds / 60
        rate = (lambda n: n / minutes) if minutes > 0 else (lambda n: float("nan"))
        out = {
            "steps": int(len(steps)),
            "minutes": minutes,
            "status": self.status,
            "assertions": {},
            "firings": {},
        }
        for name in self.assertions:
            sev = steps[f"a.{name}"].to_numpy() if not steps.empty else np.zeros(0)
            flagged = sev > 0
            out["assertions"][name] = {"violations": int(flagged.sum()), "per_minute": rate(int(flagged.sum())),
                                       "mean_severity": float(sev[flagged].mean()) if flagged.any() else 0.0}  # fmt: skip
        for column in self.decision_columns() if not steps.empty else []:
            n = len(self.firings(column))
            out["firings"][column] = {"count": n, "per_hour": rate(n) * 60}
        return out

    def samples(self, step: int) -> tuple[np.ndarray, int] | None:
        """The samples of one window and their rate, or None when the stream is not a waveform or its audio
        is gone (a source file moved)."""
        s = self.stream
        if s.get("kind") != "waveform":
            return None
        rate, hop, size = (
            int(s["sample_rate"]),
            round(s["hop_s"] * s["sample_rate"]),
            round(s["window_s"] * s["sample_rate"]),
        )
        step = int(step)
        if not 0 <= step < int(s["steps"]):
            raise ValueError(f"step {step}: outside the stream's 0..{int(s['steps']) - 1}")
        if (self.path / AUDIO).exists():
            wave = np.load(self.path / AUDIO, mmap_mode="r")
            out = np.zeros(size, dtype=np.float32)
            piece = np.asarray(wave[step * hop : step * hop + size])
            out[: len(piece)] = piece
            return out, rate
        if s.get("source") and Path(s["source"]).is_file():
            from proactiv.monitor.streams import read_window

            return read_window(s["source"], step * hop, size), rate
        return None

    def model(self) -> tuple[torch.nn.Module, Callable | None]:
        """The monitored model (on the CPU, in eval mode) and its frontend, from the copy the store keeps; its
        weights are checked against the fingerprint the monitor recorded."""
        import torch

        from proactiv.models import join_torchscript

        if not (self.path / MODEL).is_file():
            why = self.header.get("model_note") or (
                "made before monitor stores kept their model: monitor the same stream again with --resume "
                "(resume=True) to add it"
            )
            raise MonitorError(f"monitor store {self.path} keeps no copy of its model ({why})")
        try:
            kept = torch.load(self.path / MODEL, map_location="cpu", weights_only=False)
            model = (
                join_torchscript(kept["model"], kept["torchscript"]) if kept["torchscript"] else kept["model"]
            )
        except Exception as err:  # a damaged file, or a class that moved since
            raise MonitorError(
                f"{self.path / MODEL}: cannot read the model copy ({type(err).__name__}: {err})"
            ) from None
        from proactiv.fingerprint import model_hash

        stored, found = self.config.get("model", {}).get("fingerprint"), model_hash(model)
        if stored != found:
            raise MonitorError(
                f"{self.path / MODEL}: {type(model).__name__} (fingerprint {found}) is not the model this store "
                f"monitored (fingerprint {stored})"
            )
        return model.eval(), kept["frontend"]

    def window_path(self, step: int) -> Path:
        """Where the one-instance run of window ``step`` goes (:func:`proactiv.monitor.window_run`)."""
        return self.path / "whatif" / f"window-{int(step)}"

    def __repr__(self) -> str:
        return f"MonitorStore({str(self.path)!r}, status={self.status!r}, steps={len(self.steps)})"


def open_monitor(path: str | os.PathLike) -> MonitorStore:
    """Open a store written by :func:`proactiv.monitor`."""
    return MonitorStore(path)
