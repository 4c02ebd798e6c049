"""The floors of the package: data flows one way, and each module imports only from its own floor or below.

``tests/test_layers.py`` walks every module's syntax tree (imports inside functions included) and fails on an
import that climbs, naming the file, the line and both floors. What only a task knows (how to rebuild it, how
its frontend inverts, how to bound its layers) it registers into a registry on a lower floor, so generic code
never imports a specific task.
"""

from __future__ import annotations

#: floor → the top-level modules and packages of ``proactiv`` on it, lowest floor first
FLOORS: dict[str, tuple[str, ...]] = {
    "ground": (
        "layers", "version", "schema", "config", "transforms", "losses", "metrics", "fingerprint", "device",
        "io", "progress", "fold", "cli_errors", "frontends", "task_data", "bounds", "plugins",
        "augment_plan", "extras", "attack", "robust_training", "sources",
    ),
    "engine": (
        "optimize", "store", "sweep", "sweep_legacy", "executors", "checkpoints", "models", "summary", "rebuild",
        "monitor", "outputs", "streaming", "model_copy",
    ),
    "tasks": ("tasks",),
    "analysis": ("analysis", "whatif"),
    "views": ("views", "mitigation"),
    "surfaces": ("report", "dashboard", "assertions", "selftest", "testing", "experiments"),
    "entry": ("cli", "__init__", "__main__"),
}  # fmt: skip

#: floors that may import a specific task (``proactiv.tasks.<name>``); the others go through the registries
TASK_AWARE = frozenset({"tasks", "surfaces", "entry"})


def floor_of(module: str) -> str:
    """The floor of a dotted module name inside ``proactiv`` (``proactiv`` itself is the entry floor)."""
    parts = module.split(".")
    if parts[0] != "proactiv":
        raise ValueError(f"{module!r} is not a proactiv module")
    top = parts[1] if len(parts) > 1 else "__init__"
    for name, members in FLOORS.items():
        if top in members:
            return name
    raise ValueError(
        f"module {module!r}: its top level {top!r} is on no floor; add it to proactiv.layers.FLOORS"
    )


def rank(floor: str) -> int:
    """How high ``floor`` is (0: ground)."""
    return list(FLOORS).index(floor)
