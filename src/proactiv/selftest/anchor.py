"""A planted failure that depends on one parameter alone (``anchor_threshold``): the ``anchors`` step must find,
for each failing instance, a rule over that parameter alone with the planted threshold inside its boundary
interval.

The run is :func:`proactiv.testing.threshold.plant_threshold_run`: a :class:`~proactiv.selftest.level.LevelGate`
whose instance ``i`` is wrong exactly below a gain of :data:`~proactiv.testing.threshold.THRESHOLDS_DB` ``[i]``
(-6.55 and -2.3 dB, neither a grid value), crossed with noise at 20-40 dB SNR that the gate barely feels. The worst
failing record of each instance must be anchored ("not checked" is a miss), its rule must name gain and nothing
else (no noise range, no metadata), be open downward ("fails whenever gain ≤ …"), and the candidate edges either
side of its upper bound must bracket the instance's threshold.
"""

from __future__ import annotations

from pathlib import Path

from proactiv.analysis.pipeline import Analysis
from proactiv.selftest import Check, Plant, register_plant
from proactiv.store import Run
from proactiv.testing.threshold import GAIN, THRESHOLDS_DB, plant_threshold_run


def plant(path: Path, device: str = "auto") -> Run:
    """The planted threshold run (two instances, gain × noise)."""
    return plant_threshold_run(path, device=device)


def _judge_one(found, threshold: float) -> tuple[str, bool]:
    """One record's anchor against its planted threshold: a valid rule failing on gain alone, open downward,
    the threshold between the candidate edges around its upper bound."""
    if found is None:
        return "no rule", False
    bracket = found.conditions[0].above if found.columns == (GAIN,) else None
    ok = bool(
        found.valid
        and found.fails
        and found.columns == (GAIN,)
        and not found.metadata
        and found.conditions[0].below is None
        and bracket is not None
        and bracket[0] <= threshold <= bracket[1]
    )
    where = f"{bracket[0]:g} … {bracket[1]:g}" if bracket else "no upper bound on gain"
    return f"{found.describe()}; planted {threshold:g} dB, rule's boundary interval {where}", ok


def judge_anchors(run: Run, analysis: Analysis) -> tuple[str, bool]:
    """Every instance's worst failing record must be anchored on gain alone around its planted threshold."""
    result = analysis["anchors"]
    if result is None:
        return f"no result ({analysis.notes.get('anchors', 'no note')})", False
    t = result.table
    parts, ok = [], sorted(t.instance) == list(range(len(THRESHOLDS_DB)))
    for row in t.itertuples():
        if row.status != "anchored":
            parts.append(f"#{row.instance}: {row.status}: {row.reason}")
            ok = False
            continue
        text, good = _judge_one(result.anchor(row.instance, row.point), THRESHOLDS_DB[row.instance])
        parts.append(f"#{row.instance}: {text}")
        ok = ok and good
    return "; ".join(parts) or "no anchors", bool(ok)


register_plant(
    Plant(
        "anchor_threshold",
        plant,
        (
            Check(
                "anchors",
                f"each instance fails below its own gain ({', '.join(f'{v:g}' for v in THRESHOLDS_DB)} dB), "
                "whatever the noise",
                judge_anchors,
            ),
        ),
        settings={"anchors": {"records": len(THRESHOLDS_DB)}},
    )
)
