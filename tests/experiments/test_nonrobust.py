"""The non-robust-features experiment on a tiny digits setting (8×8 images, a few hundred of them, 2 epochs):
the relabelled sets carry the targets and only them, the random targets come back from the seed, and the command
prints the figures with chance and writes them."""

import json

import pytest
import torch
from typer.testing import CliRunner

from proactiv.cli import app
from proactiv.experiments import NonRobustSettings, non_robust, non_robust_features
from proactiv.experiments.nonrobust import RESULT_FILE, digits_parts, random_targets

TINY = {"eps": 1.0, "steps": 5, "epochs": 2, "max_train": 300, "max_test": 120}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def recorded():
    """The experiment with every training call recorded: (images, labels) passed to each trainer."""
    torch.set_num_threads(1)
    parts = digits_parts(image_size=8, epochs=2)
    calls = {"model": [], "second": []}

    def recording(name, train):
        def call(x, y, seed, progress):
            calls[name].append((x.clone(), y.clone()))
            return train(x, y, seed, progress)

        return call

    parts.train_model = recording("model", parts.train_model)
    parts.train_second = recording("second", parts.train_second)
    result = non_robust_features(parts, NonRobustSettings(**TINY), progress=False, device="cpu")
    return result, calls


def test_the_deterministic_set_is_labelled_the_next_class_for_every_image(recorded):
    result, _ = recorded
    y = result.labels
    assert len(y) == 300 and len(result.deterministic_images) == 300
    assert torch.equal(result.deterministic_targets, (y + 1) % 10)
    assert not (result.deterministic_targets == y).any()


def test_the_fresh_models_never_saw_a_clean_label(recorded):
    result, calls = recorded
    (source_x, source_y), (det_x, det_y), (rand_x, rand_y) = calls["model"]
    assert torch.equal(source_y, result.labels)  # only the source model (and the second) learn from y
    assert torch.equal(det_y, result.deterministic_targets) and not (det_y == result.labels).any()
    assert torch.equal(rand_y, result.random_targets) and not (rand_y == result.labels).any()
    assert torch.equal(det_x, result.deterministic_images) and torch.equal(rand_x, result.random_images)
    assert not torch.equal(det_x, source_x)  # the attacked images, not the clean ones
    change = (det_x - source_x).flatten(1).norm(dim=1)
    assert (change <= TINY["eps"] + 1e-5).all() and det_x.min() >= 0 and det_x.max() <= 1
    ((second_x, second_y),) = calls["second"]
    assert torch.equal(second_x, source_x) and torch.equal(second_y, result.labels)


def test_the_random_targets_come_back_from_the_seed(recorded):
    result, _ = recorded
    y = result.labels
    assert torch.equal(result.random_targets, random_targets(y, 10, seed=TINY.get("seed", 0)))
    again, other = random_targets(y, 10, seed=7), random_targets(y, 10, seed=8)
    assert torch.equal(again, random_targets(y, 10, seed=7)) and not torch.equal(again, other)
    assert not (again == y).any() and set(again.tolist()) == set(range(10))


def test_the_figures_are_shares_with_chance_beside_them(recorded):
    result, _ = recorded
    assert result.chance == pytest.approx(0.1)
    assert set(result.figures) >= {"source_clean_accuracy", "attack_success_deterministic", "transfer_rate",
                                   "deterministic_clean_accuracy", "random_clean_accuracy"}  # fmt: skip
    assert all(0 <= v <= 1 for v in result.figures.values())
    assert result.counts == {"train": 300, "test": 120, "classes": 10}
    assert result.sizes["change_l2_median"] <= TINY["eps"] + 1e-4


def test_the_command_prints_the_figures_and_writes_the_json(tmp_path):
    out = tmp_path / "nr"
    args = ["experiment", "non-robust", "--task", "digits", "--out", str(out), "--image-size", "8",
            "--no-progress", "--device", "cpu", *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "clean test accuracy" in result.output and "(chance 0.100)" in result.output
    assert "transfer" in result.output and str(out / RESULT_FILE) in result.output
    stored = json.loads((out / RESULT_FILE).read_text())
    assert stored["chance"] == pytest.approx(0.1) and stored["settings"]["eps"] == 1.0
    assert set(stored["figures"]) == set(stored["meaning"]) and stored["counts"]["train"] == 300
    for name, value in stored["figures"].items():
        assert f"{value:6.3f}" in result.output, name


@pytest.mark.parametrize(
    "option, message",
    [(["--eps", "0"], "--eps 0.0: expected a finite number > 0"), (["--eps", "-0.5"], "--eps -0.5: expected a finite number > 0"),
     (["--task", "kws"], "--task 'kws': expected one of digits"), (["--norm", "l1"], "--norm 'l1': expected one of l2, linf"),
     (["--steps", "0"], "--steps 0: expected a whole number >= 1"), (["--max-train", "0"], "--max-train 0: expected"),
     (["--image-size", "4"], "--image-size 4: expected 8")],
)  # fmt: skip
def test_a_bad_option_is_one_error_line_naming_it(option, message, tmp_path):
    result = CliRunner().invoke(
        app, ["experiment", "non-robust", "--no-progress", "-o", str(tmp_path), *option]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / RESULT_FILE).exists()


def test_the_python_function_refuses_bad_settings_before_loading_anything():
    with pytest.raises(ValueError, match="eps=0: expected a finite number > 0"):
        non_robust("digits", eps=0)
    with pytest.raises(ValueError, match="task='kws': expected one of digits"):
        non_robust("kws")
