"""The ``proactiv`` command: sweep, info, transforms."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from proactiv.cli_errors import err_console, fail

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Where a model breaks under input transformations."
)
# soft wrap: a message is printed whole (never cut at 80 columns when the output is not a terminal), so paths
# and names in it stay on one line a user can copy and a test can grep
console = Console(soft_wrap=True)


def _version(asked: bool) -> None:
    if asked:
        from proactiv.version import __version__

        typer.echo(f"proactiv {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Where a model breaks under input transformations."""


def _stopped(config: Path, out: Path) -> None:
    """Ctrl-C during a sweep: what the run keeps and the command that continues it (exit code 130, SIGINT's)."""
    from proactiv.store import RunError, open_run

    try:
        kept = open_run(out).state()
    except RunError:
        kept = "nothing written yet"
    err_console.print(
        f"stopped by Ctrl-C: run {out} {kept}; continue it with `proactiv sweep {config} --out {out} --resume`",
        highlight=False,
        markup=False,
    )
    raise typer.Exit(130)


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="YAML sweep config")],
    out: Annotated[Path, typer.Option("--out", "-o", help="run directory to write")],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="continue an interrupted run")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    executor: Annotated[str, typer.Option(help="what computes the units: local | ray")] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster: auto | HOST:PORT | ray://HOST:10001 (default: a local Ray)"),
    ] = None,
) -> None:
    """Project every instance at every grid point of CONFIG and store the records in OUT."""
    from proactiv.config import load_config
    from proactiv.executors import ExecutorError
    from proactiv.store import RunError
    from proactiv.sweep import sweep_config

    try:
        cfg = load_config(config)
        run = sweep_config(
            cfg, out, device=device, resume=resume, progress=progress, executor=executor, address=address
        )
    except (ValueError, TypeError, OSError, RunError, ExecutorError) as err:
        fail(err)
    except KeyboardInterrupt:
        _stopped(config, out)
    for unit, problem in run.recomputed.items():
        console.print(f"recomputed damaged unit {unit} ({problem})", highlight=False, markup=False)
    console.print(f"run written to [bold]{run.path}[/] ({len(run.records)} records)")


@app.command()
def info(run: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """Summarise a run: counts, accuracy per transform value, converged fraction, and the analyses it cannot
    compute here."""
    from proactiv.store import RunError, open_run
    from proactiv.summary import format_table, summarize

    try:
        r = open_run(run)
        s = summarize(r)
    except (ValueError, RunError) as err:
        fail(err)
    typer.echo(f"{r.path}  status: {r.state()}")
    typer.echo(
        f"records: {s['records']} of {s['expected_records']}  ({s['instances']} instances x {s['points']} points)"
    )
    typer.echo("grid: " + ", ".join(f"{t.column} in {t.values}" for t in r.grid.transforms))
    typer.echo(format_table(s["overall"]))
    for col, table in s["per_transform"].items():
        typer.echo(f"\n{col}")
        typer.echo(format_table(table))
    from proactiv.analysis.steps import missing_without_model

    missing = missing_without_model(r)
    if missing:
        typer.echo(f"\n{missing}")


@app.command()
def anchor(
    run: Annotated[Path, typer.Argument(help="run directory")],
    instance: Annotated[int, typer.Argument(help="the record's instance")],
    point: Annotated[int, typer.Argument(help="the record's grid point")],
    precision: Annotated[float, typer.Option(help="the precision the rule must reach")] = 0.95,
    budget: Annotated[int, typer.Option(help="the most model evaluations the search may make")] = 2000,
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata",
            help="a metadata column the rule may also name (repeat; default: every categorical meta.* column)",
        ),
    ] = None,
    no_metadata: Annotated[
        bool, typer.Option("--no-metadata", help="conditions on the transform parameters only")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
) -> None:
    """The anchor of one record: the fewest transform-parameter ranges (and values of the instance's metadata)
    under which its outcome (fail or pass) holds with the given precision, and a local linear surrogate over the
    same parameters."""
    from proactiv.analysis.anchor import anchor as find_anchor
    from proactiv.store import RunError

    if metadata and no_metadata:
        fail(ValueError("--metadata and --no-metadata: choose one"))
    columns = False if no_metadata else (metadata or True)
    try:
        found = find_anchor(run, instance, point, precision=precision, budget=budget, metadata=columns,
                            device=device)  # fmt: skip
    except (ValueError, KeyError, RunError) as err:
        fail(err)
    typer.echo(found.describe())
    if found.surrogate is not None:
        typer.echo(found.surrogate.describe())


