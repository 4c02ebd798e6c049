"""The run store on its own (no sweep): atomic writes, completion markers, resume checks, the lock, reading."""

import ast
import io
import json
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import proactiv as pv
from proactiv.store import Run, RunError, RunWriter, atomic_write, unit_name, write_json
from proactiv.transforms import get

GRID = pv.Grid([get("gain", gain_db=[0, -6])])


def header(**config):
    return {
        "config": {"grid": GRID.spec(), "arrays": {"keep": "sample"}, "seed": 0, **config},
        "fingerprints": {"model": "m0", "data": "d0", "package_version": "1.0"},
    }


def unit(instances, points=(0, 1)):
    """Records and arrays of every (instance, point) of a unit; values encode the pair."""
    inst = np.repeat(np.asarray(instances), len(points))
    point = np.tile(np.asarray(points), len(instances))
    records = pd.DataFrame({"instance": inst, "point": point, "d_x": inst + point / 10})
    x_t = np.stack([np.full((2, 3), i + p / 10, np.float32) for i, p in zip(inst, point, strict=True)])
    return records, {"instance": inst, "point": point, "x_t": x_t, "x_proj": x_t + 1}


def leftovers(root):
    return [p.name for p in root.rglob("*") if ".tmp" in p.name]


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"v": 1})

    def half_then_fail(tmp):
        tmp.write_text('{"v": ')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert json.loads(path.read_text()) == {"v": 1} and leftovers(tmp_path) == []


def test_units_are_written_whole_and_leave_no_temporary_files(tmp_path):
    writer = RunWriter(tmp_path / "run", header(), resume=False)
    for block, ids in enumerate(([0, 1], [2])):
        writer.write_unit(unit_name(0, block), *unit(ids))
    writer.finish()
    assert leftovers(tmp_path) == []
    run = Run(tmp_path / "run")
    assert run.status == "complete" and run.completed_units() == {"g00000-i00000", "g00000-i00001"}
    assert len(run.records) == 6
    got = run.arrays(2, 1)
    assert np.all(got["x_t"] == np.float32(2.1)) and np.all(got["x_proj"] == np.float32(3.1))


def test_the_completion_marker_decides_what_counts(tmp_path):
    writer = RunWriter(tmp_path / "run", header(), resume=False)
    writer.write_unit("g00000-i00000", *unit([0]))
    run = Run(tmp_path / "run")
    before = run.fingerprint()
    # a shard whose marker was never written (killed between the two writes) does not exist
    records, arrays = unit([1])
    records.to_parquet(tmp_path / "run" / "records" / "part-g00000-i00001.parquet", index=False)
    np.savez(tmp_path / "run" / "arrays" / "part-g00000-i00001.npz", **arrays)
    run = Run(tmp_path / "run")
    assert [f.name for f in run.shard_files()] == ["part-g00000-i00000.parquet"]
    assert set(run.records.instance) == {0} and not run.has_arrays(1, 0)
    assert run.query("SELECT count(*) AS n FROM records").n[0] == 2
    assert run.fingerprint() == before
    assert writer.completed_units() == {"g00000-i00000"}
    # the marker completes it
    writer.write_unit("g00000-i00001", *unit([1]))
    run = Run(tmp_path / "run")
    assert set(run.records.instance) == {0, 1} and run.has_arrays(1, 0)
    assert run.fingerprint() != before
    writer.release()


def test_records_are_sorted_by_instance_then_point_whatever_the_write_order(tmp_path):
    writer = RunWriter(tmp_path / "run", header(), resume=False)
    writer.write_unit("g00001-i00001", *unit([3, 2], points=(1,)))
    writer.write_unit("g00001-i00000", *unit([1, 0], points=(1,)))
    writer.write_unit("g00000-i00000", *unit([1, 0, 3, 2], points=(0,)))
    writer.finish()
    rec = Run(tmp_path / "run").records
    assert list(zip(rec.instance, rec.point, strict=True)) == [(i, p) for i in range(4) for p in (0, 1)]
    assert list(rec.index) == list(range(8))


def test_records_written_before_the_status_column_get_it_from_converged(tmp_path):
    writer = RunWriter(tmp_path / "run", header(), resume=False)
    old, arrays = unit([0, 1])
    writer.write_unit("g00000-i00000", old.assign(converged=[True, False, True, False]), arrays)
    new, arrays = unit([2])  # a unit written since (a resumed run): its own statuses
    writer.write_unit("g00000-i00001", new.assign(converged=False, status=["nonfinite", "no_scale"]), arrays)
    writer.finish()
    run = Run(tmp_path / "run")
    expected = ["converged", "budget", "converged", "budget", "nonfinite", "no_scale"]
    assert run.records.status.tolist() == expected
    assert run.query("SELECT status FROM records ORDER BY instance, point").status.tolist() == expected


def test_an_existing_run_needs_resume_and_the_same_setup(tmp_path):
    RunWriter(tmp_path / "run", header(), resume=False).finish()
    with pytest.raises(RunError, match=r"already exists \(status: complete\); pass --resume"):
        RunWriter(tmp_path / "run", header(), resume=False)
    changed = header(seed=1, arrays={"keep": "all"})
    changed["fingerprints"].update(model="m1", package_version="2.0")
    with pytest.raises(RunError) as err:
        RunWriter(tmp_path / "run", changed, resume=True)
    message = str(err.value)
    assert message.startswith(f"cannot resume run {tmp_path / 'run'}: it was made with a different setup:")
    assert message.splitlines()[1:] == [
        '  config.arrays: stored {"keep": "sample"}, now {"keep": "all"}',
        "  config.seed: stored 0, now 1",
        '  fingerprints.model: stored "m0", now "m1"',
    ]  # a new package version alone does not block a resume
    assert not (tmp_path / "run" / ".lock").exists()  # a refused writer releases the lock
    same = header()
    same["fingerprints"]["package_version"] = "2.0"
    writer = RunWriter(tmp_path / "run", same, resume=True)
    assert Run(tmp_path / "run").status == "running"
    writer.finish()


