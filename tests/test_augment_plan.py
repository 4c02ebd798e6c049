"""The planner hook: the task commands' ``--augment-from RUN`` gets its plan from the planner the entry floor
registers (planning reads analyses, above the tasks); without one the error says how to register it."""

import pytest

from proactiv import augment_plan


@pytest.fixture
def no_planner(monkeypatch):
    monkeypatch.setattr(augment_plan, "_planner", None)


def test_without_a_planner_the_error_says_how_to_register_one(no_planner):
    with pytest.raises(RuntimeError, match=r"no augmentation planner is registered.*register_planner"):
        augment_plan.plan_toward("runs/any")


def test_the_registered_planner_makes_the_plan(no_planner):
    asked = []
    augment_plan.register_planner(lambda run: asked.append(run) or "plan")
    assert augment_plan.plan_toward("runs/a") == "plan" and asked == ["runs/a"]


def test_the_command_registers_the_mitigation_planner():
    from proactiv.cli import app  # noqa: F401  (importing the command wires the task commands)
    from proactiv.mitigation import augmentation_plan

    assert augment_plan._planner is augmentation_plan
