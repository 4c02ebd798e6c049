"""One record up close: x, xT, x̂T and x̂T − xT drawn from the stored arrays (maps for 2-D inputs, lines for
1-D ones, the outputs in a second row for tensor targets), the facts worded for people, long signals kept as
their envelope, and the worst-records gallery of the report."""

import re

import numpy as np

from proactiv import views
from proactiv.analysis import load_arrays
from proactiv.testing import sweep_image_run, write_synthetic_run
from proactiv.views.record import db, line, record_facts
from proactiv.views.sections import SectionContext, sections

GALLERY = next(s for s in sections() if s.key == "gallery")


def test_record_of_a_spectrogram_run_is_four_maps(run):
    arrays = run.arrays(instance=0, point=5)
    fig = views.record(run, 0, 5)
    assert [t.type for t in fig.data] == ["heatmap"] * 4
    assert np.allclose(np.asarray(fig.data[1].z, dtype=float), arrays["x_t"])
    assert np.allclose(np.asarray(fig.data[3].z, dtype=float), arrays["x_proj"] - arrays["x_t"], atol=1e-6)
    assert "instance 0 · grid point 5" in fig.layout.title.text


def test_record_of_a_vector_run_is_lines(vector_run):
    arrays = vector_run.arrays(instance=0, point=1)
    fig = views.record(vector_run, 0, 1)
    assert fig.data and all(t.type == "scatter" for t in fig.data)  # lines, no heatmap
    xt = next(t for t in fig.data if t.name == "xT (transformed)")
    assert np.allclose(xt.y, arrays["x_t"])


def test_the_gallery_shows_the_worst_failing_kept_record_of_each_instance(run):
    ctx = SectionContext(run, gallery=3)
    page = GALLERY.html(ctx)
    assert page.startswith("<h2>Worst records</h2><p>Kept records the model got wrong with the highest loss")
    shown = [tuple(map(int, re.match(r"instance (\d+) · grid point (\d+)", f.layout.title.text).groups()))
             for f in ctx.figures]  # fmt: skip
    kept = set(load_arrays(run).instance.tolist())
    records = run.records
    failing = records[records.instance.isin(kept) & ~records.correct_t].sort_values("loss_t", ascending=False)
    expected = failing.drop_duplicates("instance").head(3)
    assert shown == list(zip(expected.instance, expected.point, strict=True))
    title = ctx.figures[0].layout.title.text
    row = expected.iloc[0]
    names = ["yes", "no", "up", "down"]
    assert (
        f"label {names[row.label]} · prediction on x {names[row.pred_clean]} → on xT {names[row.pred_t]}"
        in title
    )


def test_a_run_without_kept_arrays_says_so(tmp_path):
    run = write_synthetic_run(tmp_path / "none", n_instances=8, keep_per_class=0)
    ctx = SectionContext(run)
    assert (
        "<p class='note'>no arrays kept in this run (arrays.keep = &#x27;sample&#x27;)</p>"
        in GALLERY.html(ctx)
    )
    assert ctx.figures == []


def test_tensor_targets_draw_their_outputs_and_say_whether_they_are_within_the_cutoff(tmp_path):
    run = sweep_image_run(tmp_path / "den", n_instances=4, size=8)
    ctx = SectionContext(run, gallery=1)
    assert "The second row shows the model's outputs f(xT), f(x̂T) next to the target y." in GALLERY.html(ctx)
    (fig,) = ctx.figures
    assert [a.text for a in fig.layout.annotations] == [
        "x (clean)", "xT (transformed)", "x̂T (projected)", "x̂T − xT",
        "y (target)", "f(xT) (output)", "f(x̂T) (output)", "f(x̂T) − f(xT)",
    ]  # fmt: skip
    assert "output on xT outside the loss cutoff → on x̂T within the loss cutoff" in fig.layout.title.text
    assert "PSNR against the target: f(xT) " in fig.layout.title.text


def test_facts_name_classes_and_psnr_for_people(run):
    record = {"instance": 3, "point": 7, "label": 0, "pred_clean": 0, "pred_t": 2, "pred_proj": 0,
              "loss_t": 3.25, "loss_proj": 0.04, "d_x": 0.0123, "steps": 40}  # fmt: skip
    lines = record_facts(record, run.schema, lambda c: ["yes", "no", "up", "down"][int(c)], "noise.snr_db=0")
    assert lines == [
        "instance 3 · grid point 7: noise.snr_db=0",
        "label yes · prediction on x yes → on xT up → on x̂T yes",
        "loss on xT 3.2500 → on x̂T 0.0400 · d_x 0.0123 · 40 steps",
    ]
    assert db(float("inf")) == "∞ dB (identical)" and db(18.26) == "18.3 dB"


def test_long_signals_keep_their_envelope():
    a = np.zeros(16000, dtype=np.float32)
    a[9001], a[12345] = 1.0, -2.0  # a click and a dip a plain subsample would miss
    xs, ys = line(a, limit=400)
    assert len(xs) == len(ys) == 400 and ys.max() == 1.0 and ys.min() == -2.0
    assert np.all(np.diff(xs) >= 0) and xs[int(np.argmax(ys))] <= 9001 < xs[int(np.argmax(ys))] + 80
    short = np.arange(10.0)
    assert np.array_equal(line(short)[1], short) and np.array_equal(line(short)[0], np.arange(10))
