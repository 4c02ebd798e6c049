"""``proactiv kws synth`` and ``proactiv kws train``: the keyword-spotting corpus and model, both cached."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

import typer

from proactiv.cli_errors import fail
from proactiv.tasks.kws.models import DEFAULT_ARCH
from proactiv.tasks.strategy_options import Beta, Epsilon, Norm, PgdSteps, Strategy, strategy_from

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Keyword spotting: corpus and model.")


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="corpus folder (Speech Commands layout)")],
    size: Annotated[str, typer.Option(help="tiny | demo | large")] = "demo",
    seed: Annotated[int, typer.Option(help="decides splits and deliveries")] = 0,
    jobs: Annotated[int | None, typer.Option(help="parallel workers (default: CPUs)")] = None,
    force: Annotated[bool, typer.Option("--force", help="rebuild a corpus made with other options")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Synthesise a spoken-commands corpus offline with espeak-ng, flite and festival (cached)."""
    from proactiv.tasks.kws.synth import synthesize

    try:
        meta = synthesize(out, size=size, seed=seed, jobs=jobs, progress=progress, force=force)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        fail(err)
    counts = meta.groupby(["split", "engine"]).size().unstack(fill_value=0)
    typer.echo(f"corpus in {out}: {len(meta)} clips\n{counts.to_string()}")


