"""The grid: point ids, the identity point, its spec, stages, and seeding per (instance, point)."""

import json
import math

import pytest
import torch

from proactiv.transforms import BatchGenerator, Grid, get


def three_way():
    return Grid(
        [
            get("noise", snr_db=[math.inf, 10]),
            get("gain", gain_db=[-6, 0, 6]),
            get("clip", level=[1.0, 0.5]),
        ]
    )


def test_point_ids_are_row_major_with_the_first_transform_slowest():
    grid = three_way()
    assert len(grid) == 12
    ids = [p.id for p in grid]
    assert ids == list(range(12))
    for p in grid:
        snr, gain, clip = divmod(p.id, 6)[0], divmod(p.id, 2)[0] % 3, p.id % 2
        assert p.values == {
            "noise.snr_db": [math.inf, 10][snr],
            "gain.gain_db": [-6, 0, 6][gain],
            "clip.level": [1.0, 0.5][clip],
        }
    with pytest.raises(IndexError, match="grid point 12 out of range"):
        grid[12]


def test_identity_point_is_found_wherever_it_is_or_none():
    assert three_way().identity_point() == 2  # (inf, 0 dB, 1.0)
    assert Grid([get("gain", gain_db=[-6, 6])]).identity_point() is None


def test_grid_rejects_duplicate_columns_and_allows_renames():
    with pytest.raises(ValueError, match="column 'gain.gain_db' appears twice"):
        Grid([get("gain", gain_db=[0]), get("gain", gain_db=[6])])
    grid = Grid([get("gain", gain_db=[0]), get("gain", gain_db=[6], name="gain2")])
    assert grid.columns == ["gain.gain_db", "gain2.gain_db"]


def test_spec_round_trips_through_json_with_values_and_names():
    grid = Grid([get("audio_noise", snr_db=[10, 0], color="pink"), get("gain", gain_db=[0, -6], name="loud")])
    rebuilt = Grid.from_spec(json.loads(json.dumps(grid.spec())))
    assert rebuilt.spec() == grid.spec()
    assert rebuilt.columns == ["audio_noise.snr_db", "loud.gain_db"]
    assert rebuilt.transforms[0].color == "pink"
    assert [p.values for p in rebuilt] == [p.values for p in grid]
    x = torch.randn(2, 1600)
    assert torch.equal(rebuilt.apply(x, [0, 1], 3, seed=1), grid.apply(x, [0, 1], 3, seed=1))


def test_apply_runs_each_transform_in_its_own_stage():
    grid = Grid([get("gain", gain_db=[0, 20]), get("time_mask", width_frames=[0, 5])])
    assert grid.has_stage("input") and grid.has_stage("feature")
    assert not Grid([get("gain", gain_db=[0, 20])]).has_stage("feature")
    x = torch.rand(1, 4, 20) + 1.0
    point = 3  # gain 20 dB and a 5-frame mask
    after_input = grid.apply(x, [0], point, seed=0, stage="input")
    torch.testing.assert_close(after_input, x * 10)  # the mask waits for the features
    after_feature = grid.apply(x, [0], point, seed=0, stage="feature")
    masked = (after_feature != x).all(dim=1)[0]  # frames where every bin was replaced
    assert int(masked.sum()) == 5 and torch.equal(after_feature[..., ~masked], x[..., ~masked])
    with pytest.raises(ValueError, match="2 inputs but 1 instance ids"):
        grid.apply(torch.rand(2, 4, 20), [0], point, seed=0)


def test_draws_follow_the_instance_not_its_place_in_the_batch():
    grid = Grid([get("noise", snr_db=[math.inf, 5])])
    x = torch.randn(4, 128)
    ids = [7, 3, 11, 5]
    out = grid.apply(x, ids, 1, seed=2)
    order = [2, 0, 3, 1]
    shuffled = grid.apply(x[order], [ids[i] for i in order], 1, seed=2)
    assert torch.equal(shuffled, out[order])
    # the same instance gives other draws at another point of the same value list
    other = Grid([get("noise", snr_db=[math.inf, 5, 5])]).apply(x, ids, 2, seed=2)
    assert not torch.equal(other, out)


def test_identity_point_returns_the_input_and_draws_follow_seed_and_point_not_batch():
    grid = Grid([get("noise", snr_db=[math.inf, 10, 0]), get("gain", gain_db=[0, -6])])
    x = torch.randn(3, 64)
    assert grid.identity_point() == 0 and torch.equal(grid.apply(x, [0, 1, 2], 0, seed=7), x)
    a = grid.apply(x, [5, 6, 7], 3, seed=7)  # 10 dB SNR, -6 dB gain
    b = torch.cat([grid.apply(x[i : i + 1], [5 + i], 3, seed=7) for i in range(3)])
    assert torch.equal(a, b)  # same draws whatever the batch
    assert not torch.equal(a, grid.apply(x, [5, 6, 7], 3, seed=8))  # the run seed matters
    assert not torch.equal(a, grid.apply(x, [5, 6, 7], 2, seed=7) * 10 ** (-6 / 20))  # so does the point


def test_batch_generator_streams_are_per_seed():
    a = BatchGenerator([1, 2, 3]).randn(5)
    b = BatchGenerator([3, 1]).randn(5)
    assert a.shape == (3, 5) and torch.equal(a[2], b[0]) and torch.equal(a[0], b[1])
    assert not torch.equal(a[0], a[1])
    u = BatchGenerator([4, 4]).uniform(-2.0, 3.0)
    assert u.shape == (2,) and u[0] == u[1] and -2.0 <= float(u[0]) < 3.0