@app.command()
def transforms() -> None:
    """List the registered transforms with their parameter, unit, range and identity value."""
    import proactiv.transforms as T

    for name in T.names():
        cls = T.base._REGISTRY[name]
        p = cls.param
        typer.echo(
            f"{name:14s} {p.name} in [{p.low}, {p.high}] {p.unit}, identity {p.identity}  ({cls.domain})"
        )


@app.command()
def selftest(
    keep: Annotated[
        Path | None, typer.Option("--keep", help="keep the planted runs here (default: a temporary folder)")
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
) -> None:
    """Plant known faults in tiny models, sweep and analyse them, and show whether each view found its own;
    exit 1 when one missed."""
    from proactiv.selftest import print_result, run_selftest
    from proactiv.store import RunError

    try:
        result = run_selftest(
            keep, device=device, say=lambda m: console.print(m, highlight=False, markup=False)
        )
    except (ValueError, RunError) as err:
        fail(err)
    print_result(result, console)
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def check(
    checks: Annotated[
        Path, typer.Argument(help="CHECKS.yaml: the contracts to check and the sweep config they run on")
    ],
    model: Annotated[
        Path | None, typer.Option(help="the model under test: a directory or file (.pt, TorchScript, .onnx)")
    ] = None,
    baseline: Annotated[Path | None, typer.Option(help="the baseline run of no_worse_than checks")] = None,
    run: Annotated[
        Path | None,
        typer.Option(
            help="check this run (of MODEL) on its own grid instead of sweeping; the checks file's config is then "
            "not read (it may have none) unless --model is given, to build MODEL and compare it with the run's"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="where to sweep (default runs/checks/<model>-<config>)")
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="write JUnit XML here")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
    progress: Annotated[bool, typer.Option(help="show a progress bar while sweeping")] = True,
    allow_unchecked: Annotated[
        bool,
        typer.Option(
            "--allow-unchecked",
            help="exit 0 although a hard check could not be checked on the run (still listed)",
        ),
    ] = False,
) -> None:
    """Check MODEL against the contracts of CHECKS: a table, JUnit XML. Each holds, is violated or was not checked
    (the run cannot show it: a value outside the grid, a class without records or too small); exit 1 on a
    violation or on a check not checked (unless --allow-unchecked), 2 on bad input."""
    from proactiv.assertions.checks import check_command

    raise typer.Exit(
        check_command(checks, model, baseline, run, out, junit, device, progress, allow_unchecked)
    )


@app.command()
def monitor(
    stream: Annotated[Path, typer.Argument(help="a 16-kHz mono WAV recording")],
    model: Annotated[Path, typer.Option("--model", "-m", help="a keyword model folder (proactiv kws train)")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="the monitor store (default monitors/<stream>-<model>)")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="CSV of the keywords said: keyword,start_s,end_s (for false accepts/hour)"),
    ] = None,
    hop: Annotated[float, typer.Option(help="seconds between 1-s windows")] = 0.1,
    corrections: Annotated[bool, typer.Option(help="record the corrections beside the raw decision")] = True,
    resume: Annotated[bool, typer.Option("--resume", help="continue an unfinished store")] = False,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run a keyword model over STREAM, check the stream assertions at every window, record the corrections, and
    print violations per minute (and false accepts per hour and hit rate with --labels); `proactiv serve` shows
    the store."""
    from proactiv.monitor import MonitorError
    from proactiv.tasks.kws.decision import StreamRule
    from proactiv.tasks.kws.monitor import load_folder, monitor_recording, read_labels, read_stream, score

    out = out or Path("monitors") / f"{stream.stem}-{model.name}"
    try:
        rule = StreamRule(hop_s=hop)
        net = load_folder(model)
        truth = read_labels(labels, net.class_names) if labels is not None else None
        store = monitor_recording(read_stream(stream, rule), net, out, rule, corrections, resume=resume,
                                  device=device, progress=progress)  # fmt: skip
    except (ValueError, OSError, MonitorError) as err:
        fail(err)
    except KeyboardInterrupt:
        err_console.print(f"stopped by Ctrl-C: continue with `proactiv monitor {stream} --model {model} --out {out} "
                          "--resume`", highlight=False, markup=False)  # fmt: skip
        raise typer.Exit(130) from None
    summary = store.summary()
    say = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    say(f"{stream}: {summary['minutes']:.1f} min, {summary['steps']} windows of {rule.window_s:g} s every "
        f"{rule.hop_s * 1000:.0f} ms, model {model}")  # fmt: skip
    say("violations per minute:")
    for name, found in summary["assertions"].items():
        say(f"  {name:<14} {found['per_minute']:8.2f}  ({found['violations']} windows)")
    say(
        "keyword firings per hour: "
        + ", ".join(f"{c} {f['per_hour']:.0f}" for c, f in summary["firings"].items())
    )
    if truth is not None:
        say(f"against {labels} ({len(truth)} keywords):")
        for column, found in score(store, truth).items():
            say(
                f"  {column:<20} false accepts per hour {found['per_hour']:7.1f}  hit rate {found['hit_rate']:.0%}"
            )
    say(f"store: {store.path} (pv.open_monitor; `proactiv serve {store.path}`)")


@app.command("monitor-window")
def monitor_window(
    store: Annotated[Path, typer.Argument(help="a monitor store (proactiv monitor)")],
    step: Annotated[int, typer.Argument(help="the window's number (its step in the stream view)")],
    label: Annotated[
        str | None, typer.Option(help="the desired output, a class name [default: the model's decision]")
    ] = None,
    grid: Annotated[
        Path | None, typer.Option(help="a sweep config whose grid to sweep [default: the keyword demo's]")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Sweep window STEP of a monitor STORE as a one-instance run for the what-if studio (STORE/whatif/window-STEP,
    reused while the model, window, label and grid are the same); `proactiv serve STORE` shows it with "What if?"."""
    from proactiv.config import load_config
    from proactiv.monitor import MonitorError, window_run
    from proactiv.store import RunError

    try:  # a config error is a ValueError
        spec = load_config(grid).grid if grid is not None else None
        run = window_run(store, step, spec, label=label, progress=progress)
    except (ValueError, OSError, MonitorError, RunError) as err:
        fail(err)
    records, wanted = run.records, run.config["monitor_window"]["label"]
    say = lambda m: console.print(m, highlight=False, markup=False)  # noqa: E731
    say(f"window {step} of {store}: desired output {wanted}; the model gives it at {int(records.correct_t.sum())} "
        f"of {len(records)} grid points")  # fmt: skip
    say(f"run: {run.path} (pv.whatif.Studio; `proactiv serve {store}`, then What if? on window {step})")


