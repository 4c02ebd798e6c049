"""The run schema: declared by the sweep, stored in run.json, derived once for older runs, the only judge of
what kind of run it is; and ``Run.model()`` rebuilding the swept model from it."""

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import proactiv as pv
from proactiv.config import parse_config
from proactiv.schema import InputSpec, RunSchema, derive_schema, input_spec
from proactiv.store import RunError
from proactiv.sweep import sweep_config
from proactiv.testing import sweep_image_run, write_synthetic_run

GRID = pv.Grid([pv.transforms.get("noise", snr_db=[20, 0])])
SRC = Path(pv.__file__).parent


class TabularMLP(nn.Module):
    """A fixed random MLP on 6 tabular features with 3 classes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


def tabular_run(path, **kw):
    model = TabularMLP()
    x = torch.randn(9, 6)
    y = model(x).argmax(1)
    projector = pv.Projector(model, max_steps=50)
    return pv.sweep(model, x, y, GRID, path, projector=projector, progress=False, keep_arrays="all", **kw)


def test_schema_round_trips_and_names_bad_values():
    schema = RunSchema(
        target="tensor",
        input=input_spec("image", (1, 28, 28), value_range=(0, 1)),
        outcome="within_cutoff",
        cutoff=0.005,
        group_column="meta.digit",
        metrics={"d_x": "x"},
        model={"source": "run"},
    )
    again = RunSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    assert schema.outcome_label == "within cutoff on xT (loss < 0.005)" and schema.group_title == "digit"
    assert schema.input.origin == "upper" and schema.input.colormap == "gray" and not schema.audible
    with pytest.raises(ValueError, match="'sound'"):
        InputSpec(kind="sound")
    with pytest.raises(ValueError, match="'guess'"):
        RunSchema(target="guess", input=input_spec("vector", (4,)))


def test_default_input_kind_rule():
    assert input_spec(None, (6,)).kind == "vector"
    assert input_spec(None, (1, 16000), sample_rate=16000).kind == "waveform"
    assert input_spec(None, (40, 101), frontend=True).kind == "spectrogram"
    assert input_spec(None, (1, 8, 8), value_range=(0, 1)).kind == "image"
    assert input_spec(None, (5, 7)).kind == "image"


def test_tabular_sweep_declares_a_vector_classifier(tmp_path):
    run = tabular_run(tmp_path / "run")
    schema = pv.open_run(run.path).schema  # read back from run.json, not re-derived
    assert json.loads((run.path / "run.json").read_text())["schema"]["input"]["kind"] == "vector"
    assert schema.input == input_spec("vector", (6,))
    assert schema.target == "label" and schema.outcome == "accuracy" and schema.group_column == "label_name"
    assert not schema.audible and schema.frontend is None
    assert set(schema.metrics) <= set(run.records.columns) and "d_x" in schema.metrics
    assert "psnr_t" not in schema.metrics


def test_input_kind_argument_wins(tmp_path):
    run = tabular_run(tmp_path / "run", input_kind="waveform", sample_rate=8000)
    assert run.schema.input.kind == "waveform" and run.schema.input.sample_rate == 8000 and run.schema.audible


def test_image_to_image_schema(tmp_path):
    run = sweep_image_run(tmp_path / "den")
    s = run.schema
    assert s.target == "tensor" and s.has_outputs and s.outcome == "within_cutoff" and s.cutoff == 1e-3
    assert s.input.kind == "image" and s.input.value_range == (0.0, 1.0)
    assert s.group_column == "meta.digit" and "psnr_out_t" in s.metrics and "ssim_proj" in s.metrics


def _strip_schema(run):
    header = json.loads((run.path / "run.json").read_text())
    stored = header.pop("schema")
    (run.path / "run.json").write_text(json.dumps(header))
    return RunSchema.from_dict(stored)


def test_runs_without_a_schema_get_theirs_derived_on_open(tmp_path):
    image = sweep_image_run(tmp_path / "den")
    stored = _strip_schema(image)
    derived = pv.open_run(image.path).schema
    for field in ("target", "outcome", "cutoff", "group_column", "metrics"):
        assert getattr(derived, field) == getattr(stored, field), field
    assert derived.input.kind == "image" and derived.input.shape == (1, 12, 12)

    header = {
        "config": {
            "task": "kws",
            "domain": "feature",
            "projection": {"cutoff": 0.05},
            "frontend": "LogMel(...)",
        }
    }
    kws = derive_schema(header, ["pred_t", "correct_t", "label_name", "d_x"], (40, 101))
    assert kws.input.kind == "spectrogram" and kws.audible and kws.outcome == "accuracy"
    wave = derive_schema({"config": {"task": "kws", "domain": "waveform"}}, ["pred_t"], (16000,))
    assert wave.input.kind == "waveform" and wave.input.sample_rate == 16000
    tab = derive_schema({"config": {"task": "custom"}}, ["pred_t"], (6,))
    assert tab.input.kind == "vector" and not tab.audible


def test_the_desired_output_is_declared_and_derived_once_for_older_runs(tmp_path):
    assert tabular_run(tmp_path / "label").schema.desired == "label"
    assert sweep_image_run(tmp_path / "den").schema.desired == "tensor"
    model = TabularMLP()
    projector = pv.Projector(model, loss="own_prediction", max_steps=20)
    own = pv.sweep(model, torch.randn(5, 6), torch.zeros(5, dtype=torch.long), GRID, tmp_path / "own",
                   projector=projector, progress=False)  # fmt: skip
    assert own.schema.desired == "clean_prediction" and own.schema.desired_column == "pred_clean"
    header = json.loads((own.path / "run.json").read_text())
    assert header["schema"].pop("desired") == "clean_prediction"
    (own.path / "run.json").write_text(json.dumps(header))  # as a run written before the field
    assert pv.open_run(own.path).schema.desired == "clean_prediction"  # from its projection loss
    assert _strip_schema(own) and pv.open_run(own.path).schema.desired == "clean_prediction"
    with pytest.raises(ValueError, match="desired 'label'"):
        RunSchema(target="tensor", input=input_spec("vector", (4,)), desired="label")


def test_run_model_rebuilds_the_in_memory_model(tmp_path):
    run = tabular_run(tmp_path / "run")
    model = pv.open_run(run.path).model(device="cpu")
    x = torch.randn(4, 6)
    assert torch.equal(model(x), TabularMLP()(x)) and not model.training


def test_run_model_refuses_a_different_model(tmp_path):
    run = tabular_run(tmp_path / "run")
    header = json.loads((run.path / "run.json").read_text())
    header["fingerprints"]["model"] = "0" * 16
    (run.path / "run.json").write_text(json.dumps(header))
    with pytest.raises(RunError, match="differs from the one swept"):
        pv.open_run(run.path).model()


def test_run_model_says_why_when_the_model_cannot_be_kept(tmp_path):
    class Local(nn.Module):  # defined in a function: cannot be pickled
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 3)

        def forward(self, x):
            return self.lin(x)

    model = Local()
    x = torch.randn(5, 6)
    run = pv.sweep(model, x, model(x).argmax(1), GRID, tmp_path / "run", progress=False)
    assert run.schema.model is None
    with pytest.raises(RunError, match="could not be saved with the run"):
        pv.open_run(run.path).model()
    assert len(run.records) == 10  # the sweep itself went on


def test_config_sweep_rebuilds_its_model_from_the_config(tmp_path):
    cfg = parse_config(
        {
            "task": "digits",
            "data": {"instances_per_class": 1, "image_size": 8},
            "grid": [{"type": "rotate", "degrees": [0, 90]}],
            "projection": {"max_steps": 20},
        }
    )
    run = sweep_config(cfg, tmp_path / "run", progress=False)
    assert run.schema.model["source"] == "config" and run.schema.input.kind == "image"
    assert not (run.path / "model.pt").exists()  # a config run is rebuilt from its config, not copied
    model = pv.open_run(run.path).model()
    x = torch.rand(2, 1, 8, 8)
    assert model(x).shape == (2, 10)


def test_synthetic_runs_declare_their_kind(tmp_path):
    spec = write_synthetic_run(tmp_path / "s", n_instances=8).schema
    vec = write_synthetic_run(tmp_path / "v", n_instances=8, shape=(30,), bias_rows=(0, 1)).schema
    assert spec.input.kind == "spectrogram" and vec.input.kind == "vector"


#: what code after the sweep must not branch on: task names, record columns standing in for the run's kind,
#: a frontend's repr
GUESSES = [
    r"""["']pred_t["']\s+(not\s+)?in\b""",
    r"""["'](pred_\w+|flipped|correct_\w+|psnr_\w+|ssim_\w+|d_x_l2)["']\s+(not\s+)?in\s+[\w.]*columns""",
    r"""\b(task|cfg\.get\(["']task["']\))\s*(==|!=|in|not in)\s*\(?["'](kws|digits|emnist|denoise|synthetic|custom)""",
    r"""get\(["']task["']\)\s*(==|!=|in|not in)""",
    r"""get\(["']frontend["']\)""",
    r"""["']mel["']\s+in\b""",
    r"""repr\(frontend\)""",
]


