import numpy as np
import pytest

from proactiv.analysis import AnalysisError, load_arrays
from proactiv.analysis.arrays import array_files, clean_inputs, kept_pairs
from proactiv.testing import write_synthetic_run


@pytest.fixture
def run(tmp_path):
    return write_synthetic_run(tmp_path / "run", n_instances=40, instances_per_unit=16)


def test_bulk_reader_matches_the_one_record_reader(run):
    kept = load_arrays(run)
    assert len(kept) == 8 * len(run.grid)  # two instances per class, every point
    for k in (0, len(kept) // 2, len(kept) - 1):
        one = run.arrays(kept.instance[k], kept.point[k])
        assert np.array_equal(one["x_t"], kept.x_t[k]) and np.array_equal(one["x_proj"], kept.x_proj[k])
    assert np.array_equal(
        clean_inputs(run, [kept.instance[0]])[int(kept.instance[0])], run.arrays(kept.instance[0], 0)["x"]
    )


def test_filters_and_unfinished_units(run):
    only = load_arrays(run, instances=[0, 1], points=[3])
    assert sorted(zip(only.instance.tolist(), only.point.tolist(), strict=True)) == [(0, 3), (1, 3)]
    first = array_files(run)[0]
    (run.path / "done" / f"{first.stem[5:]}.json").unlink()  # an interrupted unit does not count
    assert first not in array_files(run)
    assert not set(kept_pairs(run).instance) & {0, 1}


def test_damaged_array_file_names_itself(run):
    first = array_files(run)[0]
    first.write_bytes(b"not a zip")
    with pytest.raises(AnalysisError, match=first.name):
        load_arrays(run)
