"""Report sections register by step name: a section of a toy step is listed by ``sections_of`` (its own first,
then the record sections placed after it), a key is registered once, a skipped step shows its heading and why,
a record section needs a key; ``Section.html`` wraps the body in its title, intro and the step's note; the
helpers escape what they print and show tables the same way everywhere."""

import numpy as np
import pandas as pd
import pytest

from proactiv.analysis.pipeline import Analysis
from proactiv.analysis.steps import TableStep, register, unregister
from proactiv.views.sections import (
    SectionContext,
    closing_sections,
    note_html,
    register_section,
    sections,
    sections_of,
    table_html,
    unregister_section,
)


class Toy(TableStep):
    """A step that exists only in this file; the tests hand its sections a result instead of computing one."""

    name = "toy_sections"
    title = "Toy <sections>"
    files = ("toy_sections.parquet",)

    def compute(self, ctx, settings, progress):
        raise AssertionError("the section tests never compute the toy step")


def toy_body(table, ctx):
    return (
        "" if table.empty else f"<p class='toy'>{len(table)} classes</p>" + ctx.figure("a figure", "c", "alt")
    )


def toy_records(_, ctx):
    return f"<p class='after'>{len(ctx.run.records)} records</p>"


@pytest.fixture
def toy():
    register(Toy())
    register_section("toy_sections", intro=lambda table: f"{int(table.n.sum())} records counted")(toy_body)
    register_section(key="toy_after", after="toy_sections", title=lambda ctx: f"After ({ctx.gallery})")(
        toy_records
    )
    register_section(key="toy_closing")(toy_records)
    yield
    for key in ("toy_sections", "toy_after", "toy_closing"):
        unregister_section(key)
    unregister("toy_sections")


def _ctx(run, table=None, note=None) -> SectionContext:
    analysis = Analysis(run, results={"toy_sections": table}, notes={"toy_sections": note} if note else {})
    return SectionContext(run, analysis=analysis, gallery=3)


def test_a_toy_steps_sections_are_listed_by_its_name(toy):
    assert [s.key for s in sections_of("toy_sections")] == ["toy_sections", "toy_after"]
    assert "toy_closing" in [s.key for s in closing_sections()] and "toy_after" not in closing_sections()
    assert [s.key for s in sections()][-3:] == [
        "toy_sections",
        "toy_after",
        "toy_closing",
    ]  # registration order
    with pytest.raises(ValueError, match="a report section 'toy_sections' is already registered"):
        register_section("toy_sections")(toy_body)
    with pytest.raises(ValueError, match="a report section 'toy_after' is already registered"):
        register_section(key="toy_after")(toy_records)


def test_the_page_wraps_the_body_in_the_steps_title_intro_and_note(toy, run):
    table = pd.DataFrame({"label_name": ["no", "yes"], "n": [3, 4]})
    ctx = _ctx(run, table, note="2 classes <counted>")
    section, after = sections_of("toy_sections")
    assert section.html(ctx) == (
        "<h2>Toy &lt;sections&gt;</h2><p>7 records counted</p><p class='note'>2 classes &lt;counted&gt;</p>"
        "<p class='toy'>2 classes</p><figure/>"
    )
    assert ctx.figures == ["a figure"]  # the default figure keeps what it is given, for tests and notebooks
    assert after.html(ctx) == f"<h2>After (3)</h2><p class='after'>{len(run.records)} records</p>"
    assert section.html(_ctx(run, table.iloc[:0])) == "<h2>Toy &lt;sections&gt;</h2><p>0 records counted</p>"


def test_a_skipped_step_shows_its_heading_and_why_and_nothing_without_a_note(toy, run):
    section = sections_of("toy_sections")[0]
    skipped = section.html(_ctx(run, None, note="skipped: no model"))
    assert skipped == "<h2>Toy &lt;sections&gt;</h2><p class='note'>skipped: no model</p>"
    assert section.html(_ctx(run, None)) is None  # not computed and nothing to say: no section at all
    assert (
        sections_of("toy_sections")[1].html(_ctx(run, None)).startswith("<h2>After (3)</h2>")
    )  # records only


def test_a_records_section_needs_a_key_and_after_is_only_for_records():
    with pytest.raises(ValueError, match="a section of the records needs a key"):
        register_section()(toy_records)
    with pytest.raises(
        ValueError, match="section of step 'curves': 'after' is only for sections of the records"
    ):
        register_section("curves", after="breakpoints")(toy_records)
    with pytest.raises(KeyError, match="no report section 'nope'"):
        unregister_section("nope")


def test_tables_show_the_chosen_columns_and_infinity_and_notes_are_escaped():
    frame = pd.DataFrame({"value": [np.inf, 0.123456, -np.inf], "name": ["<a>", "b", "c"], "extra": 1})
    shown = table_html(frame, ["name", "value", "missing"], rows=2)
    assert shown.index("<th>name</th>") < shown.index("<th>value</th>") and "extra" not in shown
    assert "<td>∞</td>" in shown and "<td>0.123</td>" in shown and "-∞" not in shown  # the first two rows
    assert "&lt;a&gt;" in shown
    assert table_html(None) == table_html(frame.iloc[:0]) == "<p class='muted'>(empty)</p>"
    assert note_html("a < b") == "<p class='note'>a &lt; b</p>" and note_html(None) == note_html("") == ""