def test_shards_without_a_header_are_refused(tmp_path):
    (tmp_path / "run" / "done").mkdir(parents=True)
    (tmp_path / "run" / "done" / "g00000-i00000.json").write_text("{}")
    with pytest.raises(RunError, match="holds shards but no run.json"):
        RunWriter(tmp_path / "run", header(), resume=False)


def test_live_lock_refuses_and_stale_lock_is_taken_over(tmp_path):
    run = tmp_path / "run"
    writer = RunWriter(run, header(), resume=False)
    assert (run / ".lock").read_text() == f"{os.getpid()}@{os.uname().nodename}"
    with pytest.raises(RunError, match="being written by another sweep"):
        RunWriter(run, header(), resume=True)
    writer.release()
    assert not (run / ".lock").exists()
    (run / ".lock").write_text(f"1@{os.uname().nodename}-elsewhere")  # another host: assumed alive
    with pytest.raises(RunError, match="being written by another sweep"):
        RunWriter(run, header(), resume=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for stale in (f"{dead.pid}@{os.uname().nodename}", "garbage"):
        (run / ".lock").write_text(stale)
        RunWriter(run, header(), resume=True).finish()
        assert not (run / ".lock").exists()


def test_missing_arrays_key_error_names_the_pair_and_the_keep_setting(tmp_path):
    writer = RunWriter(tmp_path / "run", header(), resume=False)
    records, arrays = unit([0, 1])
    writer.write_unit("g00000-i00000", records, {k: v[:2] for k, v in arrays.items()})  # instance 0 only
    writer.finish()
    run = Run(tmp_path / "run")
    assert run.has_arrays(0, 1) and not run.has_arrays(1, 0)
    with pytest.raises(
        KeyError, match=r"no arrays kept for instance 1 at point 0 \(arrays.keep = 'sample'\)"
    ):
        run.arrays(1, 0)


def test_reading_something_that_is_not_a_run(tmp_path):
    with pytest.raises(RunError, match="not a proactiv run"):
        Run(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(RunError, match="corrupt run header"):
        Run(tmp_path)


#: Ways of reaching into a run's folders by hand; only store.py may (it owns the layout).
LAYOUT = {
    "join onto a store folder": r"""/\s*f?["'](done|records|arrays)\b""",
    "store folder joined onto": r"""["'](done|records|arrays)["']\s*/(?!/)""",
    "path inside a store folder": r"""["'](done|records|arrays)/|\}/(done|records|arrays)\b""",
    "os.path.join/Path() of a store folder": (
        r"""(os\.path\.join|joinpath|Path)\([^)\n]*["'](done|records|arrays)["']"""
    ),
    "shard or clean-input file name": r"""["'][^"'\n]*(part-|clean-i)""",
    "run.json by path": r"""["'](?:[^"'\n]*/)?run\.json["']""",
    "read_parquet([...]) listing": r"""read_parquet\(\s*\[""",
}


def code_lines(source: str) -> list[str]:
    """The source's lines with docstrings and comments blanked (line numbers kept): prose may name the layout."""
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for i in range(node.lineno - 1, node.end_lineno):
                lines[i] = ""
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col]
    return lines


def layout_hits(source: str) -> list[tuple[int, str, str]]:
    return [
        (n, what, line.strip())
        for n, line in enumerate(code_lines(source), 1)
        for what, pattern in LAYOUT.items()
        if re.search(pattern, line)
    ]


def test_only_the_store_knows_the_run_layout():
    """No module but store.py globs or joins paths into a run's folders (done/, records/, arrays/, part-*,
    clean-i*, run.json) or lists shards for read_parquet([...]): the rest go through Run."""
    for caught in ('run.path / "done"', 'Path(root, "records")', 'f"{run.path}/arrays/x.npz"',
                   'folder.glob("part-*.parquet")', 'name = f"clean-i{i:05d}.npz"', 'path / "run.json"',
                   'os.path.join(p, "arrays")', 'con.sql(f"SELECT * FROM read_parquet([{files}])")'):  # fmt: skip
        assert layout_hits(caught), caught
    for innocent in ('cfg.get("arrays", {})', 'table.to_dict("records")', 's["records"] / total',
                     'needs = frozenset({"records", "arrays"})', '"""Reads each ``arrays/part-*.npz`` once."""',
                     'x = y  # see run.json'):  # fmt: skip
        assert not layout_hits(innocent), innocent
    package = Path(pv.__file__).parent
    store = package / "store.py"
    assert {what for _, what, _ in layout_hits(store.read_text())} >= {
        "join onto a store folder", "shard or clean-input file name", "run.json by path", "read_parquet([...]) listing"
    }  # fmt: skip
    # the monitor's store (one row per step of a stream, not a sweep's records) owns its own layout the same way
    owners = {store, package / "monitor" / "store.py"}
    offenders = [
        f"{path.relative_to(package.parent)}:{n}: {what}: {line}"
        for path in sorted(package.rglob("*.py"))
        if path not in owners
        for n, what, line in layout_hits(path.read_text())
    ]
    print("\n".join(offenders))
    assert not offenders, "the run layout is store.py's business:\n" + "\n".join(offenders)
