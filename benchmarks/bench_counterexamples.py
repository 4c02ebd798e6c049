"""Counterexamples on the KWS demo run (DS-CNN on log-mel features) and a digits run: seconds for the error
slices they start from, for the table (failing records and both partners, clean inputs rebuilt from the task
where not stored) and for the report gallery (inputs rebuilt, figures, audio), and how many failures found a
passing partner. Nothing is written into the runs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_counterexamples.py [--kws RUN] [--digits RUN]
"""

from __future__ import annotations

import argparse
import time

import torch

from proactiv.analysis.counterexamples import counterexample_table
from proactiv.analysis.runview import open_view
from proactiv.analysis.slices import error_slices
from proactiv.store import open_run
from proactiv.views.counterexamples import report_html
from proactiv.views.sections import SectionContext


def bench(path: str) -> None:
    run = open_run(path)
    view = open_view(run)
    began = time.perf_counter()
    slices = error_slices(view)
    sliced = time.perf_counter()
    ctx = SectionContext(run, view=view)
    table = counterexample_table(view, slices, rebuild=ctx.task)
    done = time.perf_counter()
    page = report_html(table, ctx)
    drawn = time.perf_counter()
    print(
        f"\n{path}: {view.n_records} records; slices {sliced - began:.2f} s, counterexamples {done - sliced:.2f} s "
        f"(task rebuild included), report gallery {drawn - done:.2f} s ({page.count('<figure/>')} figures, "
        f"{page.count('<audio')} players)"
    )
    print(
        f"  {len(table)} failing records in {table['slice'].nunique()} slices × {table.group.nunique()} classes; "
        f"same-instance partner for {int(table.same_instance_distance.notna().sum())}, same-class partner for "
        f"{int(table.same_class_distance.notna().sum())} ({table.same_class_basis.iloc[0]})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kws", default="runs/kws-demo")
    parser.add_argument("--digits", default="runs/digits-reference")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench(args.kws)
    bench(args.digits)


if __name__ == "__main__":
    main()