def _data_key(data: Path) -> str:
    """What identifies a corpus: its synthesis marker, or else the list of its WAV files and sizes."""
    marker = data / ".complete"
    if marker.exists():
        return hashlib.sha256(marker.read_bytes()).hexdigest()[:16]
    h = hashlib.sha256()
    for wav in sorted(data.rglob("*.wav")):
        h.update(f"{wav.relative_to(data)}:{wav.stat().st_size}".encode())
    return h.hexdigest()[:16]


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="corpus folder (Speech Commands layout)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="model folder: model.pt and metrics.json")],
    arch: Annotated[
        str,
        typer.Option(
            help="cnn | dscnn | dscnn-wide (the demo's) | bcresnet; several joined by + (dscnn+bcresnet): one of "
            "each, together"
        ),
    ] = DEFAULT_ARCH,
    seed: Annotated[int, typer.Option()] = 0,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 45,
    time_budget: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads (1 is faster on a busy machine)")] = 2,
    exclude_engine: Annotated[list[str] | None, typer.Option(help="hold out a TTS engine")] = None,
    members: Annotated[
        int,
        typer.Option(
            min=1, help="networks trained side by side that decide together (an ensemble; N times the time)"
        ),
    ] = 1,
    augment_from: Annotated[
        Path | None,
        typer.Option(
            "--augment-from", help="a run of a keyword model: add clips augmented toward its worst slices"
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="train again even if a matching model exists")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    strategy: Strategy = "augment",
    epsilon: Epsilon = None,
    pgd_steps: PgdSteps = 3,
    norm: Norm = "l2",
    beta: Beta = 1.0,
) -> None:
    """Train a keyword model; skipped when OUT already holds one trained on the same data and settings."""
    from proactiv.robust_training import pgd_line
    from proactiv.tasks.kws.train import EPSILON, TRAINER_VERSION
    from proactiv.tasks.kws.train import train as train_model

    chosen = strategy_from(strategy, epsilon, pgd_steps, norm, beta, EPSILON, augment_from is not None)

    if not data.is_dir():
        fail(
            FileNotFoundError(
                f"--data {data}: no such folder; make one with `proactiv kws synth --out {data}`"
            )
        )
    from proactiv.tasks.kws.models import arch_parts

    try:
        networks = members * len(arch_parts(arch))
    except ValueError as err:
        fail(err)
    plan = _plan(augment_from)
    key = {
        "data": _data_key(data),
        "arch": arch,
        "seed": seed,
        "epochs": epochs,
        "time_budget": time_budget,
        "exclude": sorted(exclude_engine or []),
        "threads": threads,
        "trainer": TRAINER_VERSION,
        **({"augment": plan.key()} if plan is not None else {}),
        **({"strategy": chosen.key()} if chosen.key() else {}),
        **({"members": members} if members > 1 else {}),  # keeps the key of one-network models as it was
    }
    key_file = out / "train_key.json"
    if (
        not force
        and (out / "model.pt").exists()
        and key_file.exists()
        and json.loads(key_file.read_text()) == key
    ):
        typer.echo(
            f"model in {out} is up to date (trained on the same data and settings); --force to retrain"
        )
        return
    try:
        metrics = train_model(
            data,
            arch=arch,
            out=out,
            epochs=epochs,
            time_budget_s=time_budget,
            exclude_engines=tuple(exclude_engine or ()),
            seed=seed,
            progress=progress,
            threads=threads,
            augment_plan=plan,
            members=members,
            strategy=chosen,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        fail(err)
    key_file.write_text(json.dumps(key))
    test = metrics.get("test", {})
    typer.echo(
        f"model written to {out / 'model.pt'} ("
        + (f"{networks} networks, " if networks > 1 else "")
        + f"{metrics['params']} parameters, {metrics['macs']} MACs, {metrics['train_seconds']:.0f} s)"
    )
    for name, report in (("test", test), ("held out", metrics.get("held_out", {}))):
        if report:
            engines = ", ".join(f"{e} {a:.3f}" for e, a in report.get("per_engine", {}).items())
            typer.echo(f"{name} accuracy {report.get('accuracy', float('nan')):.3f}  per engine: {engines}")
    if "calibration" in metrics:
        offsets, names = metrics["calibration"]["logit_offset"], metrics["class_names"]
        silence = f", _silence_ {offsets[names.index('_silence_')]:+.2f}" if "_silence_" in names else ""
        typer.echo(
            f"non-keyword logit offsets _unknown_ {metrics['calibration']['unknown_offset']:+.2f}{silence} "
            "(chosen on validation)"
        )
    if "pgd" in metrics:
        typer.echo(f"{chosen.describe()}; test {pgd_line(metrics['pgd'])}")
    for line in open_set_lines(metrics.get("open_set", {})) + noise_lines(metrics.get("noise", {})):
        typer.echo(line)


@app.command("label-experiment")
def label_experiment(
    data: Annotated[Path, typer.Option("--data", help="corpus folder with running speech")] = Path(
        "data/kws"
    ),
    model: Annotated[
        Path, typer.Option("--model", "-m", help="keyword model folder (copied, never written)")
    ] = Path("models/kws-dscnn"),
    out: Annotated[Path, typer.Option("--out", "-o", help="table.csv, summary.csv, settings.json")] = Path(
        "runs/label-experiment"
    ),
    budget: Annotated[
        list[int] | None, typer.Option(help="labels per selection (repeat; default 50 100 200)")
    ] = None,
    seed: Annotated[list[int] | None, typer.Option(help="seeds (repeat; default 0 1)")] = None,
    strategy: Annotated[
        list[str] | None, typer.Option(help="random | uncertainty | assertions | weak (repeat; default all)")
    ] = None,
    epochs: Annotated[int, typer.Option(help="fine-tuning passes over the selection")] = 5,
    lr: Annotated[float, typer.Option(help="fine-tuning learning rate")] = 3e-4,
    round_size: Annotated[int, typer.Option(help="labels per round of the assertion bandit")] = 50,
    pool_clips: Annotated[
        int | None, typer.Option(help="noisy validation clips in the pool (default all)")
    ] = None,
    replay_clips: Annotated[
        int, typer.Option(help="augmented training clips replayed in fine-tuning")
    ] = 2048,
    threads: Annotated[int, typer.Option(help="CPU threads")] = 1,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Which inputs to label: random, uncertainty, the assertion bandit and weak labels from consistency, each
    selection fine-tuning a copy of the model; accuracy on noisy held-out clips, false accepts per hour and hit
    rate on held-out running speech (docs/monitor.md)."""
    import torch

    from proactiv.monitor.labelling import STRATEGIES
    from proactiv.tasks.kws.labelling import markdown, run
    from proactiv.tasks.kws.synth import SPEECH_DIR

    torch.set_num_threads(threads)
    if not (data / SPEECH_DIR / "sentences.csv").is_file():
        fail(
            ValueError(f"--data {data}: no running speech ({SPEECH_DIR}/sentences.csv); `proactiv kws synth`")
        )
    try:
        run(data, model, out, strategies=tuple(strategy or STRATEGIES), budgets=tuple(budget or (50, 100, 200)),
            seeds=tuple(seed if seed is not None else (0, 1)), epochs=epochs, lr=lr, round_size=round_size,
            pool_clips=pool_clips, replay_clips=replay_clips, progress=progress, say=typer.echo)  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        fail(err)
    import pandas as pd

    typer.echo(markdown(pd.read_csv(out / "summary.csv")))
    typer.echo(f"tables in {out} (table.csv: every seed; summary.csv: the mean over seeds)")


def _plan(run: Path | None):
    """The augmentation plan toward ``run``'s worst slices (:func:`proactiv.augment_plan.plan_toward`), printed;
    None without a run. Its errors (no such run, no failures, not a classifier's run) end the command."""
    if run is None:
        return None
    from proactiv.augment_plan import plan_toward
    from proactiv.store import RunError

    try:
        plan = plan_toward(run)
    except (RunError, ValueError, OSError) as err:
        fail(ValueError(f"--augment-from {run}: {err}"))
    typer.echo(plan.describe())
    return plan


def noise_lines(report: dict) -> list[str]:
    """The noise figures of a training's metrics (:mod:`proactiv.tasks.kws.noise_robustness`), one line per
    noise kind and one for running speech (empty without them)."""
    lines = []
    for kind, levels in report.get("kinds", {}).items():
        figures = ", ".join(
            f"{snr} dB {m['accuracy']:.2f} ({m['keywords_as_silence']:.0%})" for snr, m in levels.items()
        )
        lines.append(f"{kind} noise: accuracy (keywords decided _silence_) at {figures}")
    speech = report.get("running_speech_white", {})
    if speech:
        figures = ", ".join(
            f"{snr} dB {m['false_accepts_per_hour']:.0f} ({m['hit_rate']:.0%})" for snr, m in speech.items()
        )
        lines.append(f"running speech in white noise: false accepts per hour (hit rate) at {figures}")
    return lines


def open_set_lines(report: dict) -> list[str]:
    """The open-set figures of a training's metrics, one line each (empty without them)."""
    lines = []
    words = report.get("unknown_words")
    if words:
        engines = ", ".join(f"{e} {r:.1%}" for e, r in words["per_engine"].items())
        lines.append(
            f"held-out unknown words taken for a keyword: {words['false_accept_rate']:.1%} of {words['n']} "
            f"(near-misses {words['near_miss']['false_accept_rate']:.1%}, other words "
            f"{words['other']['false_accept_rate']:.1%}; per engine: {engines})"
        )
    homophones = report.get("homophones")
    if homophones:
        lines.append(
            f"homophones ({', '.join(homophones['words'])}) taken for their keyword: "
            f"{homophones['taken_for_their_keyword']:.0%} of {homophones['n']} (not counted)"
        )
    speech = report.get("running_speech")
    if speech:
        engines = ", ".join(f"{e} {r['per_hour']:.0f}" for e, r in speech["per_engine"].items())
        lines.append(
            f"running speech ({speech['hours'] * 60:.1f} min): {speech['false_accepts_per_hour']:.0f} false "
            f"accepts per hour (per engine: {engines}); keyword hit rate {speech['hit_rate']:.0%} of "
            f"{speech['keyword_sentences']} sentences"
        )
    return lines
