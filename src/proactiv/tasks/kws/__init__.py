"""Keyword spotting: offline corpus synthesis, the Speech Commands loader, log-mel frontend, models, training.

Importing any part of the task registers what generic code needs to know of its model classes: the bound rule of
:class:`UtteranceNorm` (for certified radii) and the ONNX metadata of a :class:`KeywordModel`'s export. What is
looked up by name before anything of the task is loaded (the task, its training sets, its model files) is
registered by :mod:`proactiv.tasks`.
"""

from proactiv.bounds import register_bound_rule
from proactiv.models import register_export_metadata
from proactiv.tasks.kws.bounds import utterance_norm_box
from proactiv.tasks.kws.frontend import LogMel, griffin_lim
from proactiv.tasks.kws.models import KeywordModel, UtteranceNorm, build_model, load_model, save_model
from proactiv.tasks.kws.onnx import export_metadata
from proactiv.tasks.kws.speech_commands import SpeechCommands, load_clip
from proactiv.tasks.kws.synth import CLASS_NAMES, KEYWORDS, SAMPLE_RATE, synthesize

register_bound_rule(UtteranceNorm, utterance_norm_box)
register_export_metadata(KeywordModel, export_metadata)

__all__ = [
    "CLASS_NAMES",
    "KEYWORDS",
    "SAMPLE_RATE",
    "KeywordModel",
    "LogMel",
    "SpeechCommands",
    "build_model",
    "griffin_lim",
    "load_clip",
    "load_model",
    "save_model",
    "synthesize",
]
