"""Where a notebook view gets its data: an open run, a directory or a RunView all give the same records; the steps
asked for are computed once, then read back; a step skipped for the run stays skipped instead of being retried."""

import pytest

from proactiv.analysis.runview import RunView, open_view
from proactiv.views import source
from proactiv.views.source import open_analysed


def test_any_run_like_gives_its_view_and_computes_only_what_is_missing(run, monkeypatch):
    for given in (run, run.path, str(run.path), open_view(run)):
        view, _ = open_analysed(given)
        assert isinstance(view, RunView) and view.run.path == run.path
    stored = open_view(run)
    assert open_analysed(stored)[0] is stored  # a view is used as it is
    _, analysis = open_analysed(run, ("slices",))
    assert analysis.slices is not None and (run.path / "analysis" / "slices.parquet").exists()

    def refuse(*args, **kwargs):
        raise AssertionError("nothing is missing: nothing should be computed")

    monkeypatch.setattr(source, "analyze", refuse)
    again = open_analysed(run, ("slices",))[1]
    assert again.slices.equals(analysis.slices)


def test_a_skipped_step_is_not_retried(run, monkeypatch):
    _, analysis = open_analysed(run, ("attributions",))  # a synthetic run has no model to attribute
    assert analysis["attributions"] is None and analysis.notes["attributions"].startswith("skipped")
    monkeypatch.setattr(source, "analyze", pytest.fail)
    assert open_analysed(run, ("attributions",))[1].notes["attributions"].startswith("skipped")