@app.command()
def serve(
    run: Annotated[Path, typer.Argument(help="run directory")],
    run2: Annotated[Path | None, typer.Argument(help="a second run on the same grid, to compare")] = None,
    port: Annotated[int, typer.Option(help="port to listen on")] = 8050,
    host: Annotated[str, typer.Option(help="address to bind (default: this machine only)")] = "127.0.0.1",
    public: Annotated[
        bool,
        typer.Option("--public", help="allow a --host other machines can reach (there is no authentication)"),
    ] = False,
    threads: Annotated[int, typer.Option(min=1, help="threads answering requests (waitress)")] = 16,
    progress: Annotated[bool, typer.Option(help="show progress while missing analyses are computed")] = True,
) -> None:
    """Start the interactive dashboard on RUN (and RUN2 to compare; either may be a folder of runs, each served);
    computes missing analyses first. Served by waitress; binds this machine only unless --host and --public."""
    from proactiv.extras import MissingExtra, require
    from proactiv.monitor import is_monitor_store
    from proactiv.progress import step_progress
    from proactiv.store import RunError, run_dirs

    try:  # without the dashboard extra: the one line that installs it
        from proactiv.dashboard.data import open_runs
        from proactiv.dashboard.serve import is_loopback, public_refusal
        from proactiv.dashboard.serve import serve as start

        require("waitress", "dashboard", "serving the dashboard")
    except MissingExtra as err:
        fail(err)
    if not public and not is_loopback(host):  # refused before any analysis is computed
        fail(ValueError(public_refusal(host)))
    if run2 is None and is_monitor_store(run):  # a store of `proactiv monitor`: the page of its stream
        from proactiv.dashboard.monitor_app import serve_monitor

        try:
            serve_monitor(run, host=host, port=port, public=public, threads=threads,
                          say=lambda m: console.print(m, highlight=False, markup=False))  # fmt: skip
        except OSError as err:  # the port is taken, or the address is not this machine's
            fail(err)
        return
    try:  # refused at once: a folder that is neither a run nor holds runs
        runs = [d for r in (run, run2) if r is not None for d in run_dirs(r)]
    except RunError as err:
        fail(err)
    if len(runs) > 1 + (run2 is not None):
        console.print(
            f"serving {len(runs)} runs: {', '.join(r.name for r in runs)}", highlight=False, markup=False
        )
    with step_progress(progress) as report_step:
        opened = open_runs(runs, compute=True, progress=report_step)
    try:
        start(opened, host=host, port=port, public=public, threads=threads,
              say=lambda m: console.print(m, highlight=False, markup=False))  # fmt: skip
    except OSError as err:  # the port is taken, or the address is not this machine's
        fail(err)


