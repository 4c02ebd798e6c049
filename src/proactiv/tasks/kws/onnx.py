"""A keyword model in an ONNX file: the ``metadata_props`` its export carries (class names, frontend,
architecture) and the :class:`~proactiv.tasks.kws.models.KeywordModel` rebuilt from them. The kws task
registers both with :mod:`proactiv.models`, so ``pv.export_onnx`` and ``pv.load_model`` handle keyword models
without generic code importing the task."""

from __future__ import annotations

import json

from torch import nn

from proactiv.models import OnnxModel
from proactiv.tasks.kws.frontend import LogMel
from proactiv.tasks.kws.models import ARCHS, KeywordModel, arch_parts

#: the ``metadata_props`` a keyword model's export carries: key → what it holds
KWS_KEYS = {
    "proactiv.kws.arch": 'architecture name, e.g. "dscnn"',
    "proactiv.kws.class_names": 'JSON list of class names, e.g. ["yes", "no", ...]',
    "proactiv.kws.frontend": "JSON object of the log-mel frontend config (LogMel().config())",
}


def export_metadata(model: nn.Module) -> dict[str, str]:
    """The :data:`KWS_KEYS` of a :class:`KeywordModel`, for :func:`proactiv.models.export_onnx`."""
    return {
        "proactiv.kws.arch": model.arch,
        "proactiv.kws.class_names": json.dumps(list(model.class_names)),
        "proactiv.kws.frontend": json.dumps(model.frontend.config()),
    }


def keyword_model(model: OnnxModel) -> KeywordModel:
    """A :class:`KeywordModel` around a converted keyword network, rebuilt from the ``metadata_props``
    :func:`export_metadata` writes (:data:`KWS_KEYS`); a missing or unreadable key is named with what to add.
    The network already adds the logit offset it was exported with."""
    values = {}
    for key, what in KWS_KEYS.items():
        if key not in model.metadata:
            raise ValueError(
                f"{model.source}: a keyword model needs metadata_props key {key!r} ({what}); export it with "
                f"proactiv.models.export_onnx(keyword_model, ...) or add the key to the file's metadata_props"
            )
        try:
            values[key] = model.metadata[key] if key.endswith("arch") else json.loads(model.metadata[key])
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{model.source}: metadata_props {key!r} is not JSON ({err}); expected {what}"
            ) from None
    arch, names, frontend = values.values()
    try:
        known = bool(arch_parts(arch))
    except ValueError:
        known = False
    if not known or not isinstance(names, list) or not isinstance(frontend, dict):
        raise ValueError(
            f"{model.source}: metadata_props hold arch={arch!r}, class_names={names!r}, frontend={frontend!r}; "
            f"expected an arch of {ARCHS} (or several joined by '+'), a list of class names and a frontend config object"
        )
    try:
        log_mel = LogMel.from_config(frontend)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{model.source}: metadata_props 'proactiv.kws.frontend' is not a frontend ({err})"
        ) from None
    extra = {"onnx": str(model.source), "onnx_max_abs_diff": model.max_abs_diff}
    return KeywordModel(model, arch=arch, frontend=log_mel, class_names=names, extra=extra).eval()