def test_nothing_after_the_sweep_guesses_the_kind_of_run():
    offenders = []
    folders = ["analysis", "report", "dashboard", "views"]
    files = [p for f in folders for p in (SRC / f).rglob("*.py")] + [SRC / "summary.py", SRC / "store.py"]
    for path in files:
        text = path.read_text()
        for pattern in GUESSES:
            for m in re.finditer(pattern, text):
                line = text[: m.start()].count("\n") + 1
                offenders.append(f"{path.relative_to(SRC)}:{line}: {m.group(0)}")
    assert offenders == []


def test_run_task_rebuilds_inputs_and_transforms_them_as_the_sweep_did(tmp_path):
    from proactiv.sweep import model_inputs

    run = tabular_run(tmp_path / "run")
    task = pv.open_run(run.path).task()
    arrays = run.arrays(instance=2, point=1)
    again = model_inputs(run.grid, task.frontend, task.inputs[2:3], [2], run.config["seed"], point=1)
    assert torch.allclose(again[0], torch.from_numpy(arrays["x_t"]))
    between = {"noise.snr_db": 7.5}  # off the grid: seeded by the values, the same every time
    a = model_inputs(run.grid, task.frontend, task.inputs[:3], [0, 1, 2], 0, values=between)
    b = model_inputs(run.grid, task.frontend, task.inputs[:3], [0, 1, 2], 0, values=between)
    assert torch.equal(a, b) and not torch.equal(a, task.inputs[:3])


