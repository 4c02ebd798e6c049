"""Analysis of image runs: an image-to-image run (no predictions; "correct" = output within the loss cutoff;
PSNR +inf at the identity point) and the one helper that says whether a run's inputs are images."""

import numpy as np
import pytest

from proactiv.analysis import analyze, breakpoints, curves, error_slices, interim
from proactiv.analysis.runview import PSNR_CAP_DB, open_view
from proactiv.testing import sweep_image_run


@pytest.fixture(scope="module")
def denoise(tmp_path_factory):
    """Identity "denoiser": within the cutoff only at the identity point, PSNR ∞ there; groups meta.digit."""
    return sweep_image_run(tmp_path_factory.mktemp("img") / "denoise")


def test_image_to_image_view_groups_by_digit_and_says_within_cutoff(denoise):
    view = open_view(denoise)
    assert not view.classifier and view.correct_metric == "within_cutoff"
    assert view.correct_label == "within cutoff on xT (loss < 0.001)"
    assert view.group_column == "meta.digit" and view.group_title == "digit"
    assert view.classes == ["0", "1", "2"]
    assert (denoise.records.label == -1).all() and (denoise.records.label_name == "").all()


def test_curves_use_correct_t_and_give_finite_psnr_curves(denoise):
    table = curves(denoise)
    assert "within_cutoff" in set(table.metric) and not {"accuracy", "flip_rate"} & set(table.metric)
    assert {"psnr_out_t", "psnr_out_proj", "ssim_out_t", "psnr_t"} <= set(table.metric)
    assert np.isfinite(table[["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)).all()
    marginal = table[(table.condition == "") & (table.scope == "all")]
    rec = denoise.records
    for column in ("rotate.degrees", "blur.sigma"):
        within = marginal[(marginal.column == column) & (marginal.metric == "within_cutoff")]
        expected = rec.groupby(column).correct_t.mean()
        assert within.set_index("value")["mean"].to_dict() == pytest.approx(expected.to_dict())
    # the identity point: xT = f(xT) = the target, PSNR +inf, shown at the cap (not inf, not NaN)
    at_identity = table[
        (table.condition == "blur.sigma=0") & (table.column == "rotate.degrees") & (table.value == 0)
    ]
    psnr = at_identity[(at_identity.metric == "psnr_out_t") & (at_identity.scope == "all")]["mean"]
    assert psnr.tolist() == [PSNR_CAP_DB] and np.isinf(rec[rec.point == 0].psnr_out_t).all()
    assert set(table.scope) == {"all", "0", "1", "2"}  # per digit, as classes would be


def test_breakpoints_on_the_share_within_cutoff(denoise):
    table = breakpoints(denoise)
    marginal = table[(table.condition == "") & (table.scope == "all")].set_index("column")
    assert set(marginal.index) == {"rotate.degrees", "blur.sigma"}
    assert (marginal.metric == "within_cutoff").all() and "within cutoff" in marginal.rule.iloc[0]
    assert marginal.loc["rotate.degrees", "value"] == 30 and marginal.loc["rotate.degrees", "after"] == 0
    assert marginal.loc["rotate.degrees", "reference"] == pytest.approx(0.5)  # blur 0 or 1 at 0°


def test_analyze_image_to_image_run(denoise):
    result = analyze(denoise, method="pca")
    assert result.notes["breakpoints"].startswith("on the share of outputs within the loss cutoff")
    assert result.slices is not None and result.notes["slices"] == "failure = NOT correct_t"
    assert result.bias.classes == ["0", "1", "2"] and result.bias.group == "digit"
    assert "per digit" in result.notes["bias_maps"]
    assert "within_cutoff" in result.embedding_points and "accuracy" not in result.embedding_points
    worst = error_slices(denoise).iloc[0]
    assert worst.error_rate == 1.0  # every record away from the identity point is outside the cutoff
    item = interim(denoise, 0, 3)
    assert (
        item.y_t is not None and item.y_proj is not None and item.y_t.shape == item.x_t.shape == (1, 12, 12)
    )


def test_psnr_aggregates_cap_infinity_and_skip_missing():
    import duckdb

    from proactiv.analysis.runview import metric_sql

    values = "unnest([NULL, 'nan'::DOUBLE, 'inf'::DOUBLE, 20.0]) AS psnr_t"
    got = duckdb.sql(f"SELECT {metric_sql('psnr_t')} AS v FROM (SELECT {values})").fetchall()
    assert [r[0] for r in got] == [None, None, PSNR_CAP_DB, 20.0]
