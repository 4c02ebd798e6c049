"""Both progress displays show how far (a count or a percentage), the elapsed time and an ETA."""

import re

from proactiv.progress import progress_bar, step_progress

ELAPSED_ETA = re.compile(r"\d+:\d\d:\d\d ETA [-\d]+:[-\d]{2}:[-\d]{2}")


def test_the_progress_bar_counts_its_unit(capsys):
    with progress_bar("clips") as bar:
        bar.advance(bar.add_task("synthesis", total=10), 4)
    line = capsys.readouterr().out
    assert "synthesis" in line and "4/10 clips" in line and ELAPSED_ETA.search(line)


def test_step_progress_shows_one_bar_per_step_with_its_percentage(capsys):
    with step_progress() as report:
        report("breakpoints", 0.25)
        report("slices", 0.5)
        report("breakpoints", 1.0)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "breakpoints" in lines[0] and "100%" in lines[0] and ELAPSED_ETA.search(lines[0])
    assert "slices" in lines[1] and "50%" in lines[1] and ELAPSED_ETA.search(lines[1])


def test_disabled_displays_draw_nothing(capsys):
    with progress_bar("clips", enabled=False) as bar:
        bar.advance(bar.add_task("synthesis", total=2), 1)
    with step_progress(enabled=False) as report:
        report("breakpoints", 0.5)
    assert capsys.readouterr().out == ""