def test_bad_schema_arguments_are_named_and_nothing_is_written(tmp_path):
    model = TabularMLP()
    x, y = torch.randn(4, 6), torch.zeros(4, dtype=torch.long)
    for kw, message in (
        ({"input_kind": "sound"}, "input_kind='sound'"),
        ({"sample_rate": -5}, "sample_rate=-5"),
        ({"schema": RunSchema(target="label", input=input_spec("vector", (6,)), group_column="meta.speaker")},
         "no metadata column 'speaker'"),
    ):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            pv.sweep(model, x, y, GRID, tmp_path / "run", progress=False, **kw)
        assert not (tmp_path / "run").exists()


def test_record_columns_come_from_the_schema(tmp_path):
    image = sweep_image_run(tmp_path / "den")  # tensor target: within-cutoff outcome, no predictions
    s = image.schema
    assert s.has("correct_t") and s.has("psnr_out_t") and not s.has("flipped") and not s.has("pred_t")
    tab = tabular_run(tmp_path / "tab").schema
    assert tab.has("flipped") and tab.has("pred_t") and tab.has("d_x") and not tab.has("psnr_t")
    assert set(c for c in image.records.columns if s.has(c)) >= {"correct_t", "d_x", "psnr_out_t", "ssim_t"}


def test_every_metric_table_is_read_from_the_one_catalogue():
    from proactiv.analysis.breakpoints import CURVE_METRICS, OUTCOME_METRICS
    from proactiv.analysis.runview import QUALITY_METRICS
    from proactiv.dashboard.data import METRICS
    from proactiv.schema import CLASSIFIER_COLUMNS, FRACTION, METRIC_CATALOGUE, METRIC_UNITS
    from proactiv.views.curves import FRACTIONS, METRIC_LABELS

    catalogue = METRIC_CATALOGUE
    assert all(name == m.name and m.unit for name, m in catalogue.items())
    assert METRIC_UNITS == {name: m.unit for name, m in catalogue.items() if m.record}
    assert all(m.source in {*METRIC_UNITS, *CLASSIFIER_COLUMNS} for m in catalogue.values())
    # a curve is labelled by the catalogue, or is the outcome, worded by the schema
    for name in CURVE_METRICS:
        assert catalogue[name].curve and (name in METRIC_LABELS) != (name in OUTCOME_METRICS)
    assert set(QUALITY_METRICS) <= set(CURVE_METRICS) & set(METRICS) & set(METRIC_UNITS)
    assert all(METRIC_LABELS[m] == label == METRICS[m][1] for m, label in QUALITY_METRICS.items())
    for name, (sql, label, column) in METRICS.items():
        metric = catalogue[name]
        assert label == metric.dashboard and column == metric.source and sql.startswith("avg(")
    fractions = {name for name, m in catalogue.items() if m.unit == FRACTION}
    assert set(FRACTIONS) == fractions == {*OUTCOME_METRICS, "flip_rate"} and fractions <= set(METRICS)
