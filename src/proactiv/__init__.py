"""proactiv: where a model breaks under input transformations, and what the input would have needed to be.

Implements the ProactiV input-optimisation method (Prasad et al., IEEE TVCG 2023) for any differentiable
PyTorch model.
"""

from proactiv import analysis, assertions, models, sources, tasks, transforms, views, whatif
from proactiv.config import ArraysSpec, ExecutionSpec, ProjectionSpec, UnitsSpec
from proactiv.models import export_onnx, from_onnx, load_model
from proactiv.monitor import monitor, open_monitor
from proactiv.optimize import ProjectionResult, Projector
from proactiv.outputs import adapt
from proactiv.schema import RunSchema
from proactiv.store import Run, open_run
from proactiv.streaming import stream
from proactiv.sweep import sweep
from proactiv.task_data import TaskData
from proactiv.transforms import Grid, Transform
from proactiv.version import __version__

__all__ = [
    "adapt",
    "ArraysSpec",
    "ExecutionSpec",
    "Grid",
    "analysis",
    "assertions",
    "export_onnx",
    "from_onnx",
    "load_model",
    "models",
    "monitor",
    "ProjectionResult",
    "ProjectionSpec",
    "Projector",
    "Run",
    "RunSchema",
    "sources",
    "TaskData",
    "Transform",
    "UnitsSpec",
    "__version__",
    "open_monitor",
    "open_run",
    "stream",
    "sweep",
    "tasks",
    "transforms",
    "views",
    "whatif",
]
