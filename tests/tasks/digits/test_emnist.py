"""The EMNIST loader on small IDX files written here: format, transpose, label shift, clear errors."""

import gzip
import struct

import numpy as np
import pytest

from proactiv.config import ConfigError, parse_config
from proactiv.sweep import sweep_config
from proactiv.tasks.digits import load_emnist, read_idx


def write_idx(path, array, gz=True):
    """The IDX layout: 00 00 <type 0x08> <ndim>, one big-endian uint32 per dimension, then the bytes."""
    raw = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw += array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def letters_set(root, n=52, split="test", seed=0):
    """n 28×28 images whose stored (transposed) form has a bright bar in row 2 per letter label 1…26."""
    root.mkdir(parents=True, exist_ok=True)
    labels = (np.arange(n) % 26 + 1).astype(np.uint8)
    gen = np.random.default_rng(seed)
    stored = (gen.random((n, 28, 28)) * 40).astype(np.uint8)
    stored[:, 2, 5:20] = 255  # stored transposed: upright, this is column 2
    stored[:, 10:14, 10:14] = (labels[:, None, None] * 9).astype(np.uint8)  # class evidence
    write_idx(root / f"emnist-letters-{split}-images-idx3-ubyte.gz", stored)
    write_idx(root / f"emnist-letters-{split}-labels-idx1-ubyte.gz", labels)
    return stored, labels


def test_loads_upright_images_and_letter_labels(tmp_path):
    stored, labels = letters_set(tmp_path)
    x, y, names = load_emnist(tmp_path, "test")
    assert x.shape == (52, 1, 28, 28) and x.dtype.is_floating_point and float(x.max()) == 1.0
    assert names == [chr(ord("A") + i) for i in range(26)]
    assert y.tolist() == (labels.astype(int) - 1).tolist()  # letters are numbered 1…26 in the files
    assert np.allclose(x[:, 0].numpy(), stored.transpose(0, 2, 1) / 255.0)
    assert (x[:, 0, 5:20, 2] == 1.0).all()  # the stored row became a column


def test_plain_idx_gzip_folder_and_mapping_file(tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    (tmp_path / "gzip").mkdir()
    write_idx(tmp_path / "gzip" / "emnist-balanced-test-images-idx3-ubyte", images, gz=False)
    write_idx(
        tmp_path / "gzip" / "emnist-balanced-test-labels-idx1-ubyte", np.array([0, 1, 2], np.uint8), gz=False
    )
    (tmp_path / "gzip" / "emnist-balanced-mapping.txt").write_text("0 48\n1 49\n2 65\n")
    x, y, names = load_emnist(tmp_path, "test", subset="balanced")
    assert names == ["0", "1", "A"] and y.tolist() == [0, 1, 2] and x.shape == (3, 1, 28, 28)


def test_bad_files_are_named(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="bad.gz: cannot read as gzip IDX"):
        read_idx(bad)
    plain = tmp_path / "magic"
    plain.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic: not an IDX file"):
        read_idx(plain)
    short = tmp_path / "short"
    short.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 4)
    with pytest.raises(
        ValueError, match="short: IDX data holds 4 bytes, the header's shape \\(10,\\) needs 10"
    ):
        read_idx(short)
    with pytest.raises(FileNotFoundError, match="no emnist-letters-test-images-idx3-ubyte.gz"):
        load_emnist(tmp_path / "empty", "test")
    letters_set(tmp_path / "mismatch")
    write_idx(tmp_path / "mismatch" / "emnist-letters-test-labels-idx1-ubyte.gz", np.ones(5, np.uint8))
    with pytest.raises(ValueError, match="expected 52 labels"):
        load_emnist(tmp_path / "mismatch", "test")
    letters_set(tmp_path / "zero")
    write_idx(tmp_path / "zero" / "emnist-letters-test-labels-idx1-ubyte.gz", np.zeros(52, np.uint8))
    with pytest.raises(
        ValueError, match="labels run from 0 to 0; the letters split has 26 classes numbered from 1"
    ):
        load_emnist(tmp_path / "zero", "test")


def test_emnist_task_trains_a_model_and_sweeps(tmp_path):
    letters_set(tmp_path / "emnist", n=260, split="train", seed=1)
    letters_set(tmp_path / "emnist", n=52, split="test", seed=2)
    cfg = parse_config(
        {
            "task": "emnist",
            "data": {"root": str(tmp_path / "emnist"), "instances_per_class": 1},
            "grid": [{"type": "rotate", "degrees": [0, 90]}, {"type": "blur", "sigma": [0, 1]}],
            "projection": {"max_steps": 5},
        }
    )
    run = sweep_config(cfg, tmp_path / "run", progress=False)
    rec = run.records
    assert len(rec) == 26 * 4 and set(rec.label_name) == {chr(ord("A") + i) for i in range(26)}
    assert {"psnr_t", "ssim_t", "psnr_proj", "ssim_proj"} <= set(rec.columns)
    assert run.config["pixel_range"] == 1.0
    with pytest.raises(ConfigError, match="data.root: the emnist task needs"):
        sweep_config(
            parse_config({"task": "emnist", "grid": [{"type": "blur"}]}), tmp_path / "r2", progress=False
        )
