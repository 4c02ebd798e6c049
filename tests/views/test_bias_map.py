"""Bias maps: a class's mean change x̂T − xT computed from the kept arrays (the planted band of class "yes"
stands out, for maps and lines), one diverging scale across classes, and the report section ranking the planted
class first."""

import re

import numpy as np
import pytest

from proactiv import views
from proactiv.analysis import analyze, load_arrays
from proactiv.views.sections import SectionContext, sections


def test_bias_map_shows_the_planted_band(run, vector_run):
    fig = views.bias_map(run, class_name="yes")
    mean = np.asarray(fig.data[0].z, dtype=float)
    assert mean[10:14].mean() > 0.5 > np.abs(mean[20:]).mean()  # the planted shift in rows 10–14
    assert fig.data[0].zmin == -fig.data[0].zmax
    line = views.bias_map(vector_run, class_name="yes").data[0]
    assert line.type == "scatter" and np.asarray(line.y)[10:20].mean() > 0.5
    with pytest.raises(ValueError, match="no bias map"):
        views.bias_map(run, class_name="nope")


def test_the_report_section_ranks_the_planted_class_first_and_draws_its_mean_change(run):
    analyze(run, steps=["bias_maps"])
    ctx = SectionContext(run)
    page = next(s for s in sections() if s.key == "bias_maps").html(ctx)
    assert page.startswith("<h2>Bias maps</h2><p>Mean change x̂T − xT per class: what the model wants to see.")
    (fig,) = ctx.figures
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "class yes (2 inst.)" and len(titles) == 4 + 2  # four classes, two row titles
    kept = load_arrays(run)
    yes = kept.instance % 4 == 0  # class "yes" is label 0
    expected = (kept.x_proj[yes] - kept.x_t[yes]).mean(0)
    np.testing.assert_allclose(np.asarray(fig.data[0].z, dtype=float), expected, atol=1e-5)
    lim = max(abs(t.zmax) for t in fig.data[::2])
    assert all(t.zmin == -lim and t.zmax == lim for t in fig.data[::2])  # one diverging scale for the classes
    ranks = re.findall(r"<tr>\s*<td>(\d+)</td>\s*<td>(\w+)</td>", page)
    assert ranks[0] == ("1", "yes") and sorted(c for _, c in ranks) == ["down", "no", "up", "yes"]
