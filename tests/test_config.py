"""The YAML sweep config: errors name the file and the field, paths resolve against the file, defaults."""

from pathlib import Path

import pytest

from proactiv.config import (
    ArraysSpec,
    ConfigError,
    ExecutionSpec,
    ProjectionSpec,
    UnitsSpec,
    as_option,
    load_config,
    parse_config,
)


@pytest.fixture
def write(tmp_path):
    def write(text, name="c.yaml"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


def test_config_errors_name_the_field(write, tmp_path):
    def check(text, message):
        with pytest.raises(ConfigError, match=message):
            load_config(write(text))

    check("grid: [{type: noise, snr_db: [10, 500]}]", r"c.yaml: invalid config\n  grid: .*noise.snr_db = 500")
    check("grid: [{type: wobble, amount: [1]}]", "unknown transform 'wobble'")
    check("grid: [{snr_db: [1]}]", r"grid\[0\]: missing 'type'")
    check(
        "grid: [{type: gain}]\nprojection: {cutoff: -1}",
        r"projection.cutoff: .*greater than or equal to 0 \(got -1\)",
    )
    check("grid: [{type: gain}]\nprojektion: {}", "projektion: Extra inputs are not permitted")
    check("grid: [{type: gain}\n", "not valid YAML")
    check("task: digits\n", "grid: Field required")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_unknown_nested_field_is_named_with_its_file(write):
    path = write("grid: [{type: gain}]\ndata: {instances_per_klass: 3}\n", "configs/sweep.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    first, second = str(err.value).splitlines()
    assert first == f"{path}: invalid config"
    assert second.startswith("  data.instances_per_klass: Extra inputs are not permitted")


def test_bad_transform_option_names_the_transform(write):
    with pytest.raises(ConfigError, match=r"grid: .*noise.*colour"):
        load_config(write("grid: [{type: noise, snr_db: [10], colour: pink}]"))


def test_empty_grid_is_refused(write):
    with pytest.raises(ConfigError, match=r"grid: List should have at least 1 item"):
        load_config(write("grid: []"))


def test_relative_paths_resolve_against_the_yaml_not_the_working_directory(write, tmp_path, monkeypatch):
    write(
        "task: custom\n"
        "model: {factory: 'pkg.mod:make', weights: ../weights/w.pt}\n"
        f"data: {{inputs: x.pt, labels: {tmp_path / 'elsewhere' / 'y.pt'}, root: ./data/../data}}\n"
        "grid: [{type: gain}]\n",
        "configs/sweep.yaml",
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(Path("..") / "configs" / "sweep.yaml")
    assert cfg.model.weights == tmp_path / "weights" / "w.pt"
    assert cfg.data.inputs == tmp_path / "configs" / "x.pt"
    assert cfg.data.root == tmp_path / "configs" / "data"
    assert cfg.data.labels == tmp_path / "elsewhere" / "y.pt"  # absolute: kept
    assert cfg.model.path is None and cfg.model.torchscript is None
    # parse_config (no file) keeps relative paths as given
    assert parse_config({"data": {"inputs": "x.pt"}, "grid": [{"type": "gain"}]}).data.inputs == Path("x.pt")


def test_parse_config_refuses_a_non_mapping_and_names_the_source():
    with pytest.raises(ConfigError, match="inline: expected a mapping at the top level, got list"):
        parse_config([{"type": "gain"}], "inline")


def test_model_factory_must_name_module_and_function():
    with pytest.raises(ConfigError, match=r"model.factory: expected 'package.module:function'"):
        parse_config({"model": {"factory": "pkg.mod"}, "grid": [{"type": "gain"}]})


def test_projection_given_keeps_only_what_the_config_set():
    assert ProjectionSpec().given() == {}
    spec = ProjectionSpec(max_steps=0, lr="auto", clamp=(0.0, 1.0))
    assert spec.given() == {"max_steps": 0, "lr": "auto", "clamp": (0.0, 1.0)}
    cfg = parse_config({"grid": [{"type": "gain"}], "projection": {"cutoff": 0.0}})
    assert cfg.projection.given() == {"cutoff": 0.0}
    with pytest.raises(ConfigError, match=r"projection.lr: expected a positive step size or 'auto'"):
        parse_config({"grid": [{"type": "gain"}], "projection": {"lr": -0.1}})


def test_the_python_api_takes_the_same_options_with_errors_naming_the_field():
    assert as_option(ArraysSpec, None, "arrays") == ArraysSpec()
    assert as_option(UnitsSpec, {"instances": 8}, "units") == UnitsSpec(instances=8, projections=1024)
    given = ExecutionSpec(progress=False)
    assert as_option(ExecutionSpec, given, "execution") is given
    with pytest.raises(ConfigError, match=r"arrays: invalid config\n  kep: .*did you mean 'keep'"):
        as_option(ArraysSpec, {"kep": "all"}, "arrays")
    with pytest.raises(
        ConfigError, match=r"execution: invalid config\n  executor: expected one of \('local', "
    ):
        as_option(ExecutionSpec, {"executor": "dask"}, "execution")
    with pytest.raises(TypeError, match="units: expected a UnitsSpec or a dict of its fields, got int"):
        as_option(UnitsSpec, 64, "units")
    with pytest.raises(ValueError, match="executor object"):
        ExecutionSpec(executor=object())
