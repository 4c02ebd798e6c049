"""Analyses of a run: difference embeddings, breakpoints, error slices, bias maps, interim views, CKA across
transforms, per-instance breakpoints, adversarial and certified radii, attributions and their faithfulness, and
anchors (local rules over transform ranges).

Every function takes a run (an open :class:`~proactiv.store.Run` or its directory) and returns plain
tables or arrays; :func:`analyze` computes every registered step (:mod:`proactiv.analysis.steps`) into
``RUN/analysis/`` and :func:`load` reads them back. Heavy libraries (openTSNE, UMAP, scikit-learn) are
imported only when used.
"""

from proactiv.analysis.anchor import Anchor, anchor
from proactiv.analysis.arrays import KeptArrays, iter_arrays, load_arrays
from proactiv.analysis.attribution import attribute
from proactiv.analysis.bias import BiasMaps, bias_maps
from proactiv.analysis.breakpoints import breakpoints, curves
from proactiv.analysis.cka import (
    MinibatchCKA,
    cka,
    compare_models_cka,
    layer_activations,
    minibatch_cka,
    transform_cka,
)
from proactiv.analysis.confusions import confusions
from proactiv.analysis.counterexamples import counterexamples
from proactiv.analysis.embedding import difference_matrix, embed
from proactiv.analysis.faithfulness import faithfulness_table
from proactiv.analysis.influence import influence, self_influence
from proactiv.analysis.inputs import InputKind, input_kind, is_image_run
from proactiv.analysis.instance_breakpoints import (
    InstanceBreakpoints,
    instance_boundary,
    instance_breakpoints,
)
from proactiv.analysis.interim import Interim, interim, worst_records
from proactiv.analysis.pipeline import Analysis, analyze, load_analysis, stale_steps
from proactiv.analysis.radius import radius
from proactiv.analysis.runview import AnalysisError
from proactiv.analysis.slices import error_slices
from proactiv.analysis.steps import Step, StepContext, TableStep, get, register, registered, unregister
from proactiv.analysis.surrogate import explain_record, surrogate
from proactiv.plugins import import_package

import_package(__name__, __path__)  # every module registers its steps: a new one needs no line here

#: the built-in steps, in dependency order (``registered()`` adds the steps of plug-ins and of your own code)
STEPS = tuple(s.name for s in registered(plugins=False))

#: read the stored analyses of a run (every registered step), computing nothing
load = load_analysis

__all__ = [
    "STEPS",
    "Analysis",
    "Anchor",
    "AnalysisError",
    "BiasMaps",
    "InputKind",
    "Interim",
    "InstanceBreakpoints",
    "KeptArrays",
    "MinibatchCKA",
    "Step",
    "StepContext",
    "TableStep",
    "analyze",
    "anchor",
    "attribute",
    "bias_maps",
    "breakpoints",
    "cka",
    "compare_models_cka",
    "confusions",
    "counterexamples",
    "curves",
    "difference_matrix",
    "embed",
    "error_slices",
    "explain_record",
    "faithfulness_table",
    "get",
    "influence",
    "input_kind",
    "instance_boundary",
    "instance_breakpoints",
    "interim",
    "is_image_run",
    "iter_arrays",
    "layer_activations",
    "load",
    "load_analysis",
    "load_arrays",
    "minibatch_cka",
    "radius",
    "register",
    "registered",
    "self_influence",
    "stale_steps",
    "surrogate",
    "transform_cka",
    "unregister",
    "worst_records",
]
