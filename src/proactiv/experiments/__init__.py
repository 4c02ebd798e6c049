"""Experiments: protocols that train models to test a claim about what they learn, rather than analyse a run
(one module each): :func:`non_robust`, the non-robust-features experiment of Ilyas et al. 2019."""

from proactiv.experiments.nonrobust import (
    ExperimentParts,
    NonRobustResult,
    NonRobustSettings,
    non_robust,
    non_robust_features,
)

__all__ = ["ExperimentParts", "NonRobustResult", "NonRobustSettings", "non_robust", "non_robust_features"]
