"""Assertions at run time: a model over a stream of inputs, checked step by step, corrected on the fly, stored.

    import proactiv as pv
    from proactiv.monitor import WaveStream, Flicker, Consistency, SuppressFlicker, assertion, window_run

    store = pv.monitor(model, WaveStream(wave, 16000, window_s=1.0, hop_s=0.1),
                       [Flicker(classes=keywords), Consistency()], [SuppressFlicker(3)], out="monitors/day1")
    store.summary()                      # violations per assertion per minute, firings per hour raw → corrected
    store.query("SELECT step, \"a.flicker\" FROM steps WHERE \"a.flicker\" > 0")
    pv.views.stream(store)               # posteriors, decisions and violations over time
    run = window_run(store, 412)         # window 412 as a one-instance run, for pv.whatif.Studio(run)

Streams (:mod:`~proactiv.monitor.streams`), assertions (:mod:`~proactiv.monitor.assertions`), corrections
(:mod:`~proactiv.monitor.corrections`), the store (:mod:`~proactiv.monitor.store`), choosing what to label
from the assertions' flags (:mod:`~proactiv.monitor.labelling`) and a window swept as a run for the what-if
studio (:mod:`~proactiv.monitor.window`), one module each.
"""

from proactiv.monitor.assertions import (
    DEFAULT_COPIES,
    Alternation,
    Assertion,
    Consistency,
    Copy,
    EnergyFloor,
    Flicker,
    Recent,
    Refractory,
    assertion,
)
from proactiv.monitor.corrections import Correction, HoldRefractory, MajorityOfCopies, SuppressFlicker
from proactiv.monitor.labelling import AssertionBandit, PoolScores, Selection, select, weak_labels
from proactiv.monitor.run import default_assertions, monitor
from proactiv.monitor.store import MonitorError, MonitorStore, is_monitor_store, open_monitor
from proactiv.monitor.streams import Chunk, InputStream, WaveStream
from proactiv.monitor.window import DEFAULT_GRID, window_run

__all__ = [
    "DEFAULT_COPIES", "DEFAULT_GRID", "Alternation", "Assertion", "AssertionBandit", "Chunk", "Consistency", "Copy",
    "Correction", "EnergyFloor", "Flicker", "HoldRefractory", "InputStream", "MajorityOfCopies", "MonitorError",
    "MonitorStore", "PoolScores", "Recent", "Refractory", "Selection", "SuppressFlicker", "WaveStream", "assertion",
    "default_assertions", "is_monitor_store", "monitor", "open_monitor", "select", "weak_labels", "window_run",
]  # fmt: skip