def _mount_tasks() -> None:
    """The task commands, ``proactiv experiment``, and the planner their ``--augment-from RUN`` asks (it reads a
    run's analyses, floors above the tasks: wired here, at the top)."""
    from proactiv.augment_plan import register_planner
    from proactiv.experiments.cli import app as experiment_app
    from proactiv.mitigation import augmentation_plan
    from proactiv.tasks.digits.cli import app as digits_app
    from proactiv.tasks.kws.cli import app as kws_app

    register_planner(augmentation_plan)
    app.add_typer(kws_app, name="kws")
    app.add_typer(digits_app, name="digits")
    app.add_typer(experiment_app, name="experiment")


_mount_tasks()


def _step_settings(pairs: list[str] | None) -> dict[str, dict]:
    """``--set STEP.KEY=VALUE`` options as per-step settings (a value is JSON when it parses as JSON)."""
    out: dict[str, dict] = {}
    for pair in pairs or []:
        target, eq, text = pair.partition("=")
        step, dot, key = target.partition(".")
        if not (eq and dot and step and key):
            raise ValueError(f"--set {pair!r}: expected STEP.KEY=VALUE, e.g. breakpoints.threshold=0.7")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out.setdefault(step, {})[key] = value
    return out


def _list_steps() -> None:
    """Print the registered analysis steps with what they need and their settings."""
    from proactiv.analysis import registered

    for step in registered():
        settings = ", ".join(f"{k}={json.dumps(v)}" for k, v in step.settings.items()) or "none"
        after = f"; after: {', '.join(step.after)}" if step.after else ""
        typer.echo(f"{step.name:<22}{step.title}")
        typer.echo(f"{'':<22}needs: {', '.join(sorted(step.needs))}{after}; settings: {settings}")


#: ``--set`` for analyze and report
SET_HELP = "STEP.KEY=VALUE: a setting of any registered step (repeatable; see --list)"


