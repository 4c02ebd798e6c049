"""The digits task as a sweep config sees it."""

from __future__ import annotations

from proactiv.config import SweepConfig
from proactiv.tasks import digits
from proactiv.tasks.base import TaskData


def load_task(cfg: SweepConfig) -> TaskData:
    return digits.load_task(cfg.data.instances_per_class, cfg.data.seed, cfg.data.split)
