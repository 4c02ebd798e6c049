"""Optional dependencies: the one place that turns a missing one into an error naming the extra to install.

The core install (``pip install proactiv``) holds what a sweep, its records and the report need. Everything
else comes with an extra of the package (``pyproject.toml``, ``[project.optional-dependencies]``), and every
module that uses such a library imports it through :func:`require`, so a user who lacks it reads which
command installs it instead of a bare ``ModuleNotFoundError`` from deep inside a step.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: extra → what it is for (the extras themselves are listed in pyproject.toml; a test keeps the two alike)
EXTRAS: dict[str, str] = {
    "kws": "keyword-spotting corpus synthesis and its vocabulary (wordfreq)",
    "explain": "attributions, influential examples and surrogates (captum, shap, interpret-core)",
    "embed": "t-SNE and UMAP embeddings of the difference vectors (openTSNE, umap-learn)",
    "dashboard": "the interactive dashboard and its server (dash, waitress)",
    "ray": "the Ray executor (ray)",
    "onnx": "ONNX models (onnx, onnx2torch, onnxruntime)",
    "data": "images of a folder and Hugging Face datasets as data sources (pillow, datasets)",
}


class MissingExtra(ImportError, ValueError):
    """An optional library is not installed. An :class:`ImportError` for code that handles missing modules,
    and a :class:`ValueError` so that the commands print it as the one-line error of bad input."""

    def __init__(self, module: str, extra: str, purpose: str, reason: str = ""):
        self.module, self.extra, self.purpose = module, extra, purpose
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"{purpose} needs the {module.split('.')[0]} package, which is not installed{why}: "
            f"pip install 'proactiv[{extra}]' (in a checkout: pip install -e '.[{extra}]')",
            name=module,
        )


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module`` and return it; when it (or a library it imports) is missing, raise
    :class:`MissingExtra` naming ``pip install 'proactiv[EXTRA]'``. ``purpose`` says what needs it (default:
    "this feature of proactiv").

    >>> require("math", "kws").sqrt(4.0)
    2.0
    """
    if extra not in EXTRAS:
        raise ValueError(f"extra {extra!r} is not an extra of proactiv; extras: {', '.join(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as err:
        # the library itself absent: its name says enough; one of its own imports absent: say which
        top = module.split(".")[0]
        reason = "" if getattr(err, "name", None) in (top, module) else str(err)
        raise MissingExtra(module, extra, purpose or "this feature of proactiv", reason) from err
