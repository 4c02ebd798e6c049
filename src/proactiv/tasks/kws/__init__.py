"""Keyword spotting: offline corpus synthesis, the Speech Commands loader, log-mel frontend, models, training."""

from proactiv.tasks.kws.frontend import LogMel, griffin_lim
from proactiv.tasks.kws.models import KeywordModel, build_model, load_model, save_model
from proactiv.tasks.kws.speech_commands import SpeechCommands, load_clip
from proactiv.tasks.kws.synth import CLASS_NAMES, KEYWORDS, SAMPLE_RATE, synthesize

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
