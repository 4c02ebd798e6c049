"""Deprecated: synthetic runs moved to :mod:`proactiv.testing` (a documented public helper)."""

import warnings

from proactiv.testing import *  # noqa: F403
from proactiv.testing import __all__  # noqa: F401

warnings.warn("proactiv.analysis.synthetic moved to proactiv.testing", DeprecationWarning, stacklevel=2)
