"""Atomic writes: a failing writer leaves no file, no temporary file and an existing file untouched; each
writer reads back what it wrote."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from proactiv import io, store


def _failing(tmp):
    tmp.write_bytes(b"half a fi")
    raise OSError("disk full")


def test_a_failed_write_leaves_no_file_and_no_temporary_file(tmp_path):
    with pytest.raises(OSError, match="disk full"):
        io.atomic_write(tmp_path / "a.bin", _failing)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_existing_file_untouched(tmp_path):
    path = io.write_text(tmp_path / "a.txt", "old")
    with pytest.raises(OSError, match="disk full"):
        io.atomic_write(path, _failing)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_the_temporary_file_is_hidden_beside_the_target(tmp_path):
    seen = []
    io.atomic_write(tmp_path / "a.txt", lambda tmp: seen.append(tmp) or tmp.write_text("x"))
    tmp = seen[0]
    assert tmp.parent == tmp_path and tmp.name.startswith(".a.txt.") and tmp.name.endswith(".tmp")


@pytest.mark.parametrize(
    ("write", "value", "read"),
    [
        (io.write_bytes, b"\x00\x01 bytes", lambda p: p.read_bytes()),
        (io.write_text, "text, ünïcode", lambda p: p.read_text(encoding="utf-8")),
        (io.write_json, {"a": [1, 2.5, None], "b": "c"}, lambda p: json.loads(p.read_text())),
        (io.write_torch, {"w": [1, 2, 3]}, lambda p: torch.load(p, weights_only=True)),
    ],
    ids=["bytes", "text", "json", "torch"],
)
def test_each_writer_round_trips(tmp_path, write, value, read):
    assert read(write(tmp_path / "f", value)) == value


def test_json_writes_what_it_cannot_hold_as_text(tmp_path):
    assert json.loads(io.write_json(tmp_path / "a.json", {"p": tmp_path}).read_text()) == {"p": str(tmp_path)}


def test_parquet_round_trips_without_the_index(tmp_path):
    table = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[5, 6])
    back = pd.read_parquet(io.write_parquet(tmp_path / "t.parquet", table))
    pd.testing.assert_frame_equal(back, table.reset_index(drop=True))


def test_npz_keeps_its_exact_name_and_arrays(tmp_path):
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "names": np.asarray(["a", "b"])}
    path = io.write_npz(tmp_path / "part.npz.bin", arrays)
    assert [p.name for p in tmp_path.iterdir()] == ["part.npz.bin"]
    with np.load(path) as z:
        assert set(z.files) == set(arrays) and all(np.array_equal(z[k], v) for k, v in arrays.items())


def test_the_store_keeps_exporting_the_writers():
    assert (store.atomic_write, store.write_json, store.write_parquet, store.write_text) == (
        io.atomic_write, io.write_json, io.write_parquet, io.write_text,
    )  # fmt: skip
