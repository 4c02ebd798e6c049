"""JUnit XML of a checks run, so a CI server shows each contract as a test case.

One ``<testsuite>`` (in ``<testsuites>``) with a ``<testcase>`` per check: a violated contract gets
``<failure message=…>`` with the contract's message, a contract that could not be checked ``<error message=…>``
with the reason (the test did not run to a verdict); a soft assertion passes, with a ``violations`` property
and its ranked records in ``<system-out>`` for review.
"""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from proactiv.store import atomic_write

SUITE = "proactiv.checks"


def _figure(value) -> str:
    return "" if value is None else f"{value:g}"


def junit_tree(outcomes, suite: str = SUITE) -> ET.ElementTree:
    """The JUnit document of ``outcomes`` (:class:`~proactiv.assertions.checks.Outcome` list)."""
    failures, errors = sum(o.failed for o in outcomes), sum(o.unchecked for o in outcomes)
    seconds = sum(o.seconds for o in outcomes)
    root = ET.Element("testsuites", name=suite, tests=str(len(outcomes)), failures=str(failures),
                      errors=str(errors), time=f"{seconds:.3f}")  # fmt: skip
    tests = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)), failures=str(failures),
                          errors=str(errors), skipped="0", time=f"{seconds:.3f}", hostname=socket.gethostname(),
                          timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))  # fmt: skip
    for o in outcomes:
        case = ET.SubElement(
            tests, "testcase", name=o.name, classname=f"{suite}.{o.kind}", time=f"{o.seconds:.3f}"
        )
        r = o.result
        props = ET.SubElement(case, "properties")
        if o.soft:
            ET.SubElement(props, "property", name="violations", value=str(r.n_violations))
            ET.SubElement(props, "property", name="records", value=str(r.n_records))
            out = ET.SubElement(case, "system-out")
            out.text = r.message + ("\n" + r.violations.to_string(index=False) if r.n_violations else "")
            continue
        ET.SubElement(props, "property", name="measured", value=_figure(r.measured))
        ET.SubElement(props, "property", name="limit", value=_figure(r.limit))
        if o.failed:
            failure = ET.SubElement(case, "failure", message=r.message, type="ContractViolation")
            failure.text = f"{r.name}: {r.message}"
        elif o.unchecked:
            error = ET.SubElement(case, "error", message=r.reason, type="NotChecked")
            error.text = f"{r.name}: not checked: {r.reason}"
        else:
            ET.SubElement(case, "system-out").text = r.message
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(outcomes, path: str | os.PathLike, suite: str = SUITE) -> Path:
    """Write the JUnit XML of ``outcomes`` to ``path`` (atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_tree(outcomes, suite)
    return atomic_write(path, lambda tmp: tree.write(tmp, encoding="utf-8", xml_declaration=True))
