"""The error-slices section: the slice table with the columns people read (not the SQL behind a slice), in
their order, the planted failing voice and the low-SNR region among the rows."""

import re

from proactiv.analysis import analyze
from proactiv.views.sections import SectionContext, sections_of
from proactiv.views.slices import COLUMNS


def test_the_section_shows_the_slice_table_columns_and_rows(run):
    table = analyze(run, steps=["slices"]).slices
    (section,) = sections_of("slices")
    page = section.html(SectionContext(run))
    assert page.startswith("<h2>Error slices</h2><p>Leaves of a shallow decision tree predicting failure")
    assert "<p class='note'>failure = NOT correct_t</p>" in page
    assert re.findall(r"<th>(\w+)</th>", page) == COLUMNS  # the SQL clause and the scores stay out
    assert "where" not in re.findall(r"<th>(\w+)</th>", page) and "<th>score</th>" not in page
    assert page.count("<tr>") == len(table)  # one row per slice (the head row is styled)
    conditions = re.findall(r"<tr>\s*<td>\d+</td>\s*<td>([^<]*)</td>", page)
    assert conditions == table.conditions.tolist()
    assert any("meta.voice" in c and "v3" in c for c in conditions)  # the planted failing voice
    assert any("noise.snr_db" in c for c in conditions)  # and the region below 2.5 dB
