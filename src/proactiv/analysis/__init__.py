"""Analyses of a run: difference embeddings, breakpoints, error slices, bias maps, interim views.

Every function takes a run (an open :class:`~proactiv.store.Run` or its directory) and returns plain
tables or arrays; :func:`analyze` computes them all into ``RUN/analysis/``. Heavy libraries (openTSNE,
UMAP, scikit-learn) are imported only when used.
"""

from proactiv.analysis.arrays import KeptArrays, iter_arrays, load_arrays
from proactiv.analysis.bias import BiasMaps, bias_maps
from proactiv.analysis.breakpoints import breakpoints, curves
from proactiv.analysis.embedding import difference_matrix, embed
from proactiv.analysis.inputs import InputKind, input_kind, is_image_run
from proactiv.analysis.interim import Interim, interim, worst_records
from proactiv.analysis.pipeline import STEPS, Analysis, analyze, load_analysis, stale_steps
from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.slices import error_slices

__all__ = [
    "STEPS",
    "Analysis",
    "AnalysisError",
    "BiasMaps",
    "InputKind",
    "Interim",
    "KeptArrays",
    "analyze",
    "bias_maps",
    "breakpoints",
    "curves",
    "difference_matrix",
    "embed",
    "error_slices",
    "input_kind",
    "interim",
    "is_image_run",
    "iter_arrays",
    "load_analysis",
    "load_arrays",
    "stale_steps",
    "worst_records",
]