@app.command()
def analyze(
    run: Annotated[Path | None, typer.Argument(help="run directory")] = None,
    step: Annotated[
        list[str] | None, typer.Option("--step", help="compute only this step (repeatable; default all)")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    method: Annotated[str | None, typer.Option(help="embedding method: tsne | umap | pca")] = None,
    max_rows: Annotated[
        int | None, typer.Option(help="embed at most this many rows (a seeded sample beyond)")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="breakpoint: first value with accuracy (image-to-image: share within the cutoff) < threshold"
            " x its value at the identity, beyond 95 % CIs"
        ),
    ] = None,
    failure: Annotated[
        str | None,
        typer.Option(help="SQL over records defining a failure for error slices (default NOT correct_t)"),
    ] = None,
    device: Annotated[
        str, typer.Option(help="for steps that need the model: auto | cpu | cuda[:N]")
    ] = "auto",
    force: Annotated[bool, typer.Option("--force", help="recompute every step, fresh or not")] = False,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    list_: Annotated[bool, typer.Option("--list", help="list the registered steps and exit")] = False,
) -> None:
    """Compute the analysis steps of RUN (breakpoints, error slices, embeddings, bias maps …) into
    RUN/analysis/, only those missing or stale; unset options keep each step's default."""
    if list_:
        _list_steps()
        return
    from proactiv.analysis.pipeline import analyze as analyze_run
    from proactiv.analysis.pipeline import require_run
    from proactiv.progress import step_progress
    from proactiv.store import RunError

    flat = dict(method=method, max_rows=max_rows, threshold=threshold, failure=failure)
    try:
        if run is None:
            raise ValueError("give a RUN directory (or --list to see the steps)")
        r = require_run(run)
        with step_progress(progress) as report_step:
            result = analyze_run(
                r, steps=step, force=force, progress=report_step, settings=_step_settings(set_), device=device,
                **{k: v for k, v in flat.items() if v is not None},
            )  # fmt: skip
    except (ValueError, RunError) as err:
        fail(err)
    done = ", ".join(result.computed) if result.computed else "nothing (every step was up to date)"
    typer.echo(f"analysis in {r.analysis_dir}; computed: {done}")
    for name, note in result.notes.items():
        if note:
            typer.echo(f"  {name}: {note}")


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file (default RUN/report.html)")
    ] = None,
    method: Annotated[
        str, typer.Option(help="embedding method, if analysis is missing: tsne | umap | pca")
    ] = "tsne",
    gallery: Annotated[int, typer.Option(help="how many worst records to show")] = 8,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Write a self-contained HTML report of RUN (runs whatever analysis is missing first)."""
    from proactiv.analysis.pipeline import require_run
    from proactiv.progress import step_progress
    from proactiv.report import write_report
    from proactiv.store import RunError

    try:
        r = require_run(run)
        with step_progress(progress) as report_step:
            path = write_report(
                r,
                out=out,
                gallery=gallery,
                progress=report_step,
                method=method,
                settings=_step_settings(set_),
            )
    except (ValueError, RunError) as err:
        fail(err)
    console.print(f"report written to [bold]{path}[/]")


def _step_command(step) -> None:
    """``proactiv <step.command> RUN [--set KEY=VALUE] [--device] [--force]``: compute one registered step."""

    def command(
        run: Annotated[Path, typer.Argument(help="run directory")],
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="KEY=VALUE: a setting of this step")
        ] = None,
        device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
        force: Annotated[bool, typer.Option("--force", help="recompute even when fresh")] = False,
        progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    ) -> None:
        from proactiv.analysis.pipeline import analyze as analyze_run
        from proactiv.analysis.pipeline import require_run
        from proactiv.progress import step_progress
        from proactiv.store import RunError

        try:
            r = require_run(run)
            settings = _step_settings([f"{step.name}.{kv}" for kv in set_ or []])
            with step_progress(progress) as report_step:
                result = analyze_run(r, steps=[step.name], force=force, progress=report_step,
                                     settings=settings, device=device)  # fmt: skip
        except (ValueError, RunError) as err:
            fail(err)
        state = "computed" if step.name in result.computed else "up to date"
        typer.echo(f"{step.title}: {state} in {r.analysis_dir} ({', '.join(step.files)})")
        if result.notes.get(step.name):
            typer.echo(f"  {result.notes[step.name]}")

    command.__doc__ = (
        f"{step.title}: compute this analysis step of RUN into RUN/analysis/ (settings: "
        + (", ".join(f"{k}={json.dumps(v)}" for k, v in step.settings.items()) or "none")
        + ")."
    )
    app.command(name=step.command)(command)


def _mount_steps() -> None:
    """A sub-command for every registered analysis step that names one."""
    from proactiv.analysis import registered

    for step in registered():
        if step.command:
            _step_command(step)


_mount_steps()


def main() -> None:
    # typer draws usage errors in a box at 80 columns when stderr is not a terminal, cutting long paths in
    # two: there click's plain messages, printed whole, serve better
    if not sys.stderr.isatty():
        app.rich_markup_mode = None
    # a run keeps a model of the user's own class by reference (mymodel.MyNet), and a config names a factory as
    # package.module:name: run from their folder, the command finds them there as `python -m proactiv` would.
    # Appended, so a file in that folder never hides an installed package.
    sys.path.append(os.getcwd())
    app(prog_name="proactiv")


if __name__ == "__main__":
    sys.exit(main())
